"""What the workflow checks before any job starts (in a dry run too), and how its jobs avoid
retries that cannot help. lcp.workflow.session and lcp.workflow.checks call these; each problem is one line.

- yaml_problem: a config file that is not valid YAML, or gives a key twice, with its line and
  column (snakemake's own message names neither; a key given twice it keeps silently).
- check_model_step: a scene's mmdet config read with the --cfg-options its jobs will pass, so
  that a misspelt key, a value of the wrong kind, an LCP mode plan that does not cover the
  run's epochs or a checkpoint setting that would not save the last epoch stops the run
  instead of a job hours later. A check that passed is remembered in .snakemake/
  (PASSED_CHECKS) until the config, its options, lcp or mmcv change.
- evaluation_differences: the test settings (the test set, its pipeline, the detector's
  test_cfg) in which a scene's baseline and LCP evaluations differ; LCP - baseline compares them.
- missing_images: the images of a converted set that are no longer in its folder (the
  converter ran in an earlier run; a later deletion would only show inside a training job).
- image_source, same_images: whether a scene's clean and low-quality sets are converted
  from the same images (LCP's KL loss between the two is then exactly 0).
- training_boxes: the boxes per scene class in a training set's converted annotation file
  (a set without any box of the scene's classes makes mmdet fail in every retry with
  "need at least one array to concatenate").
- unfixable_guard: the shell around a job's command that records a failure a retry cannot
  fix (exit status 2: `lcp` refused its input or config) so that snakemake's retries of that
  job end at once instead of running it again; any other failure (a time limit, a lost node,
  a crash) is retried as before.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path

from lcp.data.coco import load_coco
from lcp.errors import INPUT_REFUSED, LCPError
from lcp.io import yaml_error_text

# The exit status of an `lcp` command that refused its input or config (lcp.cli.main), and of
# a command line it could not parse (argparse).
UNFIXABLE_STATUS = INPUT_REFUSED
UNFIXABLE_SUFFIX = ".unfixable"


def _duplicate_key(node) -> tuple[str, int, object] | None:
    """(the key, the line it was first given on, the mark of its second one) of the first key
    given twice in one mapping of a composed YAML node tree, or None. Checked on the nodes as
    written, before construction: a merge (`<<: *base`) may override the keys it brings in, and
    PyYAML's constructor copies merged keys into the merging mapping."""
    import yaml

    seen_nodes: set[int] = set()
    pending = [node]
    while pending:
        current = pending.pop()
        if id(current) in seen_nodes:
            continue
        seen_nodes.add(id(current))
        if isinstance(current, yaml.MappingNode):
            first_line: dict = {}
            for key_node, value_node in current.value:
                pending.append(value_node)
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = (key_node.tag, key_node.value)
                if key in first_line:
                    return key_node.value, first_line[key], key_node.start_mark
                first_line[key] = key_node.start_mark.line + 1
        elif isinstance(current, yaml.SequenceNode):
            pending.extend(current.value)
    return None


def yaml_problem(path: str | Path) -> str | None:
    """None when `path` is valid YAML (or absent), else `PATH:LINE:COLUMN: not valid YAML: WHAT`."""
    import yaml

    path = Path(path)
    if not path.is_file():
        return None
    try:
        loader = yaml.SafeLoader(path.read_text(encoding="utf-8"))
        try:
            node = loader.get_single_node()  # parsed once: checked for keys given twice, then constructed
            if (duplicate := _duplicate_key(node)) is not None:
                key, first, mark = duplicate
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"{key!r} is given twice in one mapping (first on line {first}); "
                    "the later one would replace the first entirely",
                    mark,
                )
            if node is not None:
                loader.construct_document(node)
        finally:
            loader.dispose()
    except UnicodeDecodeError as exc:
        return f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"
    except yaml.YAMLError as exc:
        return yaml_error_text(path, exc)
    return None


# Checks of check_model_step that passed, kept between runs of the workflow: reading a config
# with its options imports mmcv (and torch), 1.9 s of a 3.1 s no-op `snakemake -n`.
PASSED_CHECKS = Path(".snakemake") / "lcp-passed-config-checks.json"


@cache
def _check_config(config: str, options: tuple[str, ...]) -> None:
    from lcp.apis.config import check_image_scales, check_mode_plan_length, check_training_settings, read_config
    from lcp.apis.options import parse_cfg_options

    key = _check_key(config, options)
    if key is not None and key in _passed_checks():
        return
    cfg = read_config(config, parse_cfg_options(list(options)), import_modules=False)
    check_mode_plan_length(cfg, config)
    check_image_scales(cfg, config)
    check_training_settings(cfg, config)
    if key is not None:
        _remember_passed(key)


def _check_key(config: str, options: tuple[str, ...]) -> str | None:
    """What a check's outcome depends on, hashed: the config and every `_base_` file it inherits
    (contents), the options, the lcp code that checks and mmcv's version. None when a file
    cannot be read (the check itself says why)."""
    import hashlib
    import json

    from lcp.apis.config import config_files
    from lcp.workflow.workdir import file_identity  # what a training's work dir records of its inputs

    digest = hashlib.sha256(_checker_identity().encode())
    try:
        digest.update(json.dumps([(file, file_identity(file)) for file in config_files(config)]).encode())
    except (LCPError, OSError):
        return None
    for option in options:
        digest.update(f"\0{option}".encode())
    return digest.hexdigest()


@cache
def _checker_identity() -> str:
    """lcp's own sources and mmcv's version: a new lcp or mmcv checks again."""
    import hashlib
    from importlib import metadata

    import lcp

    digest = hashlib.sha256()
    package = Path(lcp.__file__).parent
    for source in sorted(package.rglob("*.py")):
        digest.update(f"{source.relative_to(package)}\0".encode() + source.read_bytes())
    for distribution in ("mmcv-full", "mmcv", "mmdet"):
        try:
            digest.update(f"{distribution}=={metadata.version(distribution)}".encode())
        except metadata.PackageNotFoundError:
            pass
    return digest.hexdigest()


@cache
def _passed_checks() -> set[str]:
    from lcp.io import read_json

    try:
        return set(read_json(PASSED_CHECKS))
    except (LCPError, OSError, TypeError, ValueError):  # none yet, or unreadable: check again
        return set()


def _remember_passed(key: str) -> None:
    from lcp.io import write_json

    passed = _passed_checks()
    passed.add(key)
    try:
        write_json(PASSED_CHECKS, sorted(passed))
    except (LCPError, OSError):  # a read-only checkout: the checks run each time
        pass


def check_model_step(config: str, options: Sequence[str], scene_options: Mapping[str, object], where: str) -> None:
    """Read the mmdet `config` with a job's `options` (KEY=VALUE, as the job's command line
    passes them); LCPError naming `where` (e.g. scenes.demo.lcp) and the key otherwise.

    `scene_options`: the step's own cfg_options from the workflow config (the other options
    are the workflow's: data paths, classes). Each distinct config and options is read once."""
    from lcp.apis.config import CfgOptionError

    try:
        _check_config(config, tuple(options))
    except CfgOptionError as exc:
        if exc.key in scene_options:
            raise LCPError(f"{where}.cfg_options: {exc.key}: {exc.problem} (in {config})") from None
        raise LCPError(
            f"{where}.config: {config} does not take the workflow's --cfg-options {exc.key}: {exc.problem}"
        ) from None
    except LCPError as exc:
        raise LCPError(f"{where}.config: {exc}") from None


# What decides a model's test-set AP besides its weights: the test set as read (images,
# annotations, classes, pipeline and its img_scale), its loader and the detector's test_cfg.
EVALUATION_SETTINGS = ("data.test", "data.test_dataloader", "model.test_cfg")
# Of those, what makes two APs comparable at all; a test scale or test_cfg may differ on purpose
# (another detector as the baseline), and is warned of.
TEST_SET = ("data.test.ann_file", "data.test.img_prefix", "data.test.classes")


def evaluation_differences(
    baseline: tuple[str, Sequence[str]], lcp: tuple[str, Sequence[str]]
) -> list[tuple[str, str]]:
    """(key, one line) for each EVALUATION_SETTINGS key in which the evaluations of `baseline`
    and `lcp` (each its mmdet config and its `lcp test` --cfg-options) differ. A pair found
    alike is remembered as the other checks are (PASSED_CHECKS)."""
    keys = [_check_key(config, tuple(options)) for config, options in (baseline, lcp)]
    key = None if None in keys else f"evaluation\0{keys[0]}\0{keys[1]}"
    if key is not None and key in _passed_checks():
        return []
    settings = [_evaluation_settings(config, tuple(options)) for config, options in (baseline, lcp)]
    differences = []
    for name in sorted(settings[0].keys() | settings[1].keys()):
        values = [found.get(name, "not set") for found in settings]
        if values[0] != values[1]:
            differences.append(
                (
                    name,
                    f"baseline and lcp are tested differently: {name} is {values[0]!r} for baseline "
                    f"({baseline[0]}) but {values[1]!r} for lcp ({lcp[0]})",
                )
            )
    if key is not None and not differences:
        _remember_passed(key)
    return differences


@cache
def _evaluation_settings(config: str, options: tuple[str, ...]) -> dict[str, object]:
    """EVALUATION_SETTINGS of `config` read with `options`, ${...} resolved: dotted key -> value."""
    from lcp.apis.config import read_config, resolve_references
    from lcp.apis.options import parse_cfg_options

    cfg = resolve_references(read_config(config, parse_cfg_options(list(options)), import_modules=False), config)
    whole, found = cfg._cfg_dict.to_dict(), {}
    for name in EVALUATION_SETTINGS:
        value = whole
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        _flatten(name, value, found)
    # the files as mmdet's CustomDataset opens them: data_root joined to a relative path
    data_root = found.pop("data.test.data_root", None)
    for name in ("data.test.ann_file", "data.test.img_prefix"):
        path = found.get(name)
        if isinstance(path, str) and path:
            found[name] = os.path.normpath(os.path.join(data_root or "", path))
    return found


def _flatten(name: str, value: object, found: dict[str, object]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{name}.{key}", item, found)
    elif isinstance(value, list | tuple) and any(isinstance(item, dict | list | tuple) for item in value):
        for index, item in enumerate(value):
            _flatten(f"{name}.{index}", item, found)
    elif value is not None:
        found[name] = tuple(value) if isinstance(value, list) else value


def missing_images(images: str | Path, ann_file: str | Path) -> tuple[list[str], int]:
    """(the file names listed in a COCO annotation file that are not in `images`, how many it
    lists); a stat per image, nothing decoded. LCPError when the file is not COCO JSON."""
    names = [str(image["file_name"]) for image in load_coco(ann_file)["images"]]
    folder = Path(images)
    return [name for name in names if not (folder / name).is_file()], len(names)


# Converter options that name the folder the images are read from instead of the recipe's path
# (Cityscapes' fog and rain renderings, VOC's --images).
IMAGE_FOLDER_OPTIONS = ("foggy", "rainy", "images")


def image_source(recipe: Mapping[str, object]) -> Path | None:
    """The resolved folder a converted image set's images are read from; None for another recipe."""
    if "convert" not in recipe:
        return None
    options = recipe.get("options") or {}
    folder = next((options[key] for key in IMAGE_FOLDER_OPTIONS if key in options), recipe["path"])
    return Path(str(folder)).expanduser().resolve()


def same_images(clean: Mapping[str, object], lowq: Mapping[str, object]) -> Path | None:
    """The folder both recipes convert their images from, or None when they differ."""
    source = image_source(clean)
    return source if source is not None and source == image_source(lowq) else None


def training_boxes(coco: Mapping, classes: Sequence[str]) -> dict[str, int]:
    """Scene class -> boxes (not crowd) of that category name in a COCO annotation file's data
    (load_coco), as mmdet counts them when the scene's classes select its categories by name."""
    from collections import Counter

    names = {category["id"]: category["name"] for category in coco["categories"]}
    found = Counter(names.get(ann["category_id"]) for ann in coco["annotations"] if not ann.get("iscrowd"))
    return {name: found[name] for name in classes}


def test_twins_in_train(clean_train: Mapping, lowq_test: Mapping) -> list[str]:
    """The low-quality test images (of a COCO file's data, load_coco) whose clean twin the clean
    set's train split lists: the image of the same stem (URPC2020 and DFUI), or the one a
    synthesised or Foggy/Rainy Cityscapes image was made from (<clean stem>_foggy_beta_0.02).
    Pretraining trains on that split and LCP draws its detection-favoured images from it, so a
    twin there shows them a test scene."""
    from lcp.data.degradations import DEGRADATIONS, split_lowq_stem

    markers = [degradation.marker for degradation in DEGRADATIONS.values()]
    train = {Path(image["file_name"]).stem for image in clean_train["images"]}
    twins = []
    for image in lowq_test["images"]:
        stem = Path(image["file_name"]).stem
        made_from = split_lowq_stem(stem, markers)
        if stem in train or (made_from is not None and made_from[0] in train):
            twins.append(image["file_name"])
    return twins


# The shell functions behind unfixable_guard, defined for every job (shell.prefix in
# workflow/rules/common.smk), so that a job's command line holds only its command and editing
# them is no "code change" of every rule to Snakemake. `lcp_not_again LOG`: when an earlier
# attempt of the job failed with UNFIXABLE_STATUS (its log kept in LOG.unfixable), put that
# attempt's log back (snakemake empties a job's log before each attempt), add why the command
# did not run, say so on stderr and fail at once. `lcp_failed LOG STATUS`: keep the log of an
# attempt that failed with UNFIXABLE_STATUS, and fail with its status.
UNFIXABLE_FUNCTIONS = (
    f'lcp_not_again() {{ if [ -e "$1{UNFIXABLE_SUFFIX}" ]; then cp "$1{UNFIXABLE_SUFFIX}" "$1"; '
    'echo "$1: not run again: an earlier attempt was refused for a reason a retry cannot fix '
    f'(exit status {UNFIXABLE_STATUS}): $(tail -n 1 "$1{UNFIXABLE_SUFFIX}")" | tee -a "$1" >&2; '
    f"exit {UNFIXABLE_STATUS}; fi; }}; "
    f'lcp_failed() {{ if [ "$2" -eq {UNFIXABLE_STATUS} ]; then cp "$1" "$1{UNFIXABLE_SUFFIX}"; fi; exit "$2"; }}; '
)


def unfixable_guard(command: str, log: str) -> str:
    """Shell that runs `command` with its output in `log`, unless an earlier attempt of the job
    was refused with UNFIXABLE_STATUS (see UNFIXABLE_FUNCTIONS, which the shell must define).
    The record is cleared when a workflow run starts (clear_unfixable). `log`: a path the shell
    needs no quotes for (the workflow's logs), or snakemake's {log}. Works under snakemake's
    `set -euo pipefail`."""
    return f"lcp_not_again {log}; ({command}) > {log} 2>&1 || lcp_failed {log} $?"


def clear_unfixable(logs: Sequence[str | Path]) -> None:
    """Forget the unfixable failures recorded beside these job logs (a new run tries again)."""
    for log in logs:
        Path(f"{log}{UNFIXABLE_SUFFIX}").unlink(missing_ok=True)
