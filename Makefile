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

.PHONY: setup
setup: .venv/.installed .venv-checkov/.installed node_modules/.installed

# Validate the values first: `cdk8s synth` empties dist/ before it runs the app,
# so bad input must be caught before it starts.
.PHONY: synth
synth: setup
	$(PY) main.py --check
	cdk8s synth

# Typed bindings for the custom resources this app emits (cert-manager Certificate,
# Prometheus Operator ServiceMonitor and PrometheusRule), generated offline into
# imports/ from the CRDs listed under `imports:` in cdk8s.yaml (../shared/crds/...).
# Committed; tests/test_imports.py fails when they are stale. Output is
# byte-reproducible. To add a CRD, add its path to that list (with a `name:=`
# prefix when it shares its API group with another: without one the second
# import replaces the first module), then run `make imports`.
.PHONY: imports
imports: node_modules/.installed
	rm -rf imports
	CDK8S_CHECK_UPGRADE=false cdk8s import --language python --output imports

.PHONY: test
test: setup postgres
	$(PY) -m pytest

.PHONY: bench
bench: setup postgres
	$(PY) bench/synth.py
	$(PY) bench/pgbench.py
	$(PY) bench/policy.py
	$(PY) bench/backup.py
