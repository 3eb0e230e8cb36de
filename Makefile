# The README's two commands: `make demo` (the main job) and `make test`. Both set up
# everything they need first; setup is idempotent and skips what is already done.
SHELL := bash
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test

setup:
	@bash scripts/install.sh

demo: setup
	$(PY) -m lcp.cli env

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)
