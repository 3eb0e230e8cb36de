"""Loading an mmdet config the way every `lcp` tool does: file, then --cfg-options, then ${...}.

mmdet's own tools resolve `${key}` references before applying --cfg-options, so an
overridden `data_root` would not reach the paths built from it. Here the overrides come
first and the references are resolved afterwards, repeatedly, so references to keys that
are themselves references work too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from lcp.errors import LCPError

_MAX_REFERENCE_DEPTH = 10


def _has_reference(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(_has_reference(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_reference(v) for v in value)
    return isinstance(value, str) and "${" in value


def resolve_references(cfg, source: str):
    """Replace "${key}" strings by the config's values until none is left."""
    from mmdet.utils import replace_cfg_vals

    for _ in range(_MAX_REFERENCE_DEPTH):
        if not _has_reference(cfg._cfg_dict):
            return cfg
        try:
            cfg = replace_cfg_vals(cfg)
        except KeyError as exc:
            raise LCPError(f"{source}: the config refers to ${{{exc.args[0]}}}, "
                           "which it does not define") from None
    raise LCPError(f"{source}: ${{...}} references nest deeper than {_MAX_REFERENCE_DEPTH} "
                   "levels (a key that refers to itself?)")


def check_class_count(cfg, source: str) -> None:
    classes, num_classes = cfg.get("classes"), cfg.get("num_classes")
    if isinstance(classes, str):  # a file of class names: checked against the annotations later
        return
    if classes is not None and num_classes is not None and len(classes) != num_classes:
        raise LCPError(f"{source}: num_classes={num_classes} but classes has {len(classes)} names "
                       f"{list(classes)}; set both (e.g. --cfg-options num_classes={len(classes)})")


def load_config(path: str | os.PathLike, cfg_options: Mapping[str, Any] | None = None):
    """Read an mmdet config file, apply overrides, resolve references; LCPError on failure."""
    from mmcv import Config

    path = str(path)
    if not Path(path).is_file():
        raise LCPError(f"{path}: config file does not exist")
    try:
        cfg = Config.fromfile(path)
    except (SyntaxError, KeyError, ValueError, TypeError, NameError, FileNotFoundError,
            ModuleNotFoundError) as exc:
        raise LCPError(f"{path}: cannot read the config ({type(exc).__name__}: {exc})") from None
    if cfg_options:
        cfg.merge_from_dict(dict(cfg_options))
    cfg = resolve_references(cfg, path)
    check_class_count(cfg, path)
    return cfg
