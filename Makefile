# Two commands from a fresh clone: `make run` and `make test`. Each creates .venv when it is missing
# or older than the requirements, and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test schemas bench clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)  ## the whole pipeline on the embedded default (DuckDB + sandboxes)
	$(PY) -m scripts.run_local run

test: $(STAMP)  ## the whole suite
	$(PY) -m pytest

schemas: $(STAMP)  ## regenerate bigquery/schemas/create_tables.sql
	$(PY) scripts/generate_create_tables.py

clean:
	rm -rf $(VENV) .local .pytest_cache
