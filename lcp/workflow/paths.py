"""The one owner of the workflow's paths: image sets under data_dir, and everything under
results/ (per scene: checkpoints, evaluations, logs, benchmarks, the report).

The functions that take no config build path patterns too: pass "{scene}" or "{seed_dir}"
for a rule's wildcards. Image set paths are relative to data_dir unless they say otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from lcp.data import SPLITS
from lcp.errors import LCPError
from lcp.workflow.scenes import (
    STEPS,
    data_dir,
    dataset_of,
    demo_datasets,
    scene_seeds,
    several_seeds,
    severities,
    synthesized_sets,
)

RESULTS = "results"
# Crux heat maps of the scene's LCP model in the report: the first test images, one picture each.
HEATMAPS = 4
# Sample detections per method in the report (the first low-quality test images, like the heat maps).
SAMPLE_DETECTIONS = 3
# Every output of the rules report and report_robustness: a target missing one of them (an
# older run's report folder) would leave `snakemake --report` without a file it lists.
REPORT_FILES = ("summary.html", "metrics.csv", "summary.md", "classwise_ap.png", "data_check.html")
ROBUSTNESS_REPORT_FILES = ("robustness.html", "robustness.csv", "robustness.png")


# ---- image sets (relative to data_dir) ---------------------------------------------------


def converted_set(dataset: str, set_name: str) -> dict[str, str]:
    """What converters and `lcp data demo` write: <dataset>/<set>/ and <dataset>/annotations/."""
    return {
        "images": f"{dataset}/{set_name}",
        **{split: f"{dataset}/annotations/{set_name}_{split}.json" for split in SPLITS},
    }


def synthesized_set(dataset: str, set_name: str) -> dict[str, str]:
    """Synthesised sets live in a folder of their own, so a converter that replaces its
    scene folder never takes them along."""
    base = f"synthesized/{dataset}/{set_name}"
    return {"images": base, **{split: f"{base}_{split}.json" for split in SPLITS}}


def robustness_set(scene_name: str, severity: str) -> dict[str, str]:
    base = f"robustness/{scene_name}/{severity}"
    return {"images": base, "test": f"{base}_test.json"}


def image_set_paths(config: Mapping, scene_name: str, set_name: str) -> dict[str, str]:
    """An image set's images folder and annotation file per split."""
    dataset = dataset_of(config, scene_name)
    if (dataset, set_name) in synthesized_sets(config):
        return synthesized_set(dataset, set_name)
    return converted_set(dataset, set_name)


def image_set_files(config: Mapping, scene_name: str, set_name: str, splits: Sequence[str] = SPLITS) -> list[str]:
    """What a job reading an image set declares as input (under data_dir)."""
    data, dataset = data_dir(config), dataset_of(config, scene_name)
    if dataset in demo_datasets(config):  # `lcp data demo` makes the whole folder at once
        return [f"{data}/{dataset}"]
    paths = image_set_paths(config, scene_name, set_name)
    return [f"{data}/{paths[key]}" for key in ("images", *splits)]


# ---- results/<scene>/ --------------------------------------------------------------------


def seed_dir(config: Mapping, scene_name: str, seed: int) -> str:
    """The folder of one seed's training and evaluations in results/<scene>/<method>/ (and of
    its logs in results/<scene>/logs/): none ('') when the scene trains one seed, `seed<N>/`
    when it trains several."""
    return f"seed{seed}/" if several_seeds(config, scene_name) else ""


def method_dir(scene_name: str, method: str, seed_folder: str = "") -> str:
    """results/<scene>/<method>/ (method: pretrain, baseline or lcp), then the seed's folder."""
    return f"{RESULTS}/{scene_name}/{method}/{seed_folder}"


def seed_of_dir(config: Mapping, scene_name: str, method: str, seed_folder: str) -> int:
    """The training seed whose folder (see seed_dir) is `seed_folder`."""
    seeds = scene_seeds(config, scene_name)
    for seed in seeds:
        if seed_dir(config, scene_name, seed) == seed_folder:
            return seed
    layout = "seed<N>/ folders" if several_seeds(config, scene_name) else "the method's folder itself"
    raise LCPError(
        f"{method_dir(scene_name, method, seed_folder)}: scene {scene_name} trains seeds {seeds} "
        f"(scenes.{scene_name}.seeds), in {layout}"
    )


def checkpoint(scene_name: str, method: str, seed_folder: str = "") -> str:
    """The final checkpoint of a training (published when it has finished)."""
    return f"{method_dir(scene_name, method, seed_folder)}latest.pth"


def pretrained(scene_name: str) -> str:
    return checkpoint(scene_name, "pretrain")


def trained(config: Mapping, scene_name: str, method: str, seed: int) -> str:
    return checkpoint(scene_name, method, seed_dir(config, scene_name, seed))


def work_dir(scene_name: str, method: str, seed_folder: str = "") -> str:
    """Where `lcp train` keeps its checkpoints while it trains (not a declared output)."""
    return f"{method_dir(scene_name, method, seed_folder)}work"


def evaluation(scene_name: str, method: str, seed_folder: str = "") -> str:
    return f"{method_dir(scene_name, method, seed_folder)}eval.json"


def robustness_evaluation(scene_name: str, method: str, seed_folder: str, severity: str) -> str:
    return f"{method_dir(scene_name, method, seed_folder)}robustness/{severity}.json"


def evaluations_of(checkpoint: str | os.PathLike) -> list[Path]:
    """The evaluation files made from the model at `checkpoint` (evaluation, robustness_evaluation):
    the files beside it that the workflow writes."""
    folder = Path(checkpoint).parent
    return [folder / "eval.json", *sorted((folder / "robustness").glob("*.json"))]


def reports_of(checkpoint: str | os.PathLike) -> list[Path]:
    """The report files of the scene whose model is at `checkpoint` (results/<scene>/<method>/
    [seed<N>/]latest.pth): the tables and plots that hold every seed's numbers (report_targets
    without the pictures). [] for a checkpoint elsewhere."""
    folder = Path(checkpoint).parent
    if folder.name.startswith("seed") and folder.name[4:].isdigit():
        folder = folder.parent
    if folder.name not in STEPS or folder.parent.parent.name != RESULTS:
        return []
    report = folder.parent / "report"
    return [report / name for name in REPORT_FILES + ROBUSTNESS_REPORT_FILES]


def data_check(scene_name: str) -> str:
    return f"{RESULTS}/{scene_name}/data/check.json"


def log(scene_name: str, name: str) -> str:
    return f"{RESULTS}/{scene_name}/logs/{name}.log"


def benchmark(scene_name: str, name: str) -> str:
    return f"{RESULTS}/{scene_name}/benchmarks/{name}.tsv"


def dataset_log(dataset: str, name: str) -> str:
    """Logs of the jobs that make a data folder (shared by the scenes that read it)."""
    return f"{RESULTS}/datasets/{dataset}/logs/{name}.log"


def dataset_benchmark(dataset: str, name: str) -> str:
    return f"{RESULTS}/datasets/{dataset}/benchmarks/{name}.tsv"


def report_file(scene_name: str, name: str) -> str:
    return f"{RESULTS}/{scene_name}/report/{name}"


def heatmaps(scene_name: str) -> list[str]:
    """The crux heat maps of a scene's report."""
    return [report_file(scene_name, f"crux_heatmaps/crux_heatmap_{index}.png") for index in range(HEATMAPS)]


def sample_detections(scene_name: str, method: str) -> list[str]:
    """A method's sample detection pictures in the report."""
    return [report_file(scene_name, f"detections/{method}_{index}.jpg") for index in range(SAMPLE_DETECTIONS)]


def report_targets(config: Mapping, scene_name: str) -> list[str]:
    """A scene's report (and robustness report, where it has a sweep) and heat maps."""
    names = REPORT_FILES + (ROBUSTNESS_REPORT_FILES if severities(config, scene_name) else ())
    return [report_file(scene_name, name) for name in names] + heatmaps(scene_name)
