# The README's two commands: `make demo` (the main job) and `make test`. Both set up
# everything they need first; setup is idempotent and skips what is already done.
SHELL := bash
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test

setup:
	@bash scripts/install.sh

# The demo scene's whole workflow on this machine (config/config.yaml, profiles/local):
# data/demo, then results/demo/ with the report in results/demo/report/ and a browsable
# results/report.html. Rerunning only redoes what changed.
demo: setup
	$(PY) -m snakemake --profile profiles/local
	$(PY) -m snakemake --profile profiles/local --report results/report.html
	@echo "demo: results/demo/report/summary.md, results/report.html"

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)
