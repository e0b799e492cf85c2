# The two commands of the README:
#   make demo   runs the whole product on this machine (SQLite, in-process bus, PBX simulator)
#   make test   runs the whole test suite (starts local Redis/PostgreSQL if installed but stopped)
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

services:
	@bash .ci/services.sh
	@bash .ci/chromium.sh

test: $(STAMP) services
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/bench_tracker.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis var
