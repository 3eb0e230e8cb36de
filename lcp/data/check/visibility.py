"""The checks of the objects in a synthesised set, from its sidecar: which depth each image was
degraded with, and how much of each annotated box the degradation left visible."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from lcp.data.check.findings import Findings
from lcp.data.degradations import DEGRADATIONS, split_lowq_stem
from lcp.data.degradations.base import ERASED_BELOW, WHITENED_IMAGE_SHARE, format_value
from lcp.data.synth import SIDECAR_NAME

# Default of --max-erased-share: above it, a variant hides too many objects to train on.
MAX_ERASED_SHARE = 0.1


def check_objects(
    lowq_dir: Path,
    lowq_images: list[Path],
    kind: str,
    records: dict,
    annotated: bool,
    erased_below: float,
    max_erased_share: float,
    findings: Findings,
) -> dict[str, Any]:
    """Depth sources and box visibility, from the sidecar's records of the images on disk."""
    sidecar = lowq_dir / SIDECAR_NAME
    marker = DEGRADATIONS[kind].marker
    depth_sources: dict[str, int] = defaultdict(int)
    variants: dict[str, list[float]] = defaultdict(list)
    images, fallback, unknown = {}, [], 0
    for path in lowq_images:
        record = records.get(path.name)
        if not isinstance(record, dict):
            continue
        entry = images[path.name] = {}
        depth = record.get("depth") or {}
        if "source" in depth:
            entry["depth_source"] = depth["source"]
            depth_sources[depth["source"]] += 1
            whitened = (record.get("visibility") or {}).get("whitened_share")
            if depth.get("fallback"):
                fallback.append(path)
                if whitened is not None and whitened > WHITENED_IMAGE_SHARE:
                    findings.warning(
                        "fallback_depth_whitens",
                        path,
                        f"{whitened:.0%} of its pixels erased (visibility < {ERASED_BELOW}) by the "
                        "fallback ground-plane depth: the plane does not fit this scene",
                    )
        boxes = record.get("boxes")
        if not isinstance(boxes, list):
            unknown += 1
            continue
        split = split_lowq_stem(path.stem, [marker])
        # a name without the marker (unpaired_lowq, e.g. --degradation rain on a fog set): the sidecar's variant
        variant = split[2] if split else record.get("params")
        visible = [b["visibility"] for b in boxes if isinstance(b, dict) and b.get("visibility") is not None]
        if isinstance(variant, dict) and variant:
            variants["_".join(f"{k}_{format_value(v)}" for k, v in variant.items())].extend(visible)
        erased = [
            b
            for b in boxes
            if isinstance(b, dict) and b.get("visibility") is not None and b["visibility"] < erased_below
        ]
        entry["boxes"], entry["boxes_erased"] = len(boxes), len(erased)
        if erased:
            shown = ", ".join(f"{b['bbox']} {b['visibility']:.2f}" for b in erased[:3])
            findings.warning(
                "boxes_erased",
                path,
                f"{len(erased)} of {len(boxes)} boxes keep less than {erased_below:g} of their contrast: {shown}",
            )
    if fallback:
        findings.warning(
            "fallback_depth",
            sidecar,
            f"{len(fallback)} of {len(images)} images were degraded with the fallback depth (a "
            "road-scene ground plane), not their own; it fits road scenes seen from a car only",
        )
    if annotated and unknown:
        findings.warning(
            "box_visibility_unknown",
            sidecar if records else lowq_dir,
            f"{unknown if records else len(lowq_images)} images have no box visibility recorded "
            "(synthesised without --ann, or by an older lcp): erased boxes are not checked",
        )
    summary = {}
    for label, values in sorted(variants.items()):
        array = np.array(values, dtype=np.float64)
        erased = int((array < erased_below).sum())
        share = erased / len(array) if len(array) else 0.0
        summary[label] = {
            "boxes": len(array),
            "erased": erased,
            "erased_share": round(share, 4),
            "median": round(float(np.median(array)), 4) if len(array) else None,
        }
        if share > max_erased_share:
            sources = ", ".join(f"{n} {source}" for source, n in sorted(depth_sources.items()))
            findings.error(
                "boxes_erased",
                sidecar,
                f"[{label}] {erased} of {len(array)} boxes ({share:.0%}) keep less than "
                f"{erased_below:g} of their contrast, more than --max-erased-share "
                f"{max_erased_share:g} (depth: {sources or 'not recorded'})",
            )
    return {
        "images": images,
        "depth_sources": dict(sorted(depth_sources.items())),
        "box_visibility": {"erased_below": erased_below, "max_erased_share": max_erased_share, "by_variant": summary}
        if summary
        else {},
    }
