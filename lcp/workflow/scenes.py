"""The workflow config's vocabulary and lookups: scenes, their image sets, seeds and severities.

`config` is the workflow's config dict (config/config.yaml after the schema check).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path

from lcp.errors import LCPError

METHODS = ("baseline", "lcp")
STEPS = ("pretrain",) + METHODS
SPLITS = ("train", "test")
NAME_PATTERN = "[A-Za-z0-9][A-Za-z0-9_.-]*"
TRAINING_RULES = ("pretrain", "train_baseline", "train_lcp")
# The --cfg-options the workflow gives every training and test job (lcp.workflow.commands.cfg_options)
WORKFLOW_CFG_OPTIONS = (
    "data_root",
    "train_img_dir",
    "train_ann",
    "test_img_dir",
    "test_ann",
    "classes",
    "num_classes",
    "df_img_dir",
    "df_ann",
)
SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def retype_config_overrides(config: dict, overrides: Mapping) -> None:
    """Read as YAML, in `config`, the values that `snakemake --config` left as text.

    Snakemake reads a top-level `--config key=value` as a number, a boolean or text, but
    everything nested in one (`resources={pretrain: {mem_mb: 8000}}`, `run=[demo]`) as text,
    so the schema would refuse `mem_mb: '8000'`. Each such value is read as a --configfile's
    would be."""
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(config.get(key), dict):
            _retype_nested(config[key], value)
        elif isinstance(value, list):
            config[key] = _as_yaml(value)


def _retype_nested(config: dict, overrides: Mapping) -> None:
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(config.get(key), dict):
            _retype_nested(config[key], value)
        else:
            config[key] = _as_yaml(value)


def _as_yaml(value):
    import yaml

    if isinstance(value, Mapping):
        return {key: _as_yaml(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_yaml(item) for item in value]
    if isinstance(value, str):
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError:
            return value
    return value


@cache
def resource_rules() -> tuple[str, ...]:
    """The rules whose jobs take resources from the config: those the schema's `resources` names."""
    import yaml

    schema = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
    return tuple(name for name in schema["$defs"]["rule_resources"]["properties"] if name != "default")


def alternatives(names: Iterable[str]) -> str:
    """A wildcard constraint matching exactly `names` (and nothing when there are none)."""
    return "|".join(sorted(re.escape(name) for name in names)) or "(?!)"


def data_dir(config: Mapping) -> str:
    return config["data_dir"].rstrip("/")


def dataset_of(config: Mapping, scene_name: str) -> str:
    """The folder under data_dir that holds a scene's image sets (`dataset`, by default the scene's name)."""
    return config["scenes"][scene_name].get("dataset", scene_name)


def scene_of_dataset(config: Mapping, dataset: str) -> str:
    """The first scene (in config order) whose folder is `dataset`: its settings apply."""
    return next(name for name in config["scenes"] if dataset_of(config, name) == dataset)


def scene_of_job(config: Mapping, wildcards: Mapping) -> str | None:
    """A job's scene: its {scene} wildcard, else the first scene of its {dataset} folder (whose
    settings apply); None for a job with neither."""
    if scene := wildcards.get("scene"):
        return scene
    dataset = wildcards.get("dataset")
    return scene_of_dataset(config, dataset) if dataset else None


def demo_datasets(config: Mapping) -> dict[str, str]:
    """Folder -> the demo scene that generates it."""
    return {dataset_of(config, name): name for name, scene in config["scenes"].items() if "demo" in scene}


def image_sets(config: Mapping) -> dict[tuple[str, str], tuple[dict, str]]:
    """(dataset, image set) -> (recipe, the config key that defines it); shared sets must agree."""
    found: dict[tuple[str, str], tuple[dict, str]] = {}
    for name, scene in config["scenes"].items():
        for set_name, recipe in scene.get("image_sets", {}).items():
            where = (scene.get("dataset", name), set_name)
            key = f"scenes.{name}.image_sets.{set_name}"
            if where in found and found[where][0] != recipe:
                raise LCPError(
                    f"invalid config: {key} differs from {found[where][1]}, "
                    f"which makes the same image set {'/'.join(where)}"
                )
            found.setdefault(where, (recipe, key))
    demo_folders = demo_datasets(config)
    for dataset, set_name in found:
        if dataset in demo_folders:
            raise LCPError(
                f"invalid config: {found[(dataset, set_name)][1]}: the folder {dataset} is "
                "generated by a demo scene; give this scene another `dataset`"
            )
    return found


def converted_sets(config: Mapping) -> set[tuple[str, str]]:
    return {where for where, (recipe, _) in image_sets(config).items() if "convert" in recipe}


def synthesized_sets(config: Mapping) -> set[tuple[str, str]]:
    return {where for where, (recipe, _) in image_sets(config).items() if "synthesize" in recipe}


def severities(config: Mapping, scene_name: str) -> list[str]:
    """Robustness test sets of a scene, as `<option>_<value>` names (e.g. beta_0.02)."""
    sweep = config["scenes"][scene_name].get("robustness", {}).get("sweep", {})
    return [f"{option}_{severity_value(value)}" for option, values in sweep.items() for value in values]


def severity_value(value: float) -> str:
    """A sweep value as its test set's name carries it and `lcp data synth` gets it: short (%g)
    where that is exact, else every digit (%g merged 0.08123441 and 0.08123442); no '+' (1e+06)."""
    text = f"{value:g}"
    if float(text) != value:
        text = repr(float(value))
    return text.replace("+", "")


def severity_option(severity: str) -> tuple[str, str]:
    """beta_0.02 -> ('beta', '0.02')."""
    option, _, value = severity.rpartition("_")
    return option, value


def scene_seeds(config: Mapping, scene_name: str) -> list[int]:
    """The scene's training seeds (`seeds`, by default the top-level `seed`); the first also pretrains."""
    return config["scenes"][scene_name].get("seeds", [config["seed"]])


def several_seeds(config: Mapping, scene_name: str) -> bool:
    return len(scene_seeds(config, scene_name)) > 1


def evaluation_name(config: Mapping, scene_name: str, method: str, seed: int) -> str:
    """A method's evaluation in the report: METHOD for one seed, METHOD/seed<N> for several."""
    return f"{method}/seed{seed}" if several_seeds(config, scene_name) else method
