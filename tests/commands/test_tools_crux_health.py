"""`lcp heatmaps` and the crux health of `lcp test`, on the tiny demo configs and a 3-image demo
scene, with checkpoints of the tiny detectors whose crux learner is set stuck or live (no training)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from helpers.crux_health import make_diverged, make_live, make_stuck
from lcp.cli import main as lcp

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "config" / "mmdet"
PLAIN_TINY = str(CONFIGS / "cascade_rcnn_tiny_demo.py")
LCP_TINY = str(CONFIGS / "lcp_tiny_demo.py")
HEALTH_KEYS = {"mask_mean", "mask_std", "mask_frac_above_half", "mask_spatial_std", "collapsed", "verdict"}


def options(workspace: Path) -> list[str]:
    return ["--cfg-options", f"data_root={workspace / 'demo'}/", "data.workers_per_gpu=0"]


def first_test_image(cfg) -> torch.Tensor:
    """The first test image as the model sees it (1, 3, H, W)."""
    from mmdet.datasets import build_dataset

    return build_dataset(dict(cfg.data.test, test_mode=True))[0]["img"][0].data[None]


def save_model(config: str, workspace: Path, path: Path, crux: str | None = None) -> Path:
    """A checkpoint of the config's detector as built (seed 0); crux 'stuck', 'live' or 'diverged'
    sets the crux learner's last conv so its mask is ~0 everywhere, varies across the image around
    0.5, or is NaN."""
    from mmcv.runner import save_checkpoint
    from mmdet.models import build_detector

    from lcp.apis.config import load_config

    cfg = load_config(config, {"data_root": f"{workspace / 'demo'}/"})
    torch.manual_seed(0)
    model = build_detector(cfg.model)
    if crux == "stuck":
        make_stuck(model.crux_learner)
    elif crux == "live":
        make_live(model.crux_learner, first_test_image(cfg))
    elif crux == "diverged":
        make_diverged(model.crux_learner)
    save_checkpoint(model, str(path), meta=dict(CLASSES=("circle", "square", "triangle")))
    return path


@pytest.fixture(scope="module")
def checkpoints(workspace) -> dict[str, Path]:
    return {
        "stuck": save_model(LCP_TINY, workspace, workspace / "stuck.pth", "stuck"),
        "live": save_model(LCP_TINY, workspace, workspace / "live.pth", "live"),
        "diverged": save_model(LCP_TINY, workspace, workspace / "diverged.pth", "diverged"),
        "plain": save_model(PLAIN_TINY, workspace, workspace / "plain.pth"),
    }


def test_test_reports_a_stuck_crux_learner_as_collapsed(workspace, checkpoints, capsys):
    eval_out = workspace / "stuck.json"
    assert (
        lcp(
            [
                "test",
                LCP_TINY,
                str(checkpoints["stuck"]),
                "--eval-out",
                str(eval_out),
                "--no-track",
                *options(workspace),
            ]
        )
        == 0
    )
    health = json.loads(eval_out.read_text())["crux_health"]
    assert set(health) == HEALTH_KEYS
    # h = -0.2 everywhere: m = sigmoid(10 * (-0.2 - 0.5)) on every pixel
    assert health["mask_mean"] == pytest.approx(1 / (1 + np.exp(7.0)), rel=1e-4)
    assert health["mask_spatial_std"] < 1e-6 and health["mask_frac_above_half"] == 0
    assert health["collapsed"] is True and health["verdict"].startswith(
        "crux learner collapsed: the mask is 0.00091 on every pixel"
    )
    assert health["verdict"] in capsys.readouterr().out


def test_test_reports_a_live_crux_learner_with_the_statistics_of_its_test_masks(workspace, checkpoints, monkeypatch):
    from mmdet.datasets import build_dataset

    from lcp.apis.config import load_config
    from lcp.apis.inference import build_test_model
    from lcp.hooks import crux_health
    from lcp.hooks.crux_health import mask_statistics

    def second_pass(*args):
        raise AssertionError("the masks come from the detector's own pass, not a second crux-learner pass")

    monkeypatch.setattr(crux_health, "crux_masks_of_batch", second_pass)
    eval_out = workspace / "live.json"
    assert (
        lcp(
            ["test", LCP_TINY, str(checkpoints["live"]), "--eval-out", str(eval_out), "--no-track", *options(workspace)]
        )
        == 0
    )
    health = json.loads(eval_out.read_text())["crux_health"]
    assert health["collapsed"] is False and health["verdict"] is None
    # the same numbers as the masks of the test images, computed here on their own
    cfg = load_config(LCP_TINY, {"data_root": f"{workspace / 'demo'}/"})
    dataset = build_dataset(dict(cfg.data.test, test_mode=True))
    model = build_test_model(cfg, str(checkpoints["live"]))
    sample = dataset[0]
    img, meta = sample["img"][0].data, sample["img_metas"][0].data
    with torch.no_grad():
        expected = mask_statistics(model.crux_learner.mask(img[None]), [meta["img_shape"]])
    assert len(dataset) == 1
    assert {key: health[key] for key in expected} == pytest.approx(expected)
    assert health["mask_spatial_std"] > 0.05


def test_the_report_shows_a_diverged_crux_learner_that_lcp_test_recorded(workspace, checkpoints):
    # `lcp test` records a NaN mask's statistics as NaN beside the verdict; `lcp report metrics`
    # refused that very file (not a number in [0, 1]), so the scene's report failed instead of
    # saying that the crux learner diverged
    eval_out = workspace / "diverged.json"
    checkpoint = str(checkpoints["diverged"])
    assert lcp(["test", LCP_TINY, checkpoint, "--eval-out", str(eval_out), "--no-track", *options(workspace)]) == 0
    health = json.loads(eval_out.read_text())["crux_health"]
    assert math.isnan(health["mask_mean"]) and health["collapsed"] is True
    out = workspace / "diverged_report"
    report = ["report", "metrics", "--eval", f"lcp={eval_out}", "--csv", str(out / "metrics.csv")]
    assert lcp([*report, "--markdown", str(out / "summary.md"), "--html", str(out / "summary.html")]) == 0
    row = next(csv.DictReader((out / "metrics.csv").open()))
    assert row["crux_mask_mean"] == "" and row["crux_collapsed"] == "1"
    summary = (out / "summary.md").read_text()
    assert "\nLCP: crux learner collapsed: the mask is not finite (mean nan, std nan); " in summary
    assert "| lcp | - | - | 0 | - | yes |" in summary
    assert "the mask is not finite" in (out / "summary.html").read_text()


def test_test_of_a_plain_detector_has_no_crux_health(workspace, checkpoints):
    eval_out = workspace / "plain.json"
    assert (
        lcp(
            [
                "test",
                PLAIN_TINY,
                str(checkpoints["plain"]),
                "--eval-out",
                str(eval_out),
                "--no-track",
                *options(workspace),
            ]
        )
        == 0
    )
    assert "crux_health" not in json.loads(eval_out.read_text())


def test_heatmaps_writes_exactly_the_numbered_pictures(workspace, checkpoints, capsys):
    out_dir = workspace / "heatmaps"
    out_dir.mkdir()  # Snakemake makes an output's folder before the job runs
    (out_dir / "crux_heatmap_5.png").write_bytes(b"stale")
    (out_dir / "notes.txt").write_text("not ours")
    assert (
        lcp(
            [
                "heatmaps",
                LCP_TINY,
                str(checkpoints["stuck"]),
                "--out-dir",
                str(out_dir),
                "--count",
                "1",
                *options(workspace),
            ]
        )
        == 2
    )
    assert capsys.readouterr().err.strip() == (
        f"lcp heatmaps: error: {out_dir / 'crux_heatmap_5.png'}: already exists; remove it or pass --overwrite"
    )
    assert (
        lcp(
            [
                "heatmaps",
                LCP_TINY,
                str(checkpoints["stuck"]),
                "--out-dir",
                str(out_dir),
                "--count",
                "1",
                "--overwrite",
                *options(workspace),
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out_dir.iterdir()) == ["crux_heatmap_0.png", "notes.txt"]
    picture = cv2.imread(str(out_dir / "crux_heatmap_0.png"))
    assert picture is not None and picture.shape[1] > 3 * picture.shape[0]  # four panels side by side
    # the collapsed mask's verdict is the picture's red headline: red pixels above the panels
    top = picture[: picture.shape[0] // 8].astype(int)
    red = (top[..., 2] > 150) & (top[..., 1] < 80) & (top[..., 0] < 80)
    assert red.sum() > 50

    live_dir = workspace / "heatmaps_live"
    assert (
        lcp(
            [
                "heatmaps",
                LCP_TINY,
                str(checkpoints["live"]),
                "--out-dir",
                str(live_dir),
                "--count",
                "1",
                *options(workspace),
            ]
        )
        == 0
    )
    live = cv2.imread(str(live_dir / "crux_heatmap_0.png"))
    top = live[: live.shape[0] // 8].astype(int)
    assert ((top[..., 2] > 150) & (top[..., 1] < 80) & (top[..., 0] < 80)).sum() == 0  # no headline


@pytest.mark.parametrize(
    "which,count,message",
    [
        ("plain", "1", "the model (OneSyncCascadeRCNN) has no crux learner; lcp heatmaps draws LCP models only"),
        ("stuck", "2", "the test set has 1 image, fewer than --count 2"),
        ("stuck", "0", "--count 0: must be at least 1"),
    ],
)
def test_heatmaps_refuses_bad_input_with_one_line(workspace, checkpoints, capsys, which, count, message):
    config = PLAIN_TINY if which == "plain" else LCP_TINY
    out_dir = workspace / f"refused_{which}_{count}"
    assert (
        lcp(
            [
                "heatmaps",
                config,
                str(checkpoints[which]),
                "--out-dir",
                str(out_dir),
                "--count",
                count,
                *options(workspace),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("lcp heatmaps: error: ") and err.endswith(message) and "\n" not in err
    assert not out_dir.exists()


def test_sample_detections_draw_the_first_test_image_as_lcp_infer_does(workspace, checkpoints, capsys):
    out = workspace / "samples" / "lcp_0.jpg"
    args = ["report", "detections", LCP_TINY, str(checkpoints["live"]), "--out", str(out), *options(workspace)]
    assert lcp(args) == 0
    assert capsys.readouterr().out == f"sample detections written: {out}\n"
    picture = cv2.imread(str(out))
    # the 128-pixel test image drawn enlarged by a whole factor, as `lcp infer` draws it
    assert picture is not None and picture.shape[0] % 128 == 0 and picture.shape[0] > 128
    assert sorted(path.name for path in out.parent.iterdir()) == ["lcp_0.jpg"]


def test_sample_detections_refuse_more_pictures_than_test_images(workspace, checkpoints, capsys):
    outs = [workspace / f"too_many_{index}.jpg" for index in range(2)]
    args = ["report", "detections", PLAIN_TINY, str(checkpoints["plain"]), *options(workspace)]
    assert lcp([*args, *(arg for out in outs for arg in ("--out", str(out)))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("the test set has 1 image, fewer than the 2 pictures asked for") and "\n" not in err
    assert not any(out.exists() for out in outs)
