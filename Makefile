# Two commands on a fresh machine:
#   make run    set up .venv (first time) and open the GUI on the default model and a sample photograph
#   make test   set up .venv (first time) and run lint, the import contract and the tests
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test setup bench screenshot clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/alens-gui

test: $(STAMP)
	$(VENV)/bin/ruff check alens_gui tests packaging
	$(VENV)/bin/lint-imports --no-cache
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

bench: $(STAMP)
	$(VENV)/bin/alens bench

screenshot: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) packaging/screenshot.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
