# fourcast: `make run` serves the demo on embedded defaults; `make test` runs the whole suite.
# Both set themselves up on a fresh Debian machine (as root: apt packages when missing).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
BENCH_ROUNDS ?= 3
# pytest-xdist workers for `make test` (each takes whole test files); `auto` is one per core.
# Four on a two-core machine: most tests wait on servers they started, not on the CPU.
TEST_WORKERS ?= 4
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
ASYNCAPI := tests/asyncapi
ASYNCAPI_STAMP := $(ASYNCAPI)/node_modules/.installed
PYTHON2 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/2.7*/bin/python2.7 /root/.pyenv/versions/2.7*/bin/python2.7) python2.7)
AUTOBAHN := $(VENV)/autobahn
AUTOBAHN_STAMP := $(AUTOBAHN)/.installed
APT_GET := $(shell [ "$$(id -u)" = 0 ] && echo apt-get || echo sudo apt-get)

.DEFAULT_GOAL := help
.PHONY: help install install-test system-deps run migrate test lint lock format bench bench-quick bench-deps run-cluster clean

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# requirements.lock pins every package to the versions the suite was last run with.
$(STAMP): pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/pip install -q -c requirements.lock -e .
	@touch $@

$(TEST_STAMP): pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/pip install -q -c requirements.lock -e '.[test,bench]'
	@touch $@ $(STAMP)

install: $(STAMP) ## Create .venv and install fourcast

install-test: $(TEST_STAMP) $(AUTOBAHN_STAMP) system-deps $(ASYNCAPI_STAMP) ## Install what the tests need (Python packages, Autobahn|Testsuite, redis-server, PostgreSQL 15, chromium, Nchan, node packages)

# Autobahn|Testsuite (wstest) runs on Python 2.7 only: installed under .venv/autobahn, used by
# tests/autobahn through site.addsitedir (nothing is installed into the Python 2.7 itself).
$(AUTOBAHN_STAMP): | $(BIN)/python
	mkdir -p $(AUTOBAHN) && cd $(AUTOBAHN) && \
	$(PYTHON2) -m pip install -q --disable-pip-version-check --no-warn-script-location \
		--prefix $(CURDIR)/$(AUTOBAHN) setuptools==44.0.0 wheel==0.37.1 && \
	PYTHONPATH=$(CURDIR)/$(AUTOBAHN)/lib/python2.7/site-packages $(PYTHON2) -m pip install -q \
		--disable-pip-version-check --no-warn-script-location --prefix $(CURDIR)/$(AUTOBAHN) \
		autobahntestsuite==25.10.1
	@touch $@

# The AsyncAPI project's parser, which validates /asyncapi.json in the suite (locked versions).
$(ASYNCAPI_STAMP): $(ASYNCAPI)/package.json $(ASYNCAPI)/package-lock.json | system-deps
	cd $(ASYNCAPI) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@

# nginx-light + libnginx-mod-nchan: the Nchan peer the benchmark (and its smoke test) measures.
APT_LOCK := -o DPkg::Lock::Timeout=300
system-deps: ## Install redis-server, PostgreSQL 15, chromium, node and Nchan from apt when missing (never downloads a browser)
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	[ -x /usr/lib/postgresql/15/bin/initdb ] || missing="$$missing postgresql-15"; \
	[ -x /usr/lib/postgresql/15/bin/psql ] || missing="$$missing postgresql-client-15"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	[ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	[ -e /usr/lib/nginx/modules/ngx_nchan_module.so ] || missing="$$missing libnginx-mod-nchan"; \
	if [ -n "$$missing" ]; then \
		echo "installing from apt:$$missing"; \
		$(APT_GET) $(APT_LOCK) update -qq && DEBIAN_FRONTEND=noninteractive $(APT_GET) $(APT_LOCK) install -y -qq $$missing >/dev/null; \
	fi

migrate: $(STAMP) ## Bring the database schema up to date
	$(BIN)/fourcast migrate

run: $(STAMP) migrate ## Serve fourcast on embedded defaults (HOST, PORT)
	$(BIN)/fourcast serve --host $(HOST) --port $(PORT)

test: install-test ## Run the whole suite (starts its own uvicorn, redis-server, PostgreSQL, Chromium)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not solo"
	$(BIN)/python -m pytest -q -m solo

lint: $(TEST_STAMP) ## ruff (lint and format check) and mypy (strict on app/)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

lock: $(TEST_STAMP) ## Rewrite requirements.lock from what .venv has installed (after changing pyproject.toml)
	@{ sed -n '1,2p' requirements.lock; $(BIN)/pip freeze --exclude-editable | grep -v '^fourcast'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

format: $(TEST_STAMP) ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: ## Remove the virtual environment and local data
	rm -rf $(VENV) var .pytest_cache .ruff_cache $(ASYNCAPI)/node_modules

bench-deps: ## Install what the benchmark runs beside fourcast (redis-server, nginx-light + Nchan) when missing
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	[ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	[ -e /usr/lib/nginx/modules/ngx_nchan_module.so ] || missing="$$missing libnginx-mod-nchan"; \
	if [ -n "$$missing" ]; then \
		echo "installing from apt:$$missing"; \
		$(APT_GET) $(APT_LOCK) update -qq && DEBIAN_FRONTEND=noninteractive $(APT_GET) $(APT_LOCK) install -y -qq $$missing >/dev/null; \
	fi

bench: $(TEST_STAMP) bench-deps ## Full benchmark with Nchan and the floor app as peers, BENCH_ROUNDS rounds (core 0 / core 1; ~30 min)
	$(BIN)/python -m bench run --suite full --rounds $(BENCH_ROUNDS) $(BENCH_ARGS)

bench-quick: $(TEST_STAMP) bench-deps ## Short benchmark, every server and case at small scale (~4 min)
	$(BIN)/python -m bench run --suite quick $(BENCH_ARGS)

run-cluster: $(STAMP) ## Local cluster: redis-server on REDIS_PORT (6390) and nodes on 8001, 8002 (Ctrl-C stops)
	@command -v redis-server >/dev/null || { \
		echo "installing from apt: redis-server"; \
		$(APT_GET) update -qq && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq redis-server >/dev/null; \
	}
	PYTHON=$(BIN)/python HOST=$(HOST) bash scripts/run_cluster.sh
