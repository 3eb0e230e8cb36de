"""Conversion progress in job logs (issue 14.6): with stderr going to a file, as in a Snakemake
or SLURM job, `lcp data convert` writes whole progress lines (lcp.progress) instead of a tqdm
bar that turns itself off without a terminal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers.convert_sources import write_image


@pytest.mark.parametrize("workers", ["1", "2"])  # in this process, and through the worker pool
def test_convert_writes_progress_lines_to_a_job_log(tmp_path: Path, workers: str):
    src = tmp_path / "photos"
    for index in range(3):
        write_image(src / f"{index}.png", seed=index)
    log = tmp_path / "convert.log"
    with open(log, "w") as stderr:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "lcp.cli",
                "data",
                "convert",
                "folder",
                str(src),
                str(tmp_path / "out"),
                "--name",
                "photos",
                "--workers",
                workers,
            ],
            check=False,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    text = log.read_text()
    assert result.returncode == 0, text
    assert "\r" not in text
    lines = [line for line in text.splitlines() if line.startswith("convert photos: ")]
    assert lines and lines[-1].startswith("convert photos: 3/3 img (100%)"), text
