"""The workflow's data check of a scene that synthesises nothing (`degradation: none`)."""

from __future__ import annotations

import re

from helpers.workflow import planned_jobs, prepare_workdir, repo_config, snakemake


def test_a_scene_without_synthesis_gets_the_annotation_and_image_check(tmp_path):
    prepare_workdir(tmp_path, repo_config())
    assert repo_config()["scenes"]["urpc"]["degradation"] == "none"
    result = snakemake(tmp_path, "-n", "-p", "--config", "run=[urpc]")
    assert result.returncode == 0, result.stdout
    jobs = planned_jobs(result.stdout)
    assert jobs.get("check_data") == 1 and "record_unchecked_data" not in jobs
    (command,) = re.findall(r"lcp data check [^&]*", result.stdout)
    assert "--lowq data/urpc/urpc " in command and "--degradation none" in command
    assert "--ann data/urpc/annotations/urpc_train.json data/urpc/annotations/urpc_test.json" in command


def test_a_scene_passes_its_check_options(tmp_path):
    config = repo_config()
    config["scenes"]["urpc"]["check_options"] = {"max-erased-share": 0.25, "erased-below": 0.05}
    prepare_workdir(tmp_path, config)
    result = snakemake(tmp_path, "-n", "-p", "--config", "run=[urpc]")
    assert result.returncode == 0, result.stdout
    (command,) = re.findall(r"lcp data check [^&]*", result.stdout)
    assert "--max-erased-share 0.25 --erased-below 0.05" in command
