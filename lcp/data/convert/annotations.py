"""The COCO dicts of one image set: boxes clipped to the decoded image sizes, categories 1..N
in the class order, one dict per split, and the counts its summary prints."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lcp.data import SPLITS
from lcp.data.convert.report import Report
from lcp.data.convert.samples import Box, Sample
from lcp.data.convert.transcode import Decoded
from lcp.data.images import QUARTER_TURNS
from lcp.errors import LCPError


@dataclass
class Annotations:
    """The COCO dict of every split that has images, the image files --drop-empty left out,
    and the counts per split."""

    cocos: dict[str, dict]
    dropped: list[str] = field(default_factory=list)
    images: Counter[str] = field(default_factory=Counter)
    negatives: Counter[str] = field(default_factory=Counter)
    boxes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    crowd_boxes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def summary(self, out: Path, name: str, classes: Sequence[str]) -> str:
        jsons = ", ".join(str(out / "annotations" / f"{name}_{split}.json") for split in self.cocos)
        lines = [f"{out / name}: {sum(self.images.values())} images -> {jsons}"]
        rows = [("images", self.images)]
        rows += [(f"{label} boxes", self.boxes[label]) for label in classes]
        rows += [
            (f"{label} crowd/ignore boxes", self.crowd_boxes[label]) for label in classes if self.crowd_boxes[label]
        ]
        rows.append(("images without a box", self.negatives))
        width = max(len(label) for label, _ in rows) + 2
        lines.append("  " + "".ljust(width) + "".join(f"{split:>8}" for split in SPLITS))
        for label, counts in rows:
            lines.append("  " + label.ljust(width) + "".join(f"{counts[split]:>8}" for split in SPLITS))
        return "\n".join(lines)


def check_labels(samples: Sequence[Sample], classes: Sequence[str]) -> None:
    for sample in samples:
        for box in sample.boxes:
            if box.label not in classes:
                raise LCPError(f"{box.origin}: class {box.label!r} is not one of {', '.join(classes)}")


def coco_box(box: Box, width: int, height: int, name: str, report: Report) -> list[float] | None:
    """[x, y, w, h] of the box clipped to the image, or None (reported) when nothing is left."""
    x1, y1, x2, y2 = box.x1, box.y1, box.x2, box.y2
    if box.relative:
        x1, x2, y1, y2 = x1 * width, x2 * width, y1 * height, y2 * height
    if not (x2 > x1 and y2 > y1):
        report.warn("box without area (max <= min), dropped", box.origin)
        return None
    cx1, cy1, cx2, cy2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))
    where = f"{box.origin} (image {width}x{height})"
    if not (cx2 > cx1 and cy2 > cy1):
        report.warn(f"{name}: box entirely outside the image, dropped", where)
        return None
    bbox = [round(cx1, 2), round(cy1, 2), round(cx2 - cx1, 2), round(cy2 - cy1, 2)]  # written to 0.01 px
    if bbox[2] <= 0 or bbox[3] <= 0:
        report.warn(f"{name}: box under 0.01 px wide or high (inside the image), dropped", where)
        return None
    if (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2):
        report.warn(f"{name}: box outside the image, clipped to it", where)
    return bbox


def _drawn_at(boxes: Sequence, size: tuple[int, int]) -> bool:
    """Whether every box in pixels lies within an image of `size` (1 px of slack for rounding)."""
    width, height = size
    return all(box.x2 <= width + 1 and box.y2 <= height + 1 for box in boxes if not box.relative)


def check_recorded_sizes(samples: Sequence[Sample], decoded: Sequence[Decoded], report: Report) -> None:
    """Compare each image's decoded size with the size its annotation file records.

    An image that its EXIF orientation turns a quarter, while its annotation records the size
    of its stored, unturned pixels, is refused: its boxes were drawn on those pixels, and mmdet
    reads the image turned (a half turn cannot be told from the sizes: it is warned about with
    every other EXIF-turned image). So is an image whose boxes leave it but fit the recorded
    size: they were drawn at that size (an image downscaled after labelling), and clipping
    them would put them elsewhere. Any other difference is a warning: the boxes are taken in
    the decoded image's pixels and clipped to it.
    """
    unturned, rescaled = [], []
    for sample, image in zip(samples, decoded, strict=True):
        if image.orientation != 1:
            report.warn(
                f"EXIF orientation {image.orientation}: read turned to {image.width}x{image.height}, as mmdet "
                "reads it; its boxes must have been drawn on the turned image",
                sample.image,
            )
        recorded = sample.recorded_size
        if recorded is None or 0 in recorded or recorded == (image.width, image.height):
            continue
        if image.orientation in QUARTER_TURNS and recorded == (image.height, image.width):
            unturned.append((sample, image))
        elif _drawn_at(sample.boxes, recorded) and not _drawn_at(sample.boxes, (image.width, image.height)):
            rescaled.append((sample, image))
        else:
            report.warn(
                f"{sample.recorded_in} records {recorded[0]}x{recorded[1]}, the image is "
                f"{image.width}x{image.height}; its boxes are taken in the image's pixels",
                sample.image,
            )
    if rescaled:
        sample, image = rescaled[0]
        more = f" (and {len(rescaled) - 1} more such images)" if len(rescaled) > 1 else ""
        width, height = sample.recorded_size
        raise LCPError(
            f"{sample.image}: {sample.recorded_in} records {width}x{height}, the image is {image.width}x"
            f"{image.height}, and its boxes leave the image but fit the recorded size: they were drawn at "
            f"{width}x{height}{more}; give the images at the size they were labelled at, or scale the boxes "
            "and the recorded sizes to the images, and convert again"
        )
    if unturned:
        sample, image = unturned[0]
        more = f" (and {len(unturned) - 1} more such images)" if len(unturned) > 1 else ""
        raise LCPError(
            f"{sample.image}: {sample.recorded_in} records {image.height}x{image.width}, the size of its stored "
            f"pixels, but its EXIF orientation {image.orientation} turns it to {image.width}x{image.height} as "
            f"mmdet reads it, so the boxes drawn on the stored pixels would land elsewhere{more}; remove the "
            "orientation tag so that the images are read as they were labelled "
            "(exiftool -Orientation= -overwrite_original FILES) and convert again"
        )


def build_annotations(
    samples: Sequence[Sample],
    file_names: Sequence[str],
    sizes: Sequence[Decoded],
    *,
    folder: Path,
    classes: Sequence[str],
    info: dict,
    report: Report,
    drop_empty: bool,
) -> Annotations:
    """The COCO dicts of the images written as `file_names` into `folder`, with their decoded
    `sizes`; refused when no image, or none of the source's boxes, is left."""
    name = folder.name
    category_ids = {label: i + 1 for i, label in enumerate(classes)}
    categories = [{"id": i, "name": label, "supercategory": "object"} for label, i in category_ids.items()]
    cocos = {
        split: {"info": info, "licenses": [], "images": [], "annotations": [], "categories": categories}
        for split in SPLITS
    }
    result = Annotations(cocos)
    image_id = annotation_id = 0
    for sample, file_name, (width, height, _) in zip(samples, file_names, sizes, strict=True):
        kept = [(box, bbox) for box in sample.boxes if (bbox := coco_box(box, width, height, name, report)) is not None]
        if not kept and drop_empty:
            report.warn("image with no box left, dropped (--drop-empty)", sample.image)
            result.dropped.append(file_name)
            continue
        coco = cocos[sample.split]
        image_id += 1
        coco["images"].append({"id": image_id, "file_name": file_name, "width": width, "height": height})
        result.images[sample.split] += 1
        result.negatives[sample.split] += not kept
        for box, (x, y, w, h) in kept:
            annotation_id += 1
            coco["annotations"].append(
                {
                    "id": annotation_id,
                    "image_id": image_id,
                    "category_id": category_ids[box.label],
                    "bbox": [x, y, w, h],
                    "area": round(w * h, 2),
                    "iscrowd": int(box.crowd),
                }
            )
            (result.crowd_boxes if box.crowd else result.boxes)[box.label][sample.split] += 1
    if not image_id:
        raise LCPError(f"{folder}: no images left to write (all dropped; see the warnings)")
    source_boxes = sum(len(sample.boxes) for sample in samples)
    if source_boxes and not annotation_id:
        raise LCPError(
            f"{folder}: all {source_boxes} boxes of the source were dropped (see the warnings); "
            "a set without boxes has nothing to train or evaluate on"
        )
    result.cocos = {split: cocos[split] for split in SPLITS if result.images[split]}
    return result
