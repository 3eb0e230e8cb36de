# The README's two commands: `make demo` (the main job) and `make test`. Both set up
# everything they need first; setup is idempotent and skips what is already done.
SHELL := bash
# the venv: LCP_VENV (as scripts/install.sh reads it) or VENV=..., default .venv
VENV ?= $(or $(LCP_VENV),.venv)
PY := $(VENV)/bin/python

.PHONY: setup demo lint format test

setup:
	@LCP_VENV=$(VENV) bash scripts/install.sh

# The demo scene's whole workflow on this machine (config/config.yaml, profiles/local):
# data/demo, then results/demo/ with the report in results/demo/report/ and a browsable
# results/report.html. Rerunning only redoes what changed.
demo: setup
	$(PY) -m snakemake --profile profiles/local
	$(PY) -m snakemake --profile profiles/local --report results/report.html
	@echo "demo done. What it shows:"
	@echo "  results/demo/report/summary.html   AP of baseline and LCP, crux health, sample detections"
	@echo "  results/report.html                the Snakemake report (every table, plot and heat map)"
	@echo "  $(VENV)/bin/lcp compare              scenes x methods over seeds, robustness mPC/rPC"
	@echo "  $(VENV)/bin/mlflow ui --backend-store-uri sqlite:///results/mlflow/mlflow.db"
	@echo "      then http://127.0.0.1:5000/#/experiments?workflowType=machine_learning (the runs, not GenAI)"

# ruff (lint + format) and snakefmt, configured in pyproject.toml; `make format` applies them
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/snakefmt --check Snakefile workflow/

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
	$(VENV)/bin/snakefmt Snakefile workflow/

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)
