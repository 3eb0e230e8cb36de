"""What each workflow job reads: its declared inputs, from the config alone.

lcp.workflow.session runs the checks (lcp.workflow.checks) on the image sets these name
before handing them to Snakemake.
"""

from __future__ import annotations

from collections.abc import Mapping

from lcp.workflow import paths
from lcp.workflow.commands import report_evaluations, robustness_evaluations, test_set
from lcp.workflow.scenes import METHODS, data_dir, scene_seeds, severities


def config_bases(config_file: str) -> list[str]:
    """The files a config inherits from: an edit to one changes every run of the config."""
    from lcp.apis.config import config_files

    return config_files(config_file)[1:]


def training_sets(config: Mapping, scene_name: str, step: str) -> list[str]:
    """The image sets a training step reads: pretraining the clean set, the baseline the
    low-quality set, LCP both."""
    scene = config["scenes"][scene_name]
    return ([scene["clean_set"]] if step != "baseline" else []) + ([scene["lowq_set"]] if step != "pretrain" else [])


def training_inputs(config: Mapping, scene_name: str, step: str) -> dict:
    """Its config (and its `_base_` files), the data gate, the image sets and (after
    pretraining) the initial weights."""
    named = {
        "config": config["scenes"][scene_name][step]["config"],
        "bases": config_bases(config["scenes"][scene_name][step]["config"]),
        "check": paths.data_check(scene_name),
        "data": [
            path
            for set_name in training_sets(config, scene_name, step)
            for path in paths.image_set_files(config, scene_name, set_name)
        ],
    }
    if step != "pretrain":
        named["init"] = paths.pretrained(scene_name)
    return named


def lowq_test_files(config: Mapping, scene_name: str) -> list[str]:
    return paths.image_set_files(config, scene_name, config["scenes"][scene_name]["lowq_set"], ["test"])


def evaluation_inputs(config: Mapping, scene_name: str, method: str, seed: int, severity: str | None = None) -> dict:
    """A method's config and checkpoint, and the test set: the low-quality one or a severity's."""
    robustness = test_set(scene_name, severity)
    data = lowq_test_files(config, scene_name)
    if robustness:
        data = [f"{data_dir(config)}/{robustness[key]}" for key in ("images", "test")]
    return {
        "config": config["scenes"][scene_name][method]["config"],
        "bases": config_bases(config["scenes"][scene_name][method]["config"]),
        "checkpoint": paths.trained(config, scene_name, method, seed),
        "data": data,
    }


def first_model_inputs(config: Mapping, scene_name: str, method: str) -> dict:
    """The method's model of the scene's first seed on the low-quality test set (heat maps, sample detections)."""
    return evaluation_inputs(config, scene_name, method, scene_seeds(config, scene_name)[0])


def report_inputs(config: Mapping, scene_name: str) -> dict:
    """The report's evaluations (METHOD[/seedN] -> eval.json), the data check, the sample
    detections and the code that renders it."""
    samples = [path for method in METHODS for path in paths.sample_detections(scene_name, method)]
    return {
        **report_evaluations(config, scene_name),
        "check": paths.data_check(scene_name),
        "samples": samples,
        "code": report_code(),
    }


def report_code() -> list[str]:
    """The package files that render the reports (lcp.report and `lcp report`): the report jobs
    read them, so that a fix to a table or a plot (an upgrade) remakes the reports, cheap jobs,
    while the evaluations they read stay. Snakemake sees the Snakefile's code, not the package's."""
    from pathlib import Path

    import lcp.commands.report
    import lcp.report

    return [*sorted(str(path) for path in Path(lcp.report.__file__).parent.glob("*.py")), lcp.commands.report.__file__]


def scene_targets(config: Mapping, scene_name: str) -> list[str]:
    """What building a scene means: its reports and heat maps, and the results they are made of
    (the data check, every checkpoint and evaluation, the robustness test sets). Snakemake 9
    does not remake a missing file that only other jobs read while their outputs exist, so a
    file deleted by hand, or by snakemake after its job failed or was killed, would otherwise
    be skipped for good, and its job's changed settings with it."""
    robustness_sets = [
        f"{data_dir(config)}/{test_set(scene_name, severity)[key]}"
        for severity in severities(config, scene_name)
        for key in ("images", "test")
    ]
    checkpoints = [
        paths.trained(config, scene_name, method, seed)
        for method in METHODS
        for seed in scene_seeds(config, scene_name)
    ]
    return [
        *paths.report_targets(config, scene_name),
        paths.data_check(scene_name),
        paths.pretrained(scene_name),
        *checkpoints,
        *report_evaluations(config, scene_name).values(),
        *robustness_evaluations(config, scene_name).values(),
        *robustness_sets,
    ]
