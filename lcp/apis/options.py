"""Command-line pieces shared by `lcp train/test/infer` (kept free of heavy imports)."""

from __future__ import annotations

import argparse
import re
from typing import Any

from lcp.errors import LCPError

CFG_OPTIONS_HELP = (
    "override config keys, KEY=VALUE ... (mmcv syntax: lists as KEY=[a,b] or KEY=a,b, tuples as "
    "KEY=(a,b), list items as KEY.0.SUB=VALUE); applied before ${...} references are resolved, "
    "e.g. data_root=/data/city/ moves every data path. Each KEY must be in the config and each VALUE "
    "of the kind it replaces; +KEY=VALUE adds a key the config lacks (e.g. +fp16.loss_scale=dynamic)"
)


def add_cfg_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help=CFG_OPTIONS_HELP + "; may be given several times",
    )


def parse_cfg_options(items: list[str]) -> dict[str, Any]:
    """KEY=VALUE strings -> dict, with values parsed as mmcv's DictAction does."""
    from mmcv import DictAction

    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise LCPError(f"--cfg-options {item!r}: expected KEY=VALUE")
        if problem := spaces_dropped(value) or unreadable(key, value):
            raise LCPError(f"--cfg-options {key}: {problem}")
        options[key] = DictAction._parse_iterable(value)
    return options


def unreadable(key: str, value: str) -> str | None:
    """Why mmcv's --cfg-options cannot read `value` (it recursed forever on dict(...) and asserted on
    unbalanced brackets), or None."""
    if match := re.fullmatch(r"dict\((.*)\)", value):
        settings = " ".join(f"+{key.lstrip('+')}.{pair}" for pair in match.group(1).split(",") if pair)
        return f"{value!r}: --cfg-options takes no dict(...); set its keys one by one" + (
            f", e.g. {settings}" if settings else ""
        )
    for opening, closing in ("()", "[]"):
        if value.count(opening) != value.count(closing):
            return f"{value!r}: unbalanced {opening}{closing}"
    return None


def spaces_dropped(value: str) -> str | None:
    """Why mmcv's --cfg-options cannot carry `value`: it removes every space, so a space inside
    a word would vanish without a word ('/data/my set' is read as '/data/myset'). None if not."""
    if re.search(r"[^\s,\[\]()]\s+[^\s,\[\]()]", value):
        return (
            f"{value!r} would be read as {value.replace(' ', '')!r}: mmcv's --cfg-options removes spaces; "
            "set such a value in a config file instead"
        )
    return None


def read_as_text(word: str) -> bool:
    """Whether mmcv's --cfg-options keeps `word` a text: it makes numbers, True/False (any case)
    and None of what reads as one (DictAction._parse_int_float_bool)."""
    for kind in (int, float):
        try:
            kind(word)
            return False
        except ValueError:
            pass
    return word.lower() not in ("true", "false") and word != "None"


# mmdet's CocoDataset.evaluate keywords that `lcp test` honours, and what each takes
EVAL_OPTIONS = {
    "jsonfile_prefix": "a path prefix; the detections are written to PREFIX.bbox.json (COCO results)",
    "iou_thrs": "IoU thresholds in (0, 1] that AP averages over, a number or a list (default 0.50:0.95)",
}


def add_eval_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--eval-options",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="evaluation settings, as mmdet's: " + "; ".join(f"{key}: {what}" for key, what in EVAL_OPTIONS.items()),
    )


def parse_eval_options(items: list[str]) -> dict[str, Any]:
    """--eval-options KEY=VALUE strings -> {"jsonfile_prefix": str, "iou_thrs": [float, ...]}, each
    key one that lcp test honours and each value of its kind, else one LCPError line."""
    import difflib

    from mmcv import DictAction

    options: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise LCPError(f"--eval-options {item!r}: expected KEY=VALUE")
        if key not in EVAL_OPTIONS:
            close = difflib.get_close_matches(key, EVAL_OPTIONS, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}? " if close else ""
            raise LCPError(
                f"--eval-options {key}: not an evaluation setting lcp test takes ({hint}it takes "
                f"{', '.join(EVAL_OPTIONS)}; class-wise AP is always computed)"
            )
        value = DictAction._parse_iterable(text)
        if key == "jsonfile_prefix":
            if not isinstance(value, str) or not value:
                raise LCPError(f"--eval-options {item}: takes a path prefix, not {value!r}")
        else:
            values = list(value) if isinstance(value, (list, tuple)) else [value]
            if not values or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1 for v in values
            ):
                raise LCPError(
                    f"--eval-options {item}: takes IoU thresholds in (0, 1], e.g. {key}=0.5 or {key}=[0.5,0.75]"
                )
            value = sorted(float(v) for v in values)
        options[key] = value
    return options


def select_device(gpu_id: int = 0) -> str:
    """'cuda' when a GPU is visible, else 'cpu' (mmcv's data-parallel wrapper runs on both)."""
    import torch

    if torch.cuda.is_available():
        visible = torch.cuda.device_count()
        if not 0 <= gpu_id < visible:  # torch: "invalid device ordinal" (or, for -1, no change at all)
            raise LCPError(
                f"--gpu-id {gpu_id}: {visible} GPU(s) visible (CUDA_VISIBLE_DEVICES renumbers them from 0); "
                f"pass a number from 0 to {visible - 1}"
            )
        torch.cuda.set_device(gpu_id)
        return "cuda"
    return "cpu"
