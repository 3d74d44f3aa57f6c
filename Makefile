# Two commands from a fresh clone: `make run` and `make test`. Each creates .venv when it is missing
# or older than the requirements, and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The BigQuery emulator the tests start, in a venv of its own: its pins (sqlglot, protobuf) clash with ours.
EMULATOR_VENV := .venv-bqemulator
EMULATOR_STAMP := $(EMULATOR_VENV)/.installed

# checkov (Terraform static analysis), pinned in a venv of its own: its many pins clash with ours.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

.PHONY: run test lint checkov schemas bench clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

$(EMULATOR_STAMP): requirements-bqemulator.txt
	test -x $(EMULATOR_VENV)/bin/python || $(PYTHON) -m venv $(EMULATOR_VENV)
	$(EMULATOR_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-bqemulator.txt
	touch $(EMULATOR_STAMP)

$(CHECKOV_STAMP): requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $(CHECKOV_STAMP)

checkov: $(CHECKOV_STAMP)  ## Terraform checks; each skipped check is justified where it is skipped
	$(CHECKOV_VENV)/bin/checkov -d infrastructure --framework terraform --compact --quiet --skip-download

run: $(STAMP)  ## the whole pipeline on the embedded default (DuckDB + sandboxes)
	$(PY) -m scripts.run_local run --sandboxes

# Test processes (pytest-xdist); each starts its own emulators. TEST_WORKERS=0: one process. Three on a 2-core
# machine: the suite waits on sandboxes and emulators enough that a third process shortens it (7.5 min, not 9-10).
TEST_WORKERS ?= 3

test: $(STAMP) $(EMULATOR_STAMP)  ## the whole suite (starts the Pub/Sub and BigQuery emulators itself)
	$(PY) -m pytest -n $(TEST_WORKERS)

lint: $(STAMP)  ## ruff (pyflakes, pycodestyle errors, import order, bugbear) and mypy, as pyproject.toml sets them
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

schemas: $(STAMP)  ## regenerate bigquery/schemas/create_tables.sql and bigquery/views/v_activity_timeline.sql
	$(PY) -m scripts.generate_create_tables

clean:
	rm -rf $(VENV) $(EMULATOR_VENV) $(CHECKOV_VENV) .local .pytest_cache
