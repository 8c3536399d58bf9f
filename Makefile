# agentdb: the verbs people expect. `make up` stands the dev stack up; `make test` proves it.
SHELL := /bin/bash
STACK ?= dev
# Debian's python3, so the unprivileged service user can run the venv's tools too. Looked up by
# the shell when the recipe runs: on a fresh machine install-deps.sh installs it first.
PYTHON ?= $$([ -x /usr/bin/python3 ] && echo /usr/bin/python3 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: deps up down destroy status env logs migrate test test-unit test-docker lint fmt bench bench-writes bench-replicas dashboards clean

deps: $(VENV)/.installed
	@$(BIN)/python -m infra.tools ensure-pgbouncer >/dev/null
	@$(BIN)/python -m infra.tools ensure-pgvector >/dev/null
	@$(BIN)/python -m infra.tools ensure-pgadmin >/dev/null

$(VENV)/.installed: pyproject.toml scripts/install-deps.sh
	@bash scripts/install-deps.sh
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q --disable-pip-version-check --upgrade pip==25.3
	@$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

up: deps
	@$(BIN)/agentdb up --stack $(STACK)

down: deps
	@$(BIN)/agentdb down --stack $(STACK)

destroy: deps
	@$(BIN)/agentdb destroy --stack $(STACK)

status: deps
	@$(BIN)/agentdb status --stack $(STACK)

env: deps
	@$(BIN)/agentdb env --stack $(STACK)

logs: deps
	@$(BIN)/agentdb logs --stack $(STACK)

migrate: deps
	@$(BIN)/agentdb migrate --stack $(STACK)

# Everything but the Docker conformance run; the suite starts its own stack on free ports.
test: deps
	@$(BIN)/pytest -m "not docker" $(PYTEST_ARGS)

test-unit: deps
	@$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-docker: deps
	@bash scripts/docker-conformance.sh

lint: deps
	@$(BIN)/ruff check infra tests loadtests
	@$(BIN)/ruff format --check infra tests loadtests
	@$(BIN)/squawk --config .squawk.toml $$(find sql -name '*.sql' | sort)

fmt: deps
	@$(BIN)/ruff format infra tests loadtests
	@$(BIN)/ruff check --fix infra tests loadtests

bench: deps
	@$(BIN)/python -m loadtests.bench

# Only the Q-learning write paths before and after issue 15 (0007, 0008); rewrites that section of docs/benchmarks.md.
bench-writes: deps
	@$(BIN)/python -m loadtests.writes

# Only lookups through the replica pool beside the primary's, on a small cluster; rewrites that section.
bench-replicas: deps
	@$(BIN)/python -m loadtests.replicas

dashboards: deps
	@$(BIN)/python -m infra.dashboards

clean:
	rm -rf $(VENV) .pytest_cache
