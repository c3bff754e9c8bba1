# Local News backend: everyday commands. `make help` lists them.
# Needs GNU make and python3 (3.11 or newer); RabbitMQ and PostgreSQL at the
# addresses of config.yml (or the environment variables of docs/operations.md).

SHELL := /bin/bash

PYTHON3 ?= python3
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Extra pytest arguments: make test PYTEST_ARGS="-x -k articles"
PYTEST_ARGS ?=
# RabbitMQ management API, for clean-vhosts.
RABBITMQ_API ?= http://guest:guest@localhost:15672/api

.DEFAULT_GOAL := help
.PHONY: help install run migrate shell mail reference test test-faults lint format clean-vhosts

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

install: $(STAMP) ## Create .venv and install requirements(-dev).txt (only when they changed)

$(PYTHON):
	$(PYTHON3) -m venv $(VENV)

# The stamp is newer than the requirements once those exact files are
# installed. requirements.txt pins setuptools (<80: nameko's CLI needs
# pkg_resources), which replaces whatever setuptools the fresh venv came with.
$(STAMP): requirements.txt requirements-dev.txt | $(PYTHON)
	$(PYTHON) -m pip install --quiet -r requirements-dev.txt
	$(PYTHON) -m pip check
	$(VENV)/bin/nameko --help >/dev/null
	touch $@

run: install ## Bootstrap (broker, databases, migrations) and run every service
	$(PYTHON) -m tools.runner

migrate: install ## Wait for RabbitMQ/PostgreSQL, create the databases, migrate
	$(PYTHON) -m tools.bootstrap

shell: install ## nameko shell for operations: n.rpc.<service>.<method>(...)
	$(PYTHON) -m tools.shell

mail: install ## The mail make run caught in development (var/mail/), the newest in full
	@$(PYTHON) -m tools.mailcatcher list

reference: install ## Write docs/reference.md from the routes' own descriptions
	$(PYTHON) -m tools.api_reference

# tests/prerequisites.py: RabbitMQ's management API (enabled here if this user
# may), PostgreSQL; one line saying what to do where it cannot.
test: install ## Run the whole test suite (PYTEST_ARGS="..." for extra arguments)
	$(PYTHON) -m tests.prerequisites
	$(PYTHON) -m pytest $(PYTEST_ARGS)

# pytest exits with 5 when no test is selected: not a failure here.
test-faults: install ## Run the fault-injection tests (pytest -m faults)
	$(PYTHON) -m tests.prerequisites
	@rc=0; $(PYTHON) -m pytest -m faults $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "test-faults: no tests marked 'faults'"; rc=0; fi; \
	exit $$rc

# Extra bench arguments: make bench BENCH_ARGS="--rounds 5 --seconds 10"
BENCH_ARGS ?=
.PHONY: bench
bench: install ## Benchmark on a stack of its own: one table, JSON in bench/results/ (BENCH_ARGS="...")
	$(PYTHON) -m bench $(BENCH_ARGS)

# Extra profile arguments: make profile PROFILE_ARGS="--figures write --seconds 10"
PROFILE_ARGS ?=
.PHONY: profile
profile: install ## Where a cold read, an empty RPC and a write spend CPU, by process (needs py-spy)
	$(PYTHON) -m bench.profile $(PROFILE_ARGS)

# Against an API that is already running (`make run` in another terminal, or
# `docker compose up`): API_URL (default http://localhost:8000), FUZZ_SEED to
# replay a run, FUZZ_MAX_EXAMPLES (default 100); it logs in as ADMIN_EMAIL.
.PHONY: fuzz
fuzz: install ## Schemathesis against the running API's OpenAPI document (API_URL, FUZZ_SEED)
	$(PYTHON) -m tests.fuzz

lint: install ## ruff check + ruff format --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install ## Fix what ruff can fix and format the code
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean-vhosts: install ## Delete leftover nameko_test_* vhosts of interrupted test runs
	@RABBITMQ_API='$(RABBITMQ_API)' $(PYTHON) -c "$$CLEAN_VHOSTS_PY"

# The nameko pytest plugin makes a vhost per test and deletes it afterwards;
# an interrupted run leaves some behind. Vhosts with open connections are kept,
# but a running test session also holds unused vhosts made in advance: run this
# when no tests are running.
define CLEAN_VHOSTS_PY
import os, sys
from urllib.parse import quote
import requests

api = os.environ["RABBITMQ_API"].rstrip("/")
try:
    vhosts = requests.get(f"{api}/vhosts", timeout=10)
    vhosts.raise_for_status()
    connections = requests.get(f"{api}/connections", timeout=10)
    connections.raise_for_status()
except requests.RequestException as exc:
    sys.exit(f"clean-vhosts: cannot use the RabbitMQ management API: {exc}")
in_use = {c.get("vhost") for c in connections.json()}
names = [v["name"] for v in vhosts.json() if v["name"].startswith("nameko_test_")]
for name in names:
    if name in in_use:
        print("kept vhost", name, "(open connections)")
        continue
    requests.delete(f"{api}/vhosts/{quote(name, safe='')}", timeout=10).raise_for_status()
    print("deleted vhost", name)
endef
export CLEAN_VHOSTS_PY
