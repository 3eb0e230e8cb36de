#!/usr/bin/env bash
# Snakemake runs this once, inside the conda environment it has just created from
# envs/lcp.yaml (`snakemake --use-conda`), from the workflow's working directory (the
# repository). It adds what the yaml cannot hold: mmcv-full, compiled against the env's
# torch, and the lcp package itself (see scripts/install.sh; FORCE_CUDA=1 and
# TORCH_CUDA_ARCH_LIST from the environment build the CUDA ops).
set -euo pipefail
LCP_VENV="$CONDA_PREFIX" bash scripts/install.sh
