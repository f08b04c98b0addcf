# fourcast: `make run` serves the demo on embedded defaults; `make test` runs the whole suite.
# Both set themselves up on a fresh Debian machine (as root: apt packages when missing).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
APT_GET := $(shell [ "$$(id -u)" = 0 ] && echo apt-get || echo sudo apt-get)

.DEFAULT_GOAL := help
.PHONY: help install install-test system-deps run migrate test lint lock format bench bench-quick run-cluster clean

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

install-test: $(TEST_STAMP) system-deps ## Install what the tests need (Python packages, redis-server, chromium)

system-deps: ## Install redis-server and chromium from apt when missing (never downloads a browser)
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing from apt:$$missing"; \
		$(APT_GET) update -qq && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq $$missing >/dev/null; \
	fi

migrate: $(STAMP) ## Bring the database schema up to date
	$(BIN)/python -m app.store.migrate

run: $(STAMP) migrate ## Serve fourcast on embedded defaults (HOST, PORT)
	$(BIN)/python -m app --host $(HOST) --port $(PORT)

test: install-test ## Run the whole suite (starts its own uvicorn, redis-server, PostgreSQL, Chromium)
	$(BIN)/python -m pytest -q

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
	rm -rf $(VENV) var .pytest_cache .ruff_cache

bench: $(TEST_STAMP) ## Full benchmark suite (server on core 0, load generator on core 1; ~15 min)
	$(BIN)/python -m bench run --suite full $(BENCH_ARGS)

bench-quick: $(TEST_STAMP) ## Short benchmark for use while optimising (< 2 min)
	$(BIN)/python -m bench run --suite quick $(BENCH_ARGS)

run-cluster: $(STAMP) ## Local cluster: redis-server on REDIS_PORT (6390) and nodes on 8001, 8002 (Ctrl-C stops)
	@command -v redis-server >/dev/null || { \
		echo "installing from apt: redis-server"; \
		$(APT_GET) update -qq && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq redis-server >/dev/null; \
	}
	PYTHON=$(BIN)/python HOST=$(HOST) bash scripts/run_cluster.sh
