"""Command-line pieces shared by `lcp train/test/infer` (kept free of heavy imports)."""

from __future__ import annotations

import argparse
from typing import Any

from lcp.errors import LCPError

CFG_OPTIONS_HELP = (
    "override config keys, KEY=VALUE ... (mmcv syntax: lists as KEY=[a,b] or KEY=a,b, tuples as "
    "KEY=(a,b), list items as KEY.0.SUB=VALUE); applied before ${...} references are resolved, "
    "e.g. data_root=/data/city/ moves every data path. Each KEY must be in the config and each VALUE "
    "of the kind it replaces; +KEY=VALUE adds a key the config lacks (e.g. +fp16.loss_scale=512)")


def add_cfg_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cfg-options", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help=CFG_OPTIONS_HELP + "; may be given several times")


def parse_cfg_options(items: list[str]) -> dict[str, Any]:
    """KEY=VALUE strings -> dict, with values parsed as mmcv's DictAction does."""
    from mmcv import DictAction

    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise LCPError(f"--cfg-options {item!r}: expected KEY=VALUE")
        options[key] = DictAction._parse_iterable(value)
    return options


def select_device(gpu_id: int = 0) -> str:
    """'cuda' when a GPU is visible, else 'cpu' (mmcv's data-parallel wrapper runs on both)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.set_device(gpu_id)
        return "cuda"
    return "cpu"
