# Two commands on a fresh machine:
#   make run    set up .venv (first time) and open the GUI on the default model and a sample photograph
#   make test   set up .venv (first time) and run lint, the import contracts and the tests
# Both install the exact versions the suite is tested with (resources/constraints/constraints.txt);
# `make test-latest` tests the newest releases instead, in .venv-latest.
# `make package` builds the desktop bundle dist/alens-gui/ (several GB; not part of `make test`).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONSTRAINTS := resources/constraints/constraints.txt
PIP_PINS ?= -c $(CONSTRAINTS)

PKG_STAMP := $(VENV)/.installed-package
BUNDLE := dist/alens-gui

.PHONY: run test test-latest setup bench screenshot constraints clean package package-test install-desktop startup

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

$(PKG_STAMP): $(STAMP)
	$(PY) -m pip install --quiet $(PIP_PINS) -e ".[test,package]"
	touch $(PKG_STAMP)

# The one-folder desktop bundle (PyInstaller, packaging/alens-gui.spec), then its self-test.
package: $(PKG_STAMP)
	rm -rf build/alens-gui $(BUNDLE)
	@start=$$(date +%s); \
	PYTHONPATH="$(CURDIR)" $(VENV)/bin/pyinstaller --noconfirm --clean --log-level WARN packaging/alens-gui.spec \
	&& echo "built $(BUNDLE) in $$(( $$(date +%s) - start )) s: $$(du -sh $(BUNDLE) | cut -f1)"
	rm -rf build/alens-gui
	$(MAKE) package-test

# The bundle's self-test as a user's machine would run it: from another folder, with no
# virtual environment, no PYTHONPATH, PATH=/usr/bin:/bin and a fresh HOME.
package-test:
	@work=$$(mktemp -d); home=$$(mktemp -d); cd "$$work" \
	&& env -i PATH=/usr/bin:/bin HOME="$$home" "$(CURDIR)/$(BUNDLE)/alens-gui" --self-test; \
	rc=$$?; rm -rf "$$work" "$$home"; exit $$rc

# Menu entry and icon under ~/.local/share: for the bundle when it is built, else for .venv.
install-desktop:
	@if [ -x $(BUNDLE)/alens-gui ]; then $(BUNDLE)/alens-gui --install-desktop; \
	else $(MAKE) --no-print-directory setup && $(VENV)/bin/alens-gui --install-desktop; fi

# Time to a visible window (under Xvfb) against a bare PySide6 + pyqtgraph window, as a ratio.
STARTUP_COMMAND ?= $(if $(wildcard $(BUNDLE)/alens-gui),$(BUNDLE)/alens-gui,$(VENV)/bin/alens-gui)
startup: $(STAMP)
	$(PY) packaging/startup.py --command "$(STARTUP_COMMAND)" --runs 7

# Re-pin after a passing `make test-latest`: make constraints VENV=.venv-latest
constraints:
	$(PY) packaging/write_constraints.py

clean:
	rm -rf $(VENV) .venv-latest build dist *.egg-info .pytest_cache .ruff_cache
