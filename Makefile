# The two commands of the README:
#   make demo   runs the whole product on this machine (SQLite, in-process bus, PBX simulator)
#   make test   runs the whole test suite (starts local Redis/PostgreSQL if installed but stopped;
#               installs chromium for the browser tests only with INSTALL_DEPS=1, as CI does)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install services bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("screenpop needs Python 3.11 or newer, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/screenpop demo $(DEMO_ARGS)

# Never installs system packages unless asked: a missing chromium fails with
# the one command that installs it (INSTALL_DEPS=1 lets .ci/chromium.sh do it).
services:
	@bash .ci/services.sh
	@INSTALL_DEPS=$(INSTALL_DEPS) bash .ci/chromium.sh

test: $(STAMP) services
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/bench_tracker.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis var
