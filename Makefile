# Two commands matter: `make demo` and `make test`. Each installs what it needs and leaves no process running.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: demo test lint format bench clean venv node

venv: $(VENV_STAMP)
node: $(NODE_STAMP)

$(VENV_STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(VENV_STAMP) $(NODE_STAMP)
	$(PY) scripts/demo.py

lint: $(VENV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV_STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: $(VENV_STAMP) $(NODE_STAMP) lint
	$(PY) -m pytest -q -p no:cacheprovider

bench: $(VENV_STAMP)
	$(PY) bench/sweep.py

clean:
	rm -rf $(VENV) node_modules demo-out .pytest_cache .ruff_cache *.egg-info
