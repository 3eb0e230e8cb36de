"""The per-scene summary page (`lcp report metrics --html`) in a real headless Chromium at the width
of a laptop window beside other windows, at the scale of a cluster study (5 seeds, 8 classes)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers.browser import Chromium, find_or_install_chromium

REPO = Path(__file__).resolve().parents[2]
CLASSES = ["person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"]


@pytest.fixture
def browser(tmp_path):
    chromium = Chromium(find_or_install_chromium(), tmp_path / "chromium-profile")
    yield chromium
    chromium.close()


def summary_page(tmp_path) -> str:
    import cv2

    args = []
    for seed in (0, 1, 2, 5, 10):
        for method, ap in (("baseline", 0.27), ("lcp", 0.28)):
            path = tmp_path / f"{method}{seed}.json"
            metrics = {"bbox_mAP": ap, "bbox_mAP_50": ap + 0.2, "bbox_mAP_75": ap - 0.03, "bbox_mAP_s": ap / 3}
            metrics.update(bbox_mAP_m=ap, bbox_mAP_l=ap, classwise=dict.fromkeys(CLASSES, ap), num_images=500)
            path.write_text(json.dumps(metrics))
            args.append(f"--eval={method}/seed{seed}={path}")
    for index in range(3):  # Cityscapes-sized pictures, as `lcp report detections` draws them
        for method in ("baseline", "lcp"):
            picture = tmp_path / f"{method}_{index}.jpg"
            cv2.imwrite(str(picture), np.random.default_rng(index).integers(0, 255, (1024, 2048, 3), dtype=np.uint8))
            args.append(f"--samples={method}={picture}")
    page = tmp_path / "summary.html"
    result = subprocess.run(
        [sys.executable, "-m", "lcp.cli", "report", "metrics", "--title", "foggy_city", *args]
        + ["--csv", str(tmp_path / "metrics.csv"), "--html", str(page)],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    return page.as_uri()


def test_the_summary_page_fits_an_800_px_window(tmp_path, browser):
    # two 360 px sample pictures side by side made the whole page scroll sideways below ~870 px
    browser.call("Emulation.setDeviceMetricsOverride", width=800, height=900, deviceScaleFactor=1, mobile=False)
    browser.open(summary_page(tmp_path))
    deadline = time.monotonic() + 60
    while not browser.evaluate("[...document.images].length === 6 && [...document.images].every(i => i.complete)"):
        assert time.monotonic() < deadline, "the page's 6 sample pictures did not load within 60 s"
        time.sleep(0.25)
    page = browser.evaluate(
        "({scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth,"
        " images: [...document.images].map(i => ({right: i.getBoundingClientRect().right, alt: i.alt}))})"
    )
    assert page["scroll"] <= page["client"], page
    assert all(image["right"] <= page["client"] for image in page["images"]), page
    assert [image["alt"] for image in page["images"][:2]] == ["baseline, test image 1", "lcp, test image 1"]
