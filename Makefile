# assetsearch: `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= .assetsearch-demo
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test test-fast test-durability protos lint bench demo-model clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall when the project's requirements change.
$(STAMP): pyproject.toml clients/python/pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ./clients/python
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	ASSETSEARCH_DATA_DIR=$${ASSETSEARCH_DATA_DIR:-$(DEMO_DIR)/data} $(PY) -m cli.demo --library $(DEMO_DIR)/library

test: $(STAMP)
	bash scripts/ensure-postgres.sh
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow and not postgres"

# The crash and state-machine tests at full strength: 20+ kills a test, longer runs (~25 min).
test-durability: $(STAMP)
	bash scripts/ensure-postgres.sh
	ASSETSEARCH_TEST_DURABILITY=full $(PY) -m pytest tests/test_crash.py tests/test_state_machine.py tests/test_no_stale.py

# Regenerate the gRPC code; never edit clients/python/assetsearch_client/_pb by hand.
protos: $(STAMP)
	$(PY) -m service.protogen

# ruff (check + format), mypy, the import layers of .importlinter, and buf lint (STANDARD).
PY_SOURCES := latent indexer service cli migrations tests bench clients/python
BUF := node_modules/.bin/buf

$(BUF): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $(BUF)

lint: $(STAMP) $(BUF)
	$(VENV)/bin/ruff check $(PY_SOURCES)
	$(VENV)/bin/ruff format --check $(PY_SOURCES)
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(BUF) lint

bench: $(STAMP)
	$(PY) bench/indexing.py
	$(PY) bench/query_latency.py
	$(PY) bench/quality.py
	$(PY) bench/store.py

demo-model: $(STAMP)
	$(PY) -m latent.demo.train --out latent/models/demo --seed 0

clean:
	rm -rf $(VENV) .assetsearch .assetsearch-demo .pytest_cache node_modules
