#!/usr/bin/env bash
# Snakemake runs this once, inside the conda environment it has just created from
# envs/lcp.yaml (`snakemake --software-deployment-method conda`), from a copy of this script
# beside the env, in the workflow's working directory. It adds what the yaml cannot hold:
# mmcv-full, compiled against the env's torch, and the lcp package itself (see
# scripts/install.sh; FORCE_CUDA=1 and TORCH_CUDA_ARCH_LIST from the environment build the
# CUDA ops). The repository is that working directory unless LCP_REPO names it.
set -euo pipefail
repo=${LCP_REPO:-$PWD}
if [[ ! -f $repo/scripts/install.sh ]]; then
    echo "lcp post-deploy: error: $repo has no scripts/install.sh; run snakemake from the lcp repository" \
        "or export LCP_REPO=/path/to/lcp" >&2
    exit 1
fi
LCP_VENV="$CONDA_PREFIX" bash "$repo/scripts/install.sh"
