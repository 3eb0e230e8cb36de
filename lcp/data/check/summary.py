"""The short summary `lcp data check` prints from its report."""

from __future__ import annotations

from typing import Any

EXAMPLES_SHOWN = 5


def format_summary(report: dict[str, Any]) -> str:
    counts = report["counts"]
    if report["degradation"] is None:
        lines = [
            f"lcp data check (no degradation: annotations and images only): {counts['lowq_images']} images; "
            f"{counts['annotation_files']} annotation files, {counts['annotations']} boxes"
        ]
    else:
        lines = [
            f"lcp data check ({report['degradation']}): {counts['lowq_images']} low-quality, "
            f"{counts['clean_images']} clean images, {counts['pairs']} pairs; "
            f"{counts['annotation_files']} annotation files, {counts['annotations']} boxes"
        ]
    summary = report["degradation_summary"]
    for variant, stats in summary.get("by_variant", {}).items():
        lines.append(
            f"  {summary['statistic']} [{variant}]: mean {stats['mean']:.3f}, "
            f"min {stats['min']:.3f}, max {stats['max']:.3f} over {stats['images']} images"
        )
    if report["depth_sources"]:
        lines.append("  depth: " + ", ".join(f"{n} images {source}" for source, n in report["depth_sources"].items()))
    visibility = report["box_visibility"]
    for variant, stats in visibility.get("by_variant", {}).items():
        if not stats["boxes"]:  # the annotation files list images without boxes
            lines.append(f"  box visibility [{variant}]: no boxes")
            continue
        lines.append(
            f"  box visibility [{variant}]: median {stats['median']:.3f}, {stats['erased']} of "
            f"{stats['boxes']} boxes erased (< {visibility['erased_below']:g})"
        )
    for title, found in (("warning", report["warnings"]), ("error", report["errors"])):
        for reason, group in found.items():
            lines.append(f"  {title} {reason} ({group['count']}):")
            for item in group["items"][:EXAMPLES_SHOWN]:
                lines.append(f"    {item['file']}: {item['detail']}")
            if group["count"] > EXAMPLES_SHOWN:
                lines.append(f"    ... {group['count'] - EXAMPLES_SHOWN} more")
    total = sum(group["count"] for group in report["errors"].values())
    lines.append("PASSED" if report["ok"] else f"FAILED: {total} error(s): " + ", ".join(report["errors"]))
    return "\n".join(lines)
