"""Loading an mmdet config the way every `lcp` tool does: file, then --cfg-options, then ${...}.

mmdet's own tools resolve `${key}` references before applying --cfg-options, so an
overridden `data_root` would not reach the paths built from it. Here the overrides come
first and the references are resolved afterwards, repeatedly, so references to keys that
are themselves references work too.

Every --cfg-options key must already be in the config (mmcv's merge would silently add a
misspelt one, `optimzer.lr=0.5`, and train without it), and its value must have the kind
of the value it replaces: see check_cfg_options. A key written with a leading `+`
(`+fp16.loss_scale=dynamic`) may add settings the config does not have yet, but not a
top-level key that nothing reads (`+crux_lr_mult=10` in a plain Cascade R-CNN config).
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from lcp.errors import LCPError

_MAX_REFERENCE_DEPTH = 10


class CfgOptionError(LCPError):
    """One --cfg-options KEY the config does not take: `key` as given, `problem` in words."""

    def __init__(self, source: str, key: str, problem: str):
        super().__init__(f"{source}: --cfg-options {key}: {problem}")
        self.key, self.problem = key, problem


def _references(value: Any):
    """The "${...}" strings in a config value, at any depth."""
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _references(item)
    elif isinstance(value, str) and "${" in value:
        yield value


def refuse_unresolved(settings: Mapping[str, Any]) -> None:
    """One line naming the fix when a model is built from a config whose ${...} references were
    never resolved: mmdet's init_detector and get_flops read a config file as it is. (mmcv's
    registry puts the model's type before the line.)"""
    for key, value in settings.items():
        for reference in _references(value):
            raise LCPError(
                f"{key} holds {reference!r}, a reference of a config that was read without resolving "
                "them; build from lcp.apis.config.load_config(path) or lcp.apis.inference.init_detector(path, "
                "checkpoint), or pass the Config through mmdet.utils.replace_cfg_vals first"
            )


def _has_reference(value: Any) -> bool:
    return next(_references(value), None) is not None


def resolve_references(cfg, source: str):
    """Replace "${key}" strings by the config's values until none is left."""
    from mmdet.utils import replace_cfg_vals

    for _ in range(_MAX_REFERENCE_DEPTH):
        if not _has_reference(cfg._cfg_dict):
            return cfg
        try:
            cfg = replace_cfg_vals(cfg)
        except KeyError as exc:
            raise LCPError(f"{source}: the config refers to ${{{exc.args[0]}}}, which it does not define") from None
    raise LCPError(
        f"{source}: ${{...}} references nest deeper than {_MAX_REFERENCE_DEPTH} levels (a key that refers to itself?)"
    )


def check_class_count(cfg, source: str) -> None:
    classes, num_classes = cfg.get("classes"), cfg.get("num_classes")
    if isinstance(classes, str):  # a file of class names: checked against the annotations later
        return
    if classes is not None and num_classes is not None and len(classes) != num_classes:
        raise LCPError(
            f"{source}: num_classes={num_classes} but classes has {len(classes)} names "
            f"{list(classes)}; set both (e.g. --cfg-options num_classes={len(classes)})"
        )


# The pipeline steps whose img_scale mmcv hands to OpenCV's resize.
SCALED_STEPS = ("Resize", "MultiScaleFlipAug")


def _scale_settings(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every img_scale of a SCALED_STEPS step, at any depth."""
    if isinstance(node, Mapping):
        if node.get("type") in SCALED_STEPS and "img_scale" in node:
            yield f"{prefix}img_scale", node["img_scale"]
        items = [(str(key), value) for key, value in node.items()]
    elif isinstance(node, (list, tuple)):
        items = [(str(index), value) for index, value in enumerate(node)]
    else:
        return
    for key, value in items:
        yield from _scale_settings(value, f"{prefix}{key}.")


def _is_image_size(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(side, int) and not isinstance(side, bool) and side > 0 for side in value)
    )


def check_image_scales(cfg, source: str) -> None:
    """Refuse an img_scale (the config's own, or a Resize's or MultiScaleFlipAug's) that is not
    an image size, or a list of them: two whole numbers above 0. OpenCV fails on the first
    image with an assertion on (0, 0) or a negative size, and cannot parse a fraction. A
    ${...} reference (a config read unresolved) and None (a step sized by scale_factor) pass."""
    settings = [("img_scale", cfg["img_scale"])] if "img_scale" in cfg else []
    for key, value in [*settings, *_scale_settings(cfg._cfg_dict)]:
        if value is None or (isinstance(value, str) and "${" in value):
            continue
        several = isinstance(value, list) and value and all(isinstance(item, (list, tuple)) for item in value)
        if not all(map(_is_image_size, value if several else [value])):
            raise LCPError(
                f"{source}: {key}={value!r} is not an image size; give two whole numbers above 0, "
                f"e.g. {key}=(1333, 800), or a list of such sizes"
            )


def _flat_keys(node: Any, prefix: str = "") -> list[str]:
    """Every dotted key of a config (dict keys and list indices), at every depth."""
    if isinstance(node, Mapping):
        items = [(str(key), value) for key, value in node.items()]
    elif isinstance(node, (list, tuple)):
        items = [(str(index), value) for index, value in enumerate(node)]
    else:
        return []
    keys = []
    for key, value in items:
        keys.append(prefix + key)
        keys += _flat_keys(value, f"{prefix}{key}.")
    return keys


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a text"
    if isinstance(value, (list, tuple)):
        kinds = {_kind(item) for item in value}
        if len(kinds) == 1 and kinds <= {"a number", "a text"}:
            return f"a list of {kinds.pop()[2:]}s"
        return "a list"
    if isinstance(value, Mapping):
        return "a group of settings"
    return f"a {type(value).__name__}"


def _same_kind(old: Any, new: Any) -> bool:
    """Whether `new` may replace `old`: None sets or unsets anything; numbers replace numbers
    (an int may replace a float and the other way round); a list of numbers (or of texts)
    takes a list of the same or one such item (mmcv's `step=3` for `step=[3]`, a class
    file for `classes`); a value of unknown type (a ${...} reference) takes anything."""
    if old is None or new is None or (isinstance(old, str) and "${" in old):
        return True
    if isinstance(old, bool) or isinstance(new, bool):
        return isinstance(old, bool) and isinstance(new, bool)
    if isinstance(old, (int, float)):
        return isinstance(new, (int, float))
    if isinstance(old, str):
        return isinstance(new, (str, list, tuple))
    if isinstance(old, Mapping):
        return False
    if isinstance(old, (list, tuple)):
        items = list(old)
        news = list(new) if isinstance(new, (list, tuple)) else [new]
        for kinds in ((int, float), (str,)):
            if items and all(isinstance(v, kinds) and not isinstance(v, bool) for v in items):
                return all(isinstance(v, kinds) and not isinstance(v, bool) for v in news)
        return True
    return True


# The top-level keys that mmdet's training and testing code or lcp's read by name (a `+KEY` may
# add them); any other key is read only through a ${KEY} reference of the config.
READ_TOP_LEVEL_KEYS = frozenset(
    "model data optimizer optimizer_config lr_config momentum_config runner total_epochs checkpoint_config "
    "log_config evaluation custom_hooks custom_imports fp16 auto_scale_lr workflow dist_params log_level "
    "load_from resume_from auto_resume work_dir gpu_ids device seed cudnn_benchmark opencv_num_threads "
    "mp_start_method find_unused_parameters train_cfg test_cfg classes num_classes img_scale data_root".split()
)
# Variables of the LCP configs that their model and optimizer refer to; a plain config has none.
LCP_ONLY_KEYS = ("crux_lr_mult", "kl_loss_weight", "mode_plan")


def _referred_to(root: Mapping[str, Any], key: str) -> bool:
    import re

    pattern = re.compile(r"\$\{" + re.escape(key) + r"[.}]")
    return any(pattern.search(reference) for reference in _references(root))


def _addable(root: Mapping[str, Any], name: str) -> bool:
    """Whether a `+KEY` may add the top-level key `name`: something reads it by name or through a ${name}."""
    return name in root or name in READ_TOP_LEVEL_KEYS or _referred_to(root, name)


def check_cfg_options(cfg, cfg_options: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The --cfg-options to merge into `cfg`, each checked against the config as read:

    - every part of a KEY must exist (a list's items by number), else one line names the key
      and the nearest existing one; a KEY written `+KEY` may add what is missing, but not a
      top-level key that nothing reads (READ_TOP_LEVEL_KEYS, or a ${KEY} of the config);
    - a VALUE must be of the kind of the value it replaces (see _same_kind), and a group of
      settings (a dict) can only be changed key by key.

    Returns the options without their `+`; a None that a `+KEY` reaches into is replaced by
    an empty group in `cfg`, so that mmcv merges the new keys into it."""
    from mmcv import ConfigDict

    root = cfg._cfg_dict
    checked: dict[str, Any] = {}
    known: list[str] | None = None
    for raw_key, value in cfg_options.items():
        adding = raw_key.startswith("+")
        key = raw_key[1:] if adding else raw_key
        parts = key.split(".")
        if not all(parts):
            raise CfgOptionError(source, raw_key, "not a KEY or dotted KEY.SUBKEY (an empty part)")
        if adding and not _addable(root, parts[0]):
            lcp_only = " (a setting of LCP configs)" if parts[0] in LCP_ONLY_KEYS else ""
            raise CfgOptionError(
                source,
                raw_key,
                f"adds {parts[0]}{lcp_only}, which neither mmdet nor lcp reads and no ${{{parts[0]}}} of the config "
                "refers to, so it would change nothing",
            )
        node, parent, walked = root, None, []
        for part in parts:
            prefix = ".".join(walked)
            if isinstance(node, tuple):
                raise CfgOptionError(
                    source, raw_key, f"{prefix} is a tuple {node!r}; set it whole, e.g. {prefix}=(a,b)"
                )
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise CfgOptionError(
                        source,
                        raw_key,
                        f"{prefix} is a list of {len(node)} items; "
                        f"pick one by its number, {prefix}.0 to {prefix}.{len(node) - 1}",
                    )
                parent, node = node, node[int(part)]
            elif isinstance(node, Mapping) and part in node:
                parent, node = node, node[part]
            elif adding and (isinstance(node, Mapping) or node is None):
                if node is None:  # e.g. +optimizer_config.grad_clip.max_norm=35 where grad_clip=None
                    parent[walked[-1] if isinstance(parent, Mapping) else int(walked[-1])] = ConfigDict()
                break
            elif isinstance(node, Mapping):
                if known is None:
                    known = _flat_keys(root)
                missing = ".".join([*walked, part])
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]}?)" if close else ""
                # +KEY adds what nothing reads at the top level only to be refused (above): no such advice
                advice = f"to add a new key, write +{key}=VALUE" if walked or _addable(root, part) else ""
                raise CfgOptionError(
                    source,
                    raw_key,
                    f"the config has no key {missing}{hint}"
                    + (f"; {advice}" if advice else ", and neither mmdet nor lcp reads one"),
                )
            elif node is None:
                raise CfgOptionError(
                    source, raw_key, f"{prefix} is None in the config; to give it settings, write +{key}=VALUE"
                )
            else:
                raise CfgOptionError(
                    source, raw_key, f"{prefix} is {_kind(node)} ({node!r}), not a group of settings with a key {part}"
                )
            walked.append(part)
        else:
            if not _same_kind(node, value):
                if isinstance(node, Mapping):
                    raise CfgOptionError(
                        source,
                        raw_key,
                        f"{key} is a group of settings "
                        f"({', '.join(map(str, node))}); set them one by one, "
                        f"e.g. {key}.{next(iter(node), 'KEY')}=VALUE",
                    )
                raise CfgOptionError(
                    source, raw_key, f"takes {_kind(node)} (the config has {node!r}), not {_kind(value)} ({value!r})"
                )
        checked[key] = value
    return checked


# How TrainModeHook's arguments take the plan from a config's top-level `mode_plan`.
MODE_PLAN_REFERENCES = {"num_epoch": "${mode_plan.num_epoch}", "modes": "${mode_plan.modes}"}


def check_mode_plan_used(cfg, source: str) -> None:
    """Refuse a config with a `mode_plan` whose TrainModeHook would train another plan: a hook
    given its own num_epoch or modes (an old `custom_hooks.N.num_epoch` override, a copied hook
    list) would silently ignore mode_plan and every override of it. A resolved config (a work
    dir's copy) passes: its hook holds mode_plan's values."""
    plan = cfg.get("mode_plan")
    if plan is None:  # the authors' configs: the hook's own arguments are the plan
        return
    for index, hook in enumerate(cfg.get("custom_hooks") or []):
        if not isinstance(hook, Mapping) or hook.get("type") != "TrainModeHook":
            continue
        for key, reference in MODE_PLAN_REFERENCES.items():
            value = hook.get(key)
            if value != reference and (key not in plan or list(value or []) != list(plan[key])):
                example = f"[{','.join(map(str, value))}]" if isinstance(value, (list, tuple)) else "[...]"
                raise LCPError(
                    f"{source}: custom_hooks.{index} (TrainModeHook) has {key}={value!r}, which ignores "
                    f"the config's mode_plan; set the plan there (--cfg-options mode_plan.{key}={example}) "
                    f"and leave the hook's {key}='{reference}'"
                )


def check_mode_plan_length(cfg, source: str) -> None:
    """Refuse a training config whose TrainModeHook's plan is malformed, shorter than
    runner.max_epochs, or longer so that a train mode of the plan is never reached
    (lcp.modes.check_plan_length): the hook itself would find those only once the run starts,
    the last not at all. A config without the hook passes."""
    from lcp.modes import check_plan, check_plan_length

    for index, hook in enumerate(cfg.get("custom_hooks") or []):
        if not isinstance(hook, Mapping) or hook.get("type") != "TrainModeHook":
            continue
        plan, name = (cfg.mode_plan, "mode_plan") if cfg.get("mode_plan") else (hook, f"custom_hooks.{index}")
        num_epoch, modes = plan.get("num_epoch"), plan.get("modes")
        if not isinstance(num_epoch, (list, tuple)) or not isinstance(modes, (list, tuple)):
            return  # the hook's defaults, or references the hook's build resolves
        check_plan(num_epoch, modes, f"{source}: {name}")
        max_epochs = _max_epochs(cfg)
        if max_epochs is not None:
            check_plan_length(num_epoch, modes, max_epochs, f"{source}: {name}.num_epoch")


def _forget_temporary_files(traceback) -> None:
    """mmcv's Config.fromfile fails inside a temporary folder that it removes on the way out,
    leaving its open temporary copy of the config in the traceback's frames; closing that copy
    later (when the traceback is dropped) fails to delete it and prints 'Exception ignored ...
    FileNotFoundError'. Close those copies now, without deleting what is already gone."""
    while traceback is not None:
        for value in list(traceback.tb_frame.f_locals.values()):
            closer = getattr(value, "_closer", None)
            if isinstance(value, tempfile._TemporaryFileWrapper) and closer is not None:
                closer.delete = False
                value.close()
        traceback = traceback.tb_next


def read_config(path: str | os.PathLike, cfg_options: Mapping[str, Any] | None = None, import_modules: bool = True):
    """Read an mmdet config file and apply checked overrides, without resolving ${...}.

    `import_modules=False` leaves the config's custom_imports (lcp's models, datasets and
    hooks) unimported: the workflow's pre-flight reads configs this way, in seconds."""
    from mmcv import Config

    path = str(path)
    if not Path(path).is_file():
        raise LCPError(f"{path}: config file does not exist")
    if path.endswith(".py"):
        try:
            ast.parse(Path(path).read_text(encoding="utf-8"), path)
        except SyntaxError as exc:
            raise LCPError(f"{path}:{exc.lineno}: not valid Python ({exc.msg})") from None
    problem = None
    try:
        cfg = Config.fromfile(path, import_custom_modules=import_modules)
    except (SyntaxError, KeyError, ValueError, TypeError, NameError, FileNotFoundError, ModuleNotFoundError) as exc:
        problem = f"{path}: cannot read the config ({type(exc).__name__}: {exc})"
        _forget_temporary_files(exc.__traceback__)
    if problem:
        raise LCPError(problem)
    if cfg_options:
        cfg.merge_from_dict(check_cfg_options(cfg, cfg_options, path))
    check_mode_plan_used(cfg, path)
    return cfg


def load_config(path: str | os.PathLike, cfg_options: Mapping[str, Any] | None = None):
    """Read an mmdet config file, apply checked overrides, resolve references; LCPError on failure."""
    path = str(path)
    cfg = resolve_references(read_config(path, cfg_options), path)
    check_class_count(cfg, path)
    check_image_scales(cfg, path)
    return cfg


def is_lcp_model(cfg: Mapping[str, Any]) -> bool:
    """Whether a config builds LCP's detector (crux and catch-up learners), not a plain one."""
    return (cfg.get("model") or {}).get("type") == "LCPDetector"


def config_files(path: str | os.PathLike) -> list[str]:
    """The config file and every file it inherits from (`_base_`, recursively), each once,
    as paths relative to where `path` is given: what a run's result depends on, so that an
    edit to a base file is a change of the run (the workflow's inputs, a work dir's record).

    Read without executing the files; a `_base_` that is not a literal is an LCPError."""
    found: list[str] = []

    def visit(file: str) -> None:
        file = os.path.normpath(file)
        if file in found:
            return
        found.append(file)
        try:
            tree = ast.parse(Path(file).read_text(encoding="utf-8"), filename=file)
        except FileNotFoundError:
            raise LCPError(f"{file}: config file not found") from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise LCPError(f"{file}: cannot read the config ({exc})") from None
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                isinstance(target, ast.Name) and target.id == "_base_" for target in node.targets
            ):
                try:
                    bases = ast.literal_eval(node.value)
                except ValueError:
                    raise LCPError(f"{file}: _base_ must be a file name or a list of them, written out") from None
                for base in [bases] if isinstance(bases, str) else bases:
                    visit(os.path.join(os.path.dirname(file), base))

    visit(os.fspath(path))
    return found


@contextlib.contextmanager
def built_from_settings(source: str | os.PathLike, what: str) -> Iterator[None]:
    """Around building `what` from a config: a constructor that refuses its settings, or a type no
    registry holds, is an LCPError naming the config (exit 2: a rerun cannot pass unchanged)
    instead of a traceback that a workflow retries."""
    try:
        yield
    except KeyError as exc:  # an unregistered type (mmcv's message names it), or a refused key
        text = settings_error_text(exc)
        if not text.endswith(" registry"):
            text = f"the {what} cannot be built from its settings: {text}"
        raise LCPError(f"{source}: {text}") from None
    except (ValueError, TypeError, AssertionError) as exc:  # a constructor refusing its settings
        raise LCPError(f"{source}: the {what} cannot be built from its settings: {settings_error_text(exc)}") from None


def settings_error_text(exc: BaseException) -> str:
    """A constructor's error as one readable line. mmcv's build_from_cfg re-raises it once per
    level as `type(e)(f"{Class}: {e}")`, which quotes a KeyError's text again at each level
    (`LCPDetector: "LCPResNet: 'invalid depth 7 for resnet'"`), and an mmdet `assert` without a
    message leaves nothing after the class names (`LCPDetector: LCPResNet: `). This gives
    `LCPDetector: LCPResNet: invalid depth 7 for resnet`, and for a bare assert the condition
    that failed and where (`... failed the check max(out_indices) < num_stages (resnet.py:439)`)."""
    import linecache

    chain = [exc]
    while True:
        outer, inner = chain[-1], chain[-1].__context__
        if (
            inner is None
            or type(inner) is not type(outer)
            or not outer.args
            or not isinstance(outer.args[0], str)
            or not outer.args[0].endswith(f": {inner}")
        ):
            break
        chain.append(inner)
    names = [outer.args[0][: -len(f": {inner}")] for outer, inner in zip(chain, chain[1:], strict=False)]
    innermost = chain[-1]
    text = str(innermost.args[0]) if len(innermost.args) == 1 else str(innermost)
    if not text.strip():
        frame = innermost.__traceback__
        while frame is not None and frame.tb_next is not None:
            frame = frame.tb_next
        if frame is not None:
            file, line = frame.tb_frame.f_code.co_filename, frame.tb_lineno
            statement = linecache.getline(file, line).strip()
            condition = statement[len("assert ") :] if statement.startswith("assert ") else statement
            text = (
                f"failed the check {condition} ({Path(file).name}:{line})" if condition else "refused (no reason given)"
            )
        else:
            text = f"refused its settings ({type(innermost).__name__}, no reason given)"
    return ": ".join([*names, text])


def build_model(cfg, source: str | os.PathLike, **cfgs):
    """The config's detector (`cfgs`: train_cfg, test_cfg), built_from_settings."""
    from mmdet.models import build_detector

    with built_from_settings(source, "model"):
        return build_detector(cfg.model, **cfgs)


def _is_count(value: Any, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _max_epochs(cfg) -> int | None:
    value = (cfg.get("runner") or {}).get("max_epochs", cfg.get("total_epochs"))
    return value if _is_count(value, 1) else None


def check_training_settings(cfg, source: str) -> None:
    """Refuse settings under which a training cannot give what it is run for:
    - a batch or worker count that is no count (a traceback deep in the data loader);
    - checkpoint_config = None, or an interval with save_last=False that skips the last epoch:
      mmcv trains on without saving the run's end, the command exits 0, and --auto-resume and
      the workflow (latest.pth) take an earlier epoch, or find nothing, as its result;
    - checkpoint_config.out_dir: the checkpoints go where neither looks;
    - a log_config hook that cannot log (check_logger_hooks);
    - mmdet's EMA hook at a priority that swaps the averaged weights in after the epoch's
      checkpoint is saved: the checkpoint held the raw weights in the place of the averaged ones,
      and a resumed run went on from the averaged ones."""
    data = cfg.get("data") or {}
    for group in ("", "train_dataloader.", "val_dataloader.", "test_dataloader."):
        settings = data.get(group[:-1], {}) if group else data
        for key, least in (("samples_per_gpu", 1), ("workers_per_gpu", 0)):
            value = settings.get(key) if isinstance(settings, Mapping) else None
            if value is not None and not _is_count(value, least) and not _has_reference(value):
                raise LCPError(
                    f"{source}: data.{group}{key}={value!r} is not a count; give a whole number of {least} or more"
                )
    if "checkpoint_config" in cfg and cfg.checkpoint_config is None:
        raise LCPError(
            f"{source}: checkpoint_config=None saves no checkpoint, so the trained weights would be lost; "
            "keep it, e.g. --cfg-options checkpoint_config.interval=1"
        )
    check_logger_hooks(cfg, source)
    check_ema_hooks(cfg, source)
    saving, max_epochs = cfg.get("checkpoint_config") or {}, _max_epochs(cfg)
    if saving.get("out_dir"):
        raise LCPError(
            f"{source}: checkpoint_config.out_dir={saving['out_dir']!r} saves the checkpoints outside the work "
            "dir, where --auto-resume and the workflow's latest.pth look for them; give --work-dir on that "
            "disk instead"
        )
    if max_epochs is None or not saving.get("by_epoch", True) or saving.get("save_last", True):
        return
    interval = saving.get("interval", -1)
    if not (_is_count(interval, 1) and max_epochs % interval == 0) and not _has_reference(interval):
        raise LCPError(
            f"{source}: checkpoint_config.interval={interval!r} with save_last=False saves no checkpoint of the "
            f"last epoch (runner.max_epochs={max_epochs}), so latest.pth would be an earlier one; drop "
            "save_last=False or give an interval that divides max_epochs"
        )


# mmcv's logger hooks that need a package mmcv does not depend on (and lcp does not install)
LOGGER_PACKAGES = {
    "TensorboardLoggerHook": "tensorboard",
    "WandbLoggerHook": "wandb",
    "NeptuneLoggerHook": "neptune",
    "DvcliveLoggerHook": "dvclive",
    "ClearMLLoggerHook": "clearml",
    "SegmindLoggerHook": "segmind",
    "PaviLoggerHook": "pavi",
}


def check_logger_hooks(cfg, source: str) -> None:
    """Refuse a log_config hook that would stop the run once it has started (after the work dir
    is made, or at the very end): one whose package is not installed (TensorboardLoggerHook
    imports tensorboard in before_run), and mmcv's MlflowLoggerHook with its default
    log_model=True, whose mlflow.pytorch.log_model raises under MLflow 3 after the last epoch."""
    import importlib.util

    for hook in (cfg.get("log_config") or {}).get("hooks") or []:
        kind = hook.get("type") if isinstance(hook, Mapping) else None
        package = LOGGER_PACKAGES.get(kind)
        if package and importlib.util.find_spec(package) is None:
            raise LCPError(
                f"{source}: log_config.hooks: {kind} needs the Python package {package}, which is not "
                f"installed; install it (pip install {package}) or drop the hook"
            )
        if kind == "MlflowLoggerHook" and hook.get("log_model", True):
            raise LCPError(
                f"{source}: log_config.hooks: MlflowLoggerHook with log_model=True (its default) fails after "
                "the last epoch (MLflow 3's mlflow.pytorch.log_model wants an input example mmcv does not "
                "give); set log_model=False: the checkpoints are in the work dir"
            )


def check_ema_hooks(cfg, source: str) -> None:
    """mmdet's EMA hooks must swap the weights before CheckpointHook (NORMAL) saves them, as their
    docstring says and mmdet's configs do (priority=49); of equal priority, they run after it."""
    from mmcv.runner import get_priority

    for index, hook in enumerate(cfg.get("custom_hooks") or []):
        kind = hook.get("type") if isinstance(hook, Mapping) else None
        if kind not in ("ExpMomentumEMAHook", "LinearMomentumEMAHook"):
            continue
        priority = hook.get("priority", "NORMAL")
        try:
            late = get_priority(priority) >= get_priority("NORMAL")
        except (ValueError, TypeError):
            continue  # mmcv names the bad priority when it registers the hook
        if late:
            raise LCPError(
                f"{source}: custom_hooks.{index} ({kind}) has priority {priority!r}, so it swaps the averaged "
                "weights in after the epoch's checkpoint is saved (the checkpoint would hold the raw ones where "
                "the averaged ones belong, and a resumed run would go on from the averaged ones); give it "
                "priority=49, as mmdet's configs do"
            )


def schedule_warnings(cfg, source: str, iters_per_epoch: int | None = None, validate: bool = True) -> list[str]:
    """Settings that mmcv accepts and that do nothing in this run, one line each: lr steps at or
    after the last epoch, a warm-up that outlasts the training, an evaluation interval that
    evaluates no epoch. Each can be deliberate (a short trial run of a longer schedule), so
    they are said, not refused."""
    max_epochs = _max_epochs(cfg)
    if max_epochs is None:
        return []
    found = []
    lr = cfg.get("lr_config") or {}
    steps = lr.get("step")
    steps = [steps] if _is_count(steps, 1) else list(steps) if isinstance(steps, (list, tuple)) else []
    late = [step for step in steps if _is_count(step, max_epochs)]
    if str(lr.get("policy", "")).lower() == "step" and lr.get("by_epoch", True) and late:
        found.append(
            f"{source}: lr_config.step={steps!r}: the lr never decays at {late} (runner.max_epochs={max_epochs}; "
            f"a step at epoch N applies from epoch N+1)"
        )
    warmup = lr.get("warmup_iters") if lr.get("warmup") else None
    if lr.get("warmup_by_epoch"):
        total, whole = max_epochs, f"runner.max_epochs={max_epochs}; warmup_by_epoch=True"
    else:
        total = max_epochs * iters_per_epoch if iters_per_epoch else None
        whole = f"runner.max_epochs={max_epochs} x {iters_per_epoch} iterations per epoch = {total} iterations"
    if _is_count(warmup, 1) and total is not None and warmup >= total:
        found.append(
            f"{source}: lr_config.warmup_iters={warmup} outlasts the whole training ({whole}): "
            "the lr never reaches optimizer.lr"
        )
    evaluation = cfg.get("evaluation") or {}
    interval, start = evaluation.get("interval", 1), evaluation.get("start")
    if validate and evaluation.get("by_epoch", True) and _is_count(interval, 1):
        first = start if _is_count(start, 1) else interval  # start=0: the epochs by interval, and before training
        if first > max_epochs:
            setting = f"evaluation.start={start}" if _is_count(start, 1) else f"evaluation.interval={interval}"
            found.append(
                f"{source}: {setting} evaluates none of the {max_epochs} epochs (runner.max_epochs): no validation "
                "AP and no best checkpoint; lower it, or pass --no-validate to train without evaluation"
            )
    return found


def check_custom_keys(model, optimizer_cfg: Mapping[str, Any], source: str) -> list[str]:
    """optimizer.paramwise_cfg.custom_keys keys that are in no parameter's name: mmcv's
    DefaultOptimizerConstructor gives a key's lr_mult/decay_mult to the parameters whose dotted
    name contains it, and one that matches none changes nothing, silently. Refused when no key
    matches any parameter (a misspelt module: the setting does nothing at all); otherwise each
    key that matches none is returned as a line for the log: mmdet's own Swin configs give
    absolute_pos_embed a decay_mult for the variants that have one, and train Swin-T without it."""
    if optimizer_cfg.get("constructor", "DefaultOptimizerConstructor") != "DefaultOptimizerConstructor":
        return []
    keys = (optimizer_cfg.get("paramwise_cfg") or {}).get("custom_keys") or {}
    # mmcv matches against "prefix.name", which is ".name" for a parameter of the top module
    names = [name if "." in name else f".{name}" for name, _ in model.named_parameters()]
    unmatched = [key for key in keys if not any(key in name for name in names)]
    if unmatched and len(unmatched) == len(keys):
        key = unmatched[0]
        modules = [name for name, _ in getattr(model, "module", model).named_children()]
        raise LCPError(
            f"{source}: optimizer.paramwise_cfg.custom_keys.{key} is in no parameter's name, so its "
            f"{dict(keys[key])} would apply to nothing; the model's modules are {', '.join(modules)}"
        )
    return [
        f"{source}: optimizer.paramwise_cfg.custom_keys.{key} is in no parameter's name; its {dict(keys[key])} "
        "applies to nothing in this model"
        for key in unmatched
    ]
