"""Pretrained backbone weights (ImageNet): where they are cached, the pre-flight, the fetch.

The R50 pretraining configs start the ResNet from ImageNet as mmdetection's do,
`init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')`. mmcv resolves that
name to torchvision's URL (mmcv.runner.checkpoint.get_torchvision_models) and loads it with
torch.hub.load_state_dict_from_url, which reads `torch.hub.get_dir()/checkpoints/<file name
of the URL>` when the file is there and downloads it otherwise. A compute node without
internet would hang or fail inside mmcv in the middle of building the model, so training
calls `prepare_pretrained_init` first: a missing file is one error line naming it and where
to put it, and only `lcp weights fetch` (`fetch_checkpoint`) ever downloads.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lcp.errors import LCPError

TORCHVISION_PREFIXES = ("torchvision://", "modelzoo://")  # mmcv's schemes for torchvision's weights
OPENMMLAB_PREFIXES = ("open-mmlab://", "openmmlab://")
HASH_PREFIX = re.compile(r"-([a-f0-9]*)\.")  # torch.hub's HASH_REGEX: resnet50-0676ba61.pth -> 0676ba61
DOWNLOAD_TIMEOUT_S = 60


@dataclass(frozen=True)
class HubCheckpoint:
    """A checkpoint that mmcv loads through torch's hub cache: `name` as a config gives it
    (torchvision://resnet50 or an http(s) URL) and the URL it comes from."""

    name: str
    url: str

    @property
    def file_name(self) -> str:
        return os.path.basename(urlparse(self.url).path)

    @property
    def cache_path(self) -> Path:
        """Where torch.hub.load_state_dict_from_url looks for it (and mmcv through it)."""
        import torch.hub

        return Path(torch.hub.get_dir()) / "checkpoints" / self.file_name

    @property
    def hash_prefix(self) -> str | None:
        """The start of the file's SHA-256 that its name carries, as torch.hub checks it."""
        match = HASH_PREFIX.search(self.file_name)
        return match.group(1) if match and match.group(1) else None


def hub_checkpoint(name: str) -> HubCheckpoint | None:
    """The hub checkpoint a Pretrained init_cfg's `checkpoint` names; None for a local file
    (and for schemes mmcv resolves by other means, e.g. mmcls://)."""
    if name.startswith(TORCHVISION_PREFIXES):
        from mmcv.runner.checkpoint import get_torchvision_models

        model = name.split("://", 1)[1]
        urls = get_torchvision_models()
        key = model.lower().replace("_weights", "")  # as mmcv's load_from_torchvision looks it up
        if key not in urls:
            raise LCPError(
                f"{name}: torchvision has no weights of that name (e.g. torchvision://resnet50, "
                "torchvision://resnet101)"
            )
        return HubCheckpoint(name, urls[key])
    if name.startswith(OPENMMLAB_PREFIXES):  # as mmcv's load_from_openmmlab resolves it
        from mmcv.runner.checkpoint import get_deprecated_model_names, get_external_models

        model = name.split("://", 1)[1]
        model = get_deprecated_model_names().get(model, model)
        url = get_external_models().get(model)
        if url is None:
            raise LCPError(
                f"{name}: mmcv knows no open-mmlab weights of that name (e.g. open-mmlab://resnext101_64x4d)"
            )
        return HubCheckpoint(name, url) if url.startswith(("http://", "https://")) else None
    if name.startswith(("http://", "https://")):
        return HubCheckpoint(name, name)
    return None


def _pretrained_inits(node: Any, path: str) -> Iterator[tuple[MutableMapping, str, str, Mapping]]:
    """(owner, key, dotted path, init) of every Pretrained init_cfg under `node`, and of every
    `pretrained=NAME` (mmdet's older spelling, which the backbone turns into such an init)."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "pretrained" and isinstance(value, str) and value:
                yield node, key, f"{path}.{key}", {"type": "Pretrained", "checkpoint": value}
            elif key == "init_cfg":
                for init in value if isinstance(value, (list, tuple)) else [value]:
                    if isinstance(init, Mapping) and init.get("type") == "Pretrained":
                        yield node, key, f"{path}.{key}", init
            else:
                yield from _pretrained_inits(value, f"{path}.{key}")
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from _pretrained_inits(value, f"{path}.{index}")


def _drop_init(owner: MutableMapping, key: str, init: Mapping) -> None:
    value = owner[key]
    if key == "pretrained":
        owner[key] = None
    elif isinstance(value, (list, tuple)):
        owner[key] = [item for item in value if item is not init] or None
    else:
        owner[key] = None


def prepare_pretrained_init(cfg, source: str) -> None:
    """The pre-flight of the model's pretrained (ImageNet) inits, before the model is built.

    - A run that starts from a checkpoint (`load_from`, or `resume_from`) gets all its weights
      from it, so those inits are dropped from `cfg.model`: mmdet would load the ImageNet
      weights only to overwrite them, and the baseline and LCP fine-tunings need none.
    - Otherwise each init's file must be on this machine: a hub checkpoint in torch's hub
      cache, a plain path where it says. A missing one is an LCPError naming the file, where
      to put it and the command that fetches it; nothing is downloaded here.
    """
    inits = list(_pretrained_inits(cfg.model, "model"))
    if cfg.get("load_from") or cfg.get("resume_from"):
        for owner, key, _, init in inits:
            _drop_init(owner, key, init)
        return
    for _, _, path, init in inits:
        name = str(init.get("checkpoint") or "")
        if not name:
            raise LCPError(f"{source}: {path} is Pretrained without a checkpoint")
        checkpoint = hub_checkpoint(name)
        if checkpoint is None:
            if "://" not in name and not Path(name).is_file():
                named = path if path.endswith(".pretrained") else f"{path}.checkpoint"
                raise LCPError(
                    f"{source}: {named} {name} does not exist; --cfg-options {path}=None trains from scratch"
                )
            continue
        if not checkpoint.cache_path.is_file():
            raise LCPError(
                f"{source}: {path} starts from the pretrained weights {name}, and {checkpoint.cache_path} is "
                f"not there (training downloads nothing): run `lcp weights fetch {name}` on a machine with "
                f"internet and the same TORCH_HOME, or download {checkpoint.url} and put it there; "
                f"--cfg-options {path}=None trains from scratch"
            )


def _check_hash(path: Path, checkpoint: HubCheckpoint, origin: str) -> None:
    import hashlib

    prefix = checkpoint.hash_prefix
    if prefix is None:  # nothing to compare with: at least a file torch can load as weights
        import torch

        try:
            torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any failure means the same to the user
            raise LCPError(
                f"{origin}: not a PyTorch checkpoint ({type(exc).__name__}); nothing was written to "
                f"{checkpoint.cache_path}"
            ) from None
        return
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    if not digest.hexdigest().startswith(prefix):
        raise LCPError(
            f"{origin}: not {checkpoint.file_name} (its SHA-256 starts {digest.hexdigest()[: len(prefix)]}, "
            f"the name says {prefix}); nothing was written to {checkpoint.cache_path}"
        )


def fetch_checkpoint(
    checkpoint: HubCheckpoint,
    url: str | None = None,
    from_file: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> tuple[Path, bool]:
    """Put `checkpoint` into torch's hub cache, copied `from_file` or downloaded from `url`
    (default: its own URL); the file must match the hash prefix of its name, as torch.hub
    checks it. Returns (cache path, whether it was written): a file already there is kept
    unless `overwrite`."""
    from torch.hub import download_url_to_file

    from lcp.io import atomic_path

    target = checkpoint.cache_path
    if target.is_file() and not overwrite:
        return target, False
    origin = str(from_file) if from_file is not None else (url or checkpoint.url)
    if from_file is not None and not Path(from_file).is_file():
        raise LCPError(f"{from_file}: no such file")
    with atomic_path(target) as tmp:
        if from_file is not None:
            shutil.copyfile(from_file, tmp)
        else:
            previous = socket.getdefaulttimeout()
            socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # a stalled connection fails instead of hanging
            try:
                download_url_to_file(origin, str(tmp), progress=True)
            except OSError as exc:  # URLError, HTTPError, timeouts
                reason = getattr(exc, "reason", None) or exc.strerror or exc
                raise LCPError(
                    f"{origin}: download failed ({reason}); on a machine without internet, "
                    f"download it elsewhere and pass --from FILE"
                ) from None
            finally:
                socket.setdefaulttimeout(previous)
        _check_hash(tmp, checkpoint, origin)
    return target, True
