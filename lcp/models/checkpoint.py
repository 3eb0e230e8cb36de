"""Load mmdet / LCP checkpoints into an LCPDetector, refusing ones of another architecture."""

from __future__ import annotations

import itertools
import os
import pickle
import re
import tarfile
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from typing import NamedTuple

import torch

from lcp.errors import LCPError


class LoadResult(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


def _read_state_dict(path_or_state) -> tuple[str, Mapping[str, torch.Tensor]]:
    if isinstance(path_or_state, Mapping):
        source, checkpoint = "<state dict>", path_or_state
    else:
        source = os.fspath(path_or_state)
        checkpoint = _torch_load(source)
    if not isinstance(checkpoint, Mapping):
        raise LCPError(f"{source}: not a checkpoint (holds a {type(checkpoint).__name__}, not a dict)")
    if "state_dict" not in checkpoint and not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        # mmdet's and mmcv's loaders read the weights from 'state_dict' (or a file of tensors only)
        raise LCPError(
            f"{source}: not a checkpoint: it holds no 'state_dict' and is no state dict either (its entries: "
            f"{_describe(list(map(str, checkpoint)), 3) or 'none'}); save the model's weights as 'state_dict'"
        )
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise LCPError(f"{source}: not a checkpoint: its 'state_dict' is not a mapping of names to tensors")
    # Checkpoints saved from a (distributed) data-parallel wrapper prefix every key with 'module.'.
    if state and all(key.startswith("module.") for key in state):
        state = OrderedDict((key[len("module.") :], value) for key, value in state.items())
    # mmdet's and mmcv's EMA hooks add a buffer ema_<key, '.' as '_'> beside each entry: the entries
    # hold the averaged weights, the buffers the raw ones, and mmdet's test ignores the buffers
    ema_buffers = {f"ema_{key.replace('.', '_')}" for key in state}
    if not ema_buffers.isdisjoint(state):
        state = OrderedDict((key, value) for key, value in state.items() if key not in ema_buffers)
    return source, state


def what_it_holds(path: str) -> str:
    """A short text file quoted (the workflow's placeholder of an unfinished training says what it
    is), a zip or tar archive by what it holds, anything else as 'not in one of torch.save's formats'."""
    archive = _archive(path)
    if archive:
        return archive
    try:
        with open(path, "rb") as file:
            head = file.read(4097)
        text = head.decode() if len(head) <= 4096 else ""
    except (OSError, UnicodeDecodeError):
        text = ""
    first_line = text.strip().splitlines()[0] if text.strip() else ""
    return f"a text file: {first_line!r}" if first_line else "not in one of torch.save's formats"


def _archive(path: str) -> str | None:
    """What a zip or tar archive that is no torch.save file holds (a checkpoint packed for the
    download, or something else under a .pth name); None for any other file."""
    try:
        if tarfile.is_tarfile(path):  # before the zip test, which finds a packed checkpoint's zip inside
            with tarfile.open(path) as archive:
                kind, names = "tar", [member.name for member in itertools.islice(archive, 4)]
        elif _starts_as_zip(path) and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                kind, names = "zip", archive.namelist()
            if _holds_torch_pickle(names):
                return None
        else:
            return None
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile):
        return None
    held = f"a {kind} archive of {', '.join(names[:3]) + (', ...' if len(names) > 3 else '') or 'nothing'}"
    packed = [name for name in names if name.endswith((".pth", ".pt"))]
    return held + (f"; unpack {packed[0]} from it and give that file" if packed else "")


def _starts_as_zip(path: str) -> bool:
    with open(path, "rb") as file:
        return file.read(4) == b"PK\x03\x04"


def _holds_torch_pickle(names: list[str]) -> bool:
    """Whether a zip archive of these member names is torch.save's: its pickle is ARCHIVE/data.pkl."""
    return any(re.fullmatch(r"[^/]+/data\.pkl", name) for name in names)


def _torch_zip(path: str) -> bool:
    """Whether `path` is in torch.save's zip format: a zip archive from its first byte that holds
    its pickle (any zip passes zipfile.is_zipfile, and so does a tar holding one)."""
    if not (_starts_as_zip(path) and zipfile.is_zipfile(path)):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return _holds_torch_pickle(archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def _torch_load(path: str, mmap: bool = False):
    """The checkpoint at `path`; `mmap`: its tensors mapped, not read (for a look at its keys)."""
    mmap = mmap and _torch_zip(path)  # only torch.save's zip format maps
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except FileNotFoundError:
        raise LCPError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise LCPError(f"{path}: is a directory, not a checkpoint file") from None
    except pickle.UnpicklingError:
        if not saved_by_torch(path):
            raise LCPError(f"{path}: not a PyTorch checkpoint ({what_it_holds(path)})") from None
        # A torch.save file (zip or the pre-1.6 format) whose 'meta' keeps non-tensor objects
        # (numpy scalars, ...), as mmcv checkpoints may: the weights-only unpickler refuses
        # those; PyTorch < 2.6 loaded every checkpoint the way below.
        warnings.warn(
            f"{path}: holds Python objects beyond tensors; loading it with full "
            "unpickling (only load checkpoints you trust)",
            stacklevel=2,
        )
    except Exception as exc:  # torch raises RuntimeError/EOFError/... for non-checkpoint files
        raise _unreadable(path, exc) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False, mmap=mmap)
    except Exception as exc:
        raise _unreadable(path, exc) from None


def _unreadable(path: str, exc: Exception) -> LCPError:
    """What a file torch cannot load is: one that starts as torch.save's formats do was cut short
    or damaged (a copy or a save that stopped; for the zip format: its directory is missing),
    unless what fails is finding a class its pickle names (of another numpy or package version):
    then it holds something this environment cannot load. Anything else is no checkpoint."""
    archive = _archive(path)
    if archive:
        return LCPError(f"{path}: not a PyTorch checkpoint ({archive})")
    with open(path, "rb") as file:
        head = file.read(4)
    zipped, legacy = head == b"PK\x03\x04", head.startswith(b"\x80\x02\x8a")
    missing_code = isinstance(exc, (ImportError, AttributeError))
    if (zipped and not zipfile.is_zipfile(path)) or (legacy and not missing_code):
        size = os.path.getsize(path)
        return LCPError(
            f"{path}: a truncated or damaged PyTorch checkpoint ({size} bytes; {_first_line(exc)}); "
            "copy or train it again"
        )
    if zipped or legacy:
        # e.g. an mmdet 3.x training checkpoint, whose message_hub holds mmengine's objects
        fix = "; where it loads, save its 'state_dict' and 'meta' alone and give that file" if missing_code else ""
        return LCPError(f"{path}: a PyTorch checkpoint this environment cannot load ({_first_line(exc)}){fix}")
    return LCPError(f"{path}: not a PyTorch checkpoint ({_first_line(exc)})")


def saved_by_torch(path: str) -> bool:
    """Whether `path` is in one of torch.save's formats: its zip archive, or the format before
    PyTorch 1.6 (a protocol-2 pickle of its magic number first)."""
    with open(path, "rb") as file:
        head = file.read(3)
    return _torch_zip(path) or head == b"\x80\x02\x8a"


def check_resumable(path: str) -> None:
    """LCPError unless `path` holds what a runner resumes from (its epoch and optimizer state),
    as a checkpoint of `lcp train` does; reads no weights."""
    checkpoint = _torch_load(os.fspath(path), mmap=True)
    if not isinstance(checkpoint, Mapping):
        raise LCPError(f"{path}: not a checkpoint (holds a {type(checkpoint).__name__}, not a dict)")
    meta = checkpoint.get("meta")
    found = {"meta.epoch": isinstance(meta, Mapping) and "epoch" in meta, "optimizer": "optimizer" in checkpoint}
    lacking = [what for what, present in found.items() if not present]
    if lacking:  # mmcv's runner.resume failed with KeyError('meta'), or went on without momentum
        raise LCPError(
            f"{path}: not a training checkpoint to resume (no {' or '.join(lacking)}); "
            "resume from one lcp train saved, or start from its weights with --load-from"
        )


def checkpoint_meta(path: str | os.PathLike) -> Mapping:
    """The checkpoint's `meta` (empty when it has none); reads no weights."""
    checkpoint = _torch_load(os.fspath(path), mmap=True)
    meta = checkpoint.get("meta") if isinstance(checkpoint, Mapping) else None
    return meta if isinstance(meta, Mapping) else {}


def checkpoint_seed(path: str | os.PathLike) -> int | None:
    """The seed the model in `path` was trained with (meta.seed, which lcp train records), or None
    when the checkpoint does not say (another tool's, the authors')."""
    seed = checkpoint_meta(path).get("seed")
    return seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else None


def _first_line(exc: Exception) -> str:
    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()  # torch's messages carry colour codes
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def _describe(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


# The modules LCP adds to Cascade R-CNN (../shared/design/lcp_r50_added_keys.json).
LCP_ONLY_PREFIXES = ("crux_learner.", "backbone.catch_up_learner.", "backbone.catch_up_fusion.")
BN_COUNTER = "num_batches_tracked"  # a BatchNorm buffer older checkpoints lack; nothing is computed from it


def is_class_layer(key: str) -> bool:
    """A classification layer of the box heads, shaped by the number of classes (+1 background):
    roi_head.bbox_head.0.fc_cls.weight (mmdet's Shared2FCBBoxHead), also under a single bbox_head."""
    parts = key.split(".")
    return len(parts) >= 3 and parts[-2] == "fc_cls" and parts[0] == "roi_head"


def _owner(key: str) -> str:
    """The top module and its first child a state-dict entry belongs to: backbone.layer3.6.conv1.weight
    -> backbone.layer3, roi_head.bbox_head.0.fc_cls.weight -> roi_head.bbox_head."""
    return ".".join(key.split(".")[:2])


def load_lcp_checkpoint(model: torch.nn.Module, path_or_state, strict: bool = False) -> LoadResult:
    """Copy a checkpoint's weights into `model` and report which keys did not match.

    `path_or_state`: a checkpoint file, a checkpoint dict (with 'state_dict') or a state
    dict. A plain Cascade R-CNN checkpoint loads with strict=False and reports the
    LCP-only keys (crux_learner.*, backbone.catch_up_*) as missing; those keep their
    current values. Raises LCPError naming the file when the checkpoint is of another
    architecture (no key in common, a common key with another shape, a missing key outside
    LCP's modules, or an extra key inside one of the model's modules), and with strict=True
    also when any key is missing or unexpected; nothing is copied then. The ema_* buffers of
    mmdet's EMA hook are left out (the entries beside them hold the averaged weights). BatchNorm's
    num_batches_tracked, which older checkpoints lack, is never counted missing. A checkpoint
    trained for another number of classes loads with strict=False, its box heads'
    classification layers reported missing (they keep their initialisation: a fine-tuning to
    other classes); strict=True refuses it, naming both class counts.
    """
    model = getattr(model, "module", model)  # MMDataParallel / DDP
    source, state = _read_state_dict(path_or_state)
    own = model.state_dict()
    common = [key for key in own if key in state]
    if not common:
        raise LCPError(
            f"{source}: none of the {len(own)} entries of {type(model).__name__} is in this checkpoint "
            f"(its keys start: {_describe(list(state), 3) or 'none'}); it is a checkpoint of another architecture"
        )
    other_shape = [key for key in common if state[key].shape != own[key].shape]
    # a checkpoint trained for another number of classes: a fine-tuning like any other, whose
    # classification layers start from their initialisation (mmdet's load_from skips them too)
    other_classes = [key for key in other_shape if is_class_layer(key)]
    if other_classes and len(other_classes) == len(other_shape):
        trained, wanted = (state[other_classes[0]].shape[0] - 1, own[other_classes[0]].shape[0] - 1)
        if strict:
            raise LCPError(
                f"{source}: trained for {trained} classes, the model has {wanted} ({_describe(other_classes, 3)}); "
                "use a checkpoint trained for the model's classes"
            )
        state = {key: value for key, value in state.items() if key not in other_classes}
    mismatched = [
        f"{key} {list(state[key].shape)} vs model {list(own[key].shape)}" for key in other_shape if key in state
    ]
    if mismatched:
        raise LCPError(
            f"{source}: {len(mismatched)} entries have another shape than in the model "
            f"({_describe(mismatched, 3)}); it is a checkpoint of another architecture"
        )
    missing = [key for key in own if key not in state and not key.endswith(BN_COUNTER)]
    unexpected = [key for key in state if key not in own]
    # Entries inside a module the model has, that the model lacks: a deeper or wider variant
    # (ResNet-101's layer3.6 in a ResNet-50), whose common entries would load as a wrong mix.
    # Modules the model lacks altogether (a mask head, LCP's modules in a plain detector) are ignored.
    owners = {_owner(key) for key in own}
    foreign_entries = [
        key
        for key in unexpected
        if _owner(key) in owners
        and not key.endswith(BN_COUNTER)
        and not any(part.startswith("loss_") for part in key.split("."))  # a loss's statistics (Seesaw, GHM)
    ]
    if foreign_entries:
        raise LCPError(
            f"{source}: holds {len(foreign_entries)} entries inside modules of {type(model).__name__} that the "
            f"model lacks ({_describe(foreign_entries, 3)}); it is a checkpoint of a deeper or wider variant. "
            "Start from a checkpoint of this detector"
        )
    # Only LCP's added modules may keep their initialisation: any other missing entry (a Faster
    # R-CNN's file without the cascade's later heads) would train from random values unnoticed.
    foreign = [key for key in missing if not key.startswith(LCP_ONLY_PREFIXES) and key not in other_classes]
    if foreign and not strict:
        raise LCPError(
            f"{source}: lacks {len(foreign)} entries of {type(model).__name__} besides LCP's own modules "
            f"({_describe(foreign, 3)}); they would start from random values. Start from a checkpoint of "
            "this detector (a plain Cascade R-CNN one, or an LCP one)"
        )
    if strict and (missing or unexpected):
        problems = []
        if missing:
            problems.append(f"missing {_describe(missing)}")
        if unexpected:
            problems.append(f"unexpected {_describe(unexpected)}")
        plain = missing and all(key.startswith(LCP_ONLY_PREFIXES) for key in [*missing, *unexpected])
        if plain and not any(key.startswith(LCP_ONLY_PREFIXES) for key in state):
            problems.append(
                "it is a plain detector's checkpoint, without LCP's modules: use it with a plain config, "
                "or start an LCP training from it (--load-from)"
            )
        raise LCPError(f"{source}: does not match the model exactly: {'; '.join(problems)}")
    model.load_state_dict(state, strict=False)
    return LoadResult(missing, unexpected)
