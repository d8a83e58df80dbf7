# Two commands matter: `make demo` and `make test`. Each installs what it needs and leaves no process running.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
CHECKOV_VENV := .checkov-venv
CHECKOV_VERSION := 3.3.30
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

.PHONY: demo test lint format bench clean venv node infra-check soak chromium

venv: $(VENV_STAMP)
node: $(NODE_STAMP)

$(VENV_STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

# checkov pins many packages (and an older pycep-parser): it lives in its own virtual environment.
$(CHECKOV_STAMP):
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Headless Chromium renders the Teams cards with Microsoft's adaptivecards package (tests/notify/test_render.py,
# the demo's PNG screenshots). Debian's package, installed when missing and we are root with apt-get; elsewhere
# the render test is skipped with the reason and the demo writes no screenshots.
chromium:
	@if command -v chromium >/dev/null 2>&1 || [ -n "$$CHROMIUM" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null \
			|| echo "chromium could not be installed: the card rendering test will be skipped"; \
	else echo "chromium is missing and cannot be installed here (needs root and apt-get): the card rendering test will be skipped"; fi

demo: $(VENV_STAMP) $(NODE_STAMP) chromium
	$(PY) scripts/demo.py

# ruff, mypy (strict on autoheal/) and the layer contract (import-linter, [tool.importlinter] in pyproject.toml).
lint: $(VENV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: $(VENV_STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: $(VENV_STAMP) $(NODE_STAMP) $(CHECKOV_STAMP) chromium lint
	$(PY) -m pytest -q -p no:cacheprovider

# The offline infrastructure checks alone (Bicep parse, checkov, consistency with the code).
infra-check: $(VENV_STAMP) $(CHECKOV_STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests/infra

bench: $(VENV_STAMP) $(NODE_STAMP)
	$(PY) bench/sweep.py
	$(PY) bench/budget.py --scale-sets 1000 --instances 50 --header-form windowed
	$(PY) bench/budget.py --scale-sets 1000 --instances 50 --header-form repeated
	$(PY) bench/budget.py --scale-sets 10000 --instances 5 --time-scale 30 --max-sweeps 60 --header-form windowed
	$(PY) bench/budget.py --scale-sets 10000 --instances 5 --time-scale 30 --max-sweeps 60 --header-form repeated
	$(PY) bench/arg_getlist.py --scale-sets 1000 --instances 5 --persistent 10 --stale 20 --time-scale 30
	$(PY) bench/cold_start.py
	$(PY) bench/fanout.py --subscriptions 20 --scale-sets 500 --instances 2 --workers 2

clean:
	rm -rf $(VENV) node_modules demo-out .pytest_cache .ruff_cache *.egg-info

# Many seeded crash (SIGKILL + resume) and race rounds against real vmss-autoheal processes, with figures
# (tests/safety/soak.py; SOAK_ARGS e.g. "--kills 10 --races 10 --seed 3").
soak: $(VENV_STAMP) $(NODE_STAMP)
	$(PY) -m tests.safety.soak $(SOAK_ARGS)
