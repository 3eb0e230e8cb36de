"""What a run records about itself: config, data, degradations, code and machine.

MLflow keys may hold only letters, digits and `_ - . / : space` (at most 250 characters)
and param values at most 6000 characters: `safe_key` and `clip` (lcp.tracking.client) make
every key and value acceptable, so one odd config entry never loses a whole batch.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from lcp.tracking import settings

MAX_KEY_LENGTH = 250
PACKAGES = ("torch", "torchvision", "mmcv-full", "mmdet", "mlflow", "numpy", "lcp")
SIDECAR_NAME = "synthesis.json"  # written by `lcp data synth` beside the images it makes
DATA_SPLITS = ("train", "val", "test")
DATASET_DIGEST_LENGTH = 16  # MLflow keeps at most 36 characters of a dataset digest


def safe_key(key: str) -> str:
    """`key` made valid as an MLflow param/metric/tag key (same key -> same result)."""
    cleaned = re.sub(r"[^\w.\- :/]", "_", str(key))
    cleaned = re.sub(r"/{2,}", "/", re.sub(r"\.{2,}", ".", cleaned)).strip("/ ")
    cleaned = "/".join(part if part not in (".", "..") else "_" for part in cleaned.split("/")) or "_"
    if len(cleaned) > MAX_KEY_LENGTH:
        digest = hashlib.sha1(cleaned.encode()).hexdigest()[:12]
        cleaned = f"{cleaned[: MAX_KEY_LENGTH - 13]}-{digest}"
    return cleaned


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Nested dicts and lists of dicts as dotted keys (`model.backbone.depth`, `pipeline.0.type`)."""
    flat: dict[str, str] = {}
    for key, leaf in _leaves(value, prefix):
        flat[safe_key(key)] = leaf
    return flat


def _leaves(value: Any, prefix: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        if not value:
            yield prefix or "_", "{}"
        for key, item in value.items():
            yield from _leaves(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, (list, tuple)) and any(isinstance(item, Mapping) for item in value):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{prefix}.{index}")
    else:
        yield prefix or "_", _scalar_text(value)


def _scalar_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return json.dumps([_plain(item) for item in value])
    return str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)


def config_dict(cfg) -> dict[str, Any]:
    return cfg._cfg_dict.to_dict() if hasattr(cfg, "_cfg_dict") else dict(cfg)


def training_params(cfg) -> dict[str, str]:
    """The settings that tell runs apart, from the resolved config (which is logged whole as an
    artifact): detector, optimizer, lr, epochs, batch_per_gpu, image_scale, init.load_from,
    init.backbone, and for LCP kl_loss_weight, crux_lr_mult and mode_plan."""
    config = config_dict(cfg)
    model = config.get("model") or {}
    optimizer = config.get("optimizer") or {}
    runner = config.get("runner") or {}
    custom_keys = (optimizer.get("paramwise_cfg") or {}).get("custom_keys") or {}
    params = {
        "detector": model.get("type"),
        "optimizer": optimizer.get("type"),
        "lr": optimizer.get("lr"),
        "epochs": runner.get("max_epochs", config.get("total_epochs")),
        "iterations": runner.get("max_iters"),
        "batch_per_gpu": (config.get("data") or {}).get("samples_per_gpu"),
        "image_scale": train_image_scale(config.get("data") or {}),
        "init.load_from": config.get("load_from") or "none",
        "init.backbone": backbone_init(model),
        "kl_loss_weight": model.get("kl_loss_weight"),
        "crux_lr_mult": (custom_keys.get("crux_learner") or {}).get("lr_mult"),
        "mode_plan": mode_plan(config.get("custom_hooks") or []),
    }
    return {key: _scalar_text(value) for key, value in params.items() if value is not None}


def train_image_scale(data_cfg: Mapping[str, Any]) -> Any:
    """img_scale of the training pipeline's Resize (through dataset wrappers); None without one."""
    pending = [data_cfg.get("train")]
    while pending:
        dataset = pending.pop(0)
        if isinstance(dataset, (list, tuple)):
            pending.extend(dataset)
        elif isinstance(dataset, Mapping):
            for step in dataset.get("pipeline") or []:
                if isinstance(step, Mapping) and step.get("type") == "Resize" and "img_scale" in step:
                    return step["img_scale"]
            pending.extend(dataset[key] for key in ("dataset", "datasets") if key in dataset)
    return None


def backbone_init(model: Mapping[str, Any]) -> str:
    """Where the backbone's weights start: a checkpoint (e.g. torchvision://resnet50) or random."""
    backbone = model.get("backbone") or {}
    init = backbone.get("init_cfg") or {}
    checkpoint = init.get("checkpoint") if isinstance(init, Mapping) else None
    return str(checkpoint or backbone.get("pretrained") or model.get("pretrained") or "random")


def mode_plan(custom_hooks: list) -> str | None:
    """LCP's TrainModeHook plan as text, e.g. "6 catch_up_learner, 6 crux_learner, 12 alter"."""
    for hook in custom_hooks:
        if isinstance(hook, Mapping) and hook.get("type") == "TrainModeHook":
            plan = zip(hook.get("num_epoch") or [], hook.get("modes") or [], strict=False)
            return ", ".join(f"{epochs} {mode}" for epochs, mode in plan)
    return None


# ---- data sets ----------------------------------------------------------------------


def _join_root(data_root: str | None, path: str | None) -> str | None:
    if path is None:
        return None
    if data_root and not os.path.isabs(path):
        return os.path.join(data_root, path)
    return path


def dataset_sources(dataset_cfg: Mapping[str, Any]) -> list[dict[str, str]]:
    """Annotation files and image folders of a dataset config, through wrappers (dataset(s))."""
    found: list[dict[str, str]] = []
    if isinstance(dataset_cfg, (list, tuple)):
        for item in dataset_cfg:
            found.extend(dataset_sources(item))
        return found
    if not isinstance(dataset_cfg, Mapping):
        return found
    root = dataset_cfg.get("data_root")
    ann_files = dataset_cfg.get("ann_file")
    ann_files = ann_files if isinstance(ann_files, (list, tuple)) else [ann_files] if ann_files else []
    for ann_file in ann_files:
        found.append(
            {"ann_file": _join_root(root, ann_file), "img_prefix": _join_root(root, dataset_cfg.get("img_prefix"))}
        )
    if dataset_cfg.get("df_img_prefix"):
        df_source = {"img_prefix": _join_root(root, dataset_cfg["df_img_prefix"]), "role": "detection-favoured"}
        if dataset_cfg.get("df_ann_file"):  # which DF images LCP may draw (DFPairedDataset)
            df_source["df_ann_file"] = _join_root(root, dataset_cfg["df_ann_file"])
        found.append(df_source)
    for key in ("dataset", "datasets"):
        if key in dataset_cfg:
            found.extend(dataset_sources(dataset_cfg[key]))
    return found


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def annotation_fingerprint(ann_file: str) -> dict[str, str]:
    """sha256 and image count of a COCO annotation file ("missing" when it is not there)."""
    path = Path(ann_file)
    if not path.is_file():
        return {"ann_file": ann_file, "ann_sha256": "missing"}
    fingerprint = {"ann_file": ann_file, "ann_sha256": sha256_of(path)}
    try:
        images = json.loads(path.read_text(encoding="utf-8")).get("images")
        if isinstance(images, list):
            fingerprint["num_images"] = str(len(images))
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        fingerprint["num_images"] = "unreadable"
    return fingerprint


def data_params(data_cfg: Mapping[str, Any]) -> dict[str, str]:
    """`data.<split>[.<i>].{ann_file, ann_sha256, num_images, img_prefix}` for train/val/test."""
    params: dict[str, str] = {}
    for split in DATA_SPLITS:
        if split not in data_cfg:
            continue
        sources = dataset_sources(data_cfg[split])
        annotated = [s for s in sources if "ann_file" in s]
        for index, source in enumerate(annotated):
            prefix = f"data.{split}" if len(annotated) == 1 else f"data.{split}.{index}"
            for key, value in annotation_fingerprint(source["ann_file"]).items():
                params[safe_key(f"{prefix}.{key}")] = value
            if source.get("img_prefix"):
                params[safe_key(f"{prefix}.img_prefix")] = source["img_prefix"]
        # LCP's detection-favoured images: data.<split>.df.{ann_file, ann_sha256, num_images, img_prefix}
        for source in sources:
            if source.get("role") != "detection-favoured":
                continue
            if source.get("df_ann_file"):
                for key, value in annotation_fingerprint(source["df_ann_file"]).items():
                    params[safe_key(f"data.{split}.df.{key}")] = value
            params[safe_key(f"data.{split}.df.img_prefix")] = source["img_prefix"]
    return params


def dataset_inputs(data_cfg: Mapping[str, Any], contexts: Mapping[str, str]) -> list[dict[str, str]]:
    """MLflow dataset inputs (name, digest, source, profile, context) of the annotation files of the
    splits in `contexts` ({"train": "training", "test": "evaluation"}); a file used by two splits
    is one input, of the first split's context."""
    inputs: dict[str, dict[str, str]] = {}
    for split, context in contexts.items():
        for source in dataset_sources(data_cfg.get(split) or {}):
            ann_file = source.get("ann_file") or source.get("df_ann_file")
            if not ann_file or str(Path(ann_file).resolve()) in inputs:
                continue
            path = Path(ann_file).resolve()
            fingerprint = annotation_fingerprint(ann_file)
            if fingerprint["ann_sha256"] == "missing":
                continue
            # <data set>/<file>: data/demo/annotations/lowq_test.json and data/robustness/demo/beta_0.02_test.json
            # are demo/lowq_test and demo/beta_0.02_test
            folder = path.parent.parent if path.parent.name == "annotations" else path.parent
            name = f"{folder.name}/{path.stem}"
            profile = {
                "num_images": fingerprint.get("num_images"),
                "images": source.get("img_prefix"),
                "sha256": fingerprint["ann_sha256"],
            }
            inputs[str(path)] = {
                "name": name,
                "digest": fingerprint["ann_sha256"][:DATASET_DIGEST_LENGTH],
                "source_type": "local",
                "source": json.dumps({"uri": path.as_uri()}),
                "profile": json.dumps(profile),
                "context": context,
            }
    return list(inputs.values())


def sidecars_of(data_cfg: Mapping[str, Any], splits: Sequence[str] = DATA_SPLITS) -> dict[str, Path]:
    """Split -> the synthesis sidecar (`<image folder>/synthesis.json`) of its images, for the
    `splits` whose (first) annotated image folder has one (not a detection-favoured folder)."""
    found = {}
    for split in splits:
        sources = dataset_sources(data_cfg.get(split) or {})
        folders = [s["img_prefix"] for s in sources if s.get("img_prefix") and s.get("ann_file")]
        if folders and (sidecar := Path(folders[0]) / SIDECAR_NAME).is_file():
            found[split] = sidecar
    return found


def degradation_params(sidecars: Mapping[str, str | os.PathLike]) -> dict[str, str]:
    """`degradation.<split>.*` from `lcp data synth` sidecars by split (the per-image list left
    out): the same keys for every run, so that runs compare on their test sets' fog whatever
    their folders are called."""
    from lcp.io import read_json

    params: dict[str, str] = {}
    for split, sidecar in sidecars.items():
        content = read_json(sidecar)
        if not isinstance(content, dict):
            continue
        summary = {key: value for key, value in content.items() if key != "images"}
        summary["num_images"] = len(content.get("images") or {})
        params.update(flatten(summary, f"degradation.{split}"))
    return params


# ---- code and machine ---------------------------------------------------------------


def package_versions() -> dict[str, str]:
    versions = {"version.python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            versions[f"version.{name}"] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[f"version.{name}"] = "missing"
    return versions


def code_root() -> Path:
    """The checkout this lcp package is imported from (its git state is the code's version)."""
    return Path(__file__).resolve().parents[2]


def git_state(repo: Path | None = None) -> dict[str, str]:
    """{"git.commit", "git.dirty"} of the checkout, or {} outside git."""
    repo = repo or code_root()

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=20, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"git.commit": commit, "git.dirty": "true" if dirty else "false"}


def runtime_tags() -> dict[str, str]:
    """Who and where: host, user, SLURM job, Snakemake rule and wildcards, workflow invocation,
    and the training seed of the run's model (lcp.seed, from LCP_SEED)."""
    tags = {"host": socket.gethostname()}
    try:
        tags["mlflow.user"] = getpass.getuser()
    except (KeyError, OSError):
        pass
    for tag, variable in (
        ("slurm.job_id", "SLURM_JOB_ID"),
        ("slurm.node", "SLURMD_NODENAME"),
        ("slurm.array_task_id", "SLURM_ARRAY_TASK_ID"),
        ("snakemake.rule", settings.ENV_SNAKEMAKE_RULE),
        (settings.TAG_INVOCATION, settings.ENV_INVOCATION_ID),
    ):
        if os.environ.get(variable):
            tags[tag] = os.environ[variable]
    seed = settings.job_seed()
    if seed is not None:
        tags[settings.TAG_SEED] = str(seed)
    wildcards = settings.snakemake_wildcards()
    if wildcards:
        tags["snakemake.wildcards"] = json.dumps(wildcards, sort_keys=True)
        tags.update({safe_key(f"snakemake.wildcard.{k}"): v for k, v in wildcards.items()})
    git = git_state()
    if git:
        tags["mlflow.source.git.commit"] = git["git.commit"]
        tags["git.dirty"] = git["git.dirty"]
    return tags


def run_tags(scene: str, step: str, method: str, variant: str | None, *, source: str, **extra: Any) -> dict[str, Any]:
    """The tags a run starts with: who and where (runtime_tags), its names, the command that made it
    (mlflow.source.name), `extra` (over runtime_tags' own), and the invocation's parent run of its scene.
    A None value is no tag."""
    tags = {
        **runtime_tags(),
        settings.TAG_SCENE: scene,
        settings.TAG_STEP: step,
        settings.TAG_METHOD: method,
        settings.TAG_VARIANT: variant,
        "mlflow.source.name": source,
        **extra,
    }
    parent = settings.parent_run_ids().get(scene)
    if parent:
        tags["mlflow.parentRunId"] = parent
    return tags
