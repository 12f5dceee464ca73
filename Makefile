# Two commands on a fresh machine:
#   make run    set up .venv (first time) and open the GUI on the default model and a sample photograph
#   make test   set up .venv (first time) and run lint, the import contracts and the tests
# Both install the exact versions the suite is tested with (resources/constraints/constraints.txt);
# `make test-latest` tests the newest releases instead, in .venv-latest.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONSTRAINTS := resources/constraints/constraints.txt
PIP_PINS ?= -c $(CONSTRAINTS)

.PHONY: run test test-latest setup bench screenshot constraints clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(PIP_PINS) -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/alens-gui

test: $(STAMP)
	@$(PY) -m alens_gui.versions
	$(VENV)/bin/ruff check alens_gui tests packaging
	$(VENV)/bin/lint-imports --no-cache
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

# The same checks against the newest releases of every dependency (no constraints file).
test-latest:
	rm -rf .venv-latest
	$(MAKE) test VENV=.venv-latest PIP_PINS="--upgrade --upgrade-strategy eager"

bench: $(STAMP)
	$(VENV)/bin/alens bench

screenshot: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) packaging/screenshot.py

# Re-pin after a passing `make test-latest`: make constraints VENV=.venv-latest
constraints:
	$(PY) packaging/write_constraints.py

clean:
	rm -rf $(VENV) .venv-latest build dist *.egg-info .pytest_cache .ruff_cache
