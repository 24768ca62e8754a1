# Two entry points: `make synth` and `make test`. Both set everything up first
# and are quick when it is already set up.
SHELL := /bin/bash
.DEFAULT_GOAL := synth
PY := .venv/bin/python
# jsii needs Node >= 22: the pinned one from package.json comes first.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
export PYTHONDONTWRITEBYTECODE := 1

.venv/.installed: requirements.txt
	python3 -m venv .venv
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
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
setup: .venv/.installed node_modules/.installed

# Validate the values first: `cdk8s synth` empties dist/ before it runs the app,
# so bad input must be caught before it starts.
.PHONY: synth
synth: setup
	$(PY) main.py --check
	cdk8s synth

# Typed bindings for the custom resources this app emits, generated offline from
# the CRDs listed under `imports:` in cdk8s.yaml (../shared/crds/...) into imports/
# (committed; tests/test_imports.py fails when they are stale). Add a CRD by adding
# its path to that list, then run `make imports`. Output is byte-reproducible.
.PHONY: imports
imports: node_modules/.installed
	rm -rf imports
	cdk8s import --language python --output imports

.PHONY: test
test: setup postgres
	$(PY) -m pytest

.PHONY: bench
bench: setup postgres
	$(PY) bench/synth.py
	$(PY) bench/pgbench.py
