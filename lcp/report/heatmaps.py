"""The report's crux heat maps: pictures of an LCP checkpoint's crux masks on the first test
images, OUT_DIR/crux_heatmap_0.png .. crux_heatmap_{N-1}.png (drawn by lcp.tracking.heatmaps)."""

from __future__ import annotations

import re
from pathlib import Path

from lcp.errors import LCPError

PICTURE = "crux_heatmap_{}.png"
PICTURE_PATTERN = re.compile(r"crux_heatmap_\d+\.png")


def existing_pictures(out_dir: Path) -> list[Path]:
    if not out_dir.is_dir():
        return []
    return sorted(path for path in out_dir.iterdir() if PICTURE_PATTERN.fullmatch(path.name))


def write_crux_heatmaps(
    config: str,
    checkpoint: str,
    out_dir: str | Path,
    count: int = 4,
    overwrite: bool = False,
    cfg_options: dict | None = None,
    gpu_id: int = 0,
) -> list[Path]:
    """Draw the first `count` test images' crux masks; all are made, then published together.
    Existing pictures are replaced only with `overwrite` (stale higher-numbered
    ones are then removed). Returns the pictures written."""
    from lcp.apis.config import load_config
    from lcp.apis.inference import build_test_model
    from lcp.apis.options import select_device
    from lcp.io import check_outside_sources, write_files
    from lcp.report.test_set import test_set_files, test_set_with
    from lcp.tracking.heatmaps import render_crux_heatmaps

    if count < 1:
        raise LCPError(f"--count {count}: must be at least 1")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise LCPError(f"{out_dir}: exists and is not a folder")
    existing = existing_pictures(out_dir)
    if existing and not overwrite:
        raise LCPError(f"{existing[0]}: already exists; remove it or pass --overwrite")
    targets = [out_dir / PICTURE.format(index) for index in range(count)]
    for target in targets:
        check_outside_sources(target, [config, checkpoint])

    cfg = load_config(config, cfg_options or {})
    dataset = test_set_with(cfg, count, config, f"--count {count}")
    test_files = test_set_files(dataset)
    for target in targets:  # not into the test set, which a later run would read back
        check_outside_sources(target, test_files)
    model = build_test_model(cfg, checkpoint)
    if not hasattr(model, "crux_learner"):
        raise LCPError(
            f"{config}: the model ({type(model).__name__}) has no crux learner; lcp heatmaps draws LCP models only"
        )
    if select_device(gpu_id) == "cuda":
        model = model.cuda(gpu_id)
    model.eval()

    pictures = render_crux_heatmaps(model, dataset, count)
    write_files({target: png for target, (_, png) in zip(targets, pictures, strict=False)})
    for stale in set(existing) - set(targets):
        stale.unlink(missing_ok=True)
    return targets
