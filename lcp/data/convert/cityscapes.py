"""Cityscapes gtFine instance polygons -> detection boxes, for clear, foggy and rainy images.

ROOT holds gtFine/{train,val}/<city>/*_gtFine_polygons.json and (for the clear set)
leftImg8bit/{train,val}/<city>/*_leftImg8bit.png. gtFine train is the train split, gtFine
val the test split (the Cityscapes test split has no public annotations).

Rules:
  * the detection classes are the labels that cityscapesscripts.helpers.labels marks
    hasInstances and not ignoreInEval (person, rider, car, truck, bus, train, motorcycle,
    bicycle); --classes picks them and their category order (default: the order of the
    configs). Polygons of other labels are ignored and counted; an unknown label is an
    error naming the file.
  * a box is the extent of its instance polygon; boxes reaching outside the image are
    clipped, and reported. The polygon file's imgWidth/imgHeight is compared with the image as
    the VOC converter compares <size>: boxes that leave the image but fit the recorded size
    (images downscaled after labelling) are refused. A --classes name without a box in the
    images written is refused (a warning for Foggy and Rainy Cityscapes, which may cover a
    subset of the frames that lacks a rare class).
  * group polygons (e.g. "cargroup": several objects under one outline) become crowd boxes
    (COCO iscrowd 1, ignored in training and evaluation), as in mmdet's own converter;
    deleted polygons are skipped.
  * images are flattened out of the city folders into one folder, names kept
    (aachen_000000_000019_leftImg8bit.jpg).
  * one image set per run: the clear leftImg8bit images; or with --foggy DIR Foggy
    Cityscapes (*_leftImg8bit_foggy_beta_<BETA>.png, one --beta); or with --rainy DIR Rainy
    Cityscapes (*_leftImg8bit_rain_alpha_A_beta_B_dropsize_D_pattern_P.png;
    every variant that passes the --rain-* filters becomes an image of its own), matched
    to the annotations by frame name. Images of frames without fine annotations (the test
    split) are skipped and counted; a foggy frame missing is warned about, a rainy one only
    counted (Rainy Cityscapes covers a subset of the frames).
Output (scene folder OUT, e.g. data/city): OUT/NAME/ and OUT/annotations/NAME_{train,test}.json,
NAME by default city_images, foggy_city_images or rainy_city_images.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lcp.data.convert.image_set import write_image_set
from lcp.data.convert.output import Output, check_output_free
from lcp.data.convert.report import Report
from lcp.data.convert.samples import Box, Sample, boxes_by_class, keep_classes
from lcp.data.convert.sources import walk_files
from lcp.errors import LCPError

# The class order of the LCP Cityscapes configs (category ids 1..8 follow it).
CONFIG_CLASS_ORDER = ("bicycle", "bus", "person", "train", "truck", "motorcycle", "car", "rider")
SPLIT_OF_FOLDER = {"train": "train", "val": "test"}
FOGGY_BETAS = (0.005, 0.01, 0.02)

ANNOTATION_SUFFIX = "_gtFine_polygons.json"
CLEAR_PATTERN = re.compile(r"^(?P<frame>.+)_leftImg8bit\.png$")
NUMBER = r"[0-9]*\.?[0-9]+"  # a name with "0.0.1" in its place is no image of the set, not a traceback
FOGGY_PATTERN = re.compile(rf"^(?P<frame>.+)_leftImg8bit_foggy_beta_(?P<beta>{NUMBER})\.png$")
RAINY_PATTERN = re.compile(
    rf"^(?P<frame>.+)_leftImg8bit_rain_alpha_(?P<alpha>{NUMBER})_beta_(?P<beta>{NUMBER})"
    rf"_dropsize_(?P<dropsize>{NUMBER})_pattern_(?P<pattern>[0-9]+)\.png$"
)


@dataclass
class ImageSource:
    """One image set to write: where its files are, which names belong to it, and what a
    missing annotated frame means ("error", "warn" or "count")."""

    folder: Path
    pattern: re.Pattern
    keep: Callable[[re.Match], bool]
    what: str
    missing_frame: str


@dataclass
class Frame:
    """One annotated Cityscapes frame: its split and boxes, shared by all image variants."""

    split: str
    boxes: list[Box]
    annotation: Path
    size: tuple[int, int] | None = None  # (imgWidth, imgHeight) as the polygon file records them


def detection_classes() -> list[str]:
    from cityscapesscripts.helpers.labels import labels

    return [label.name for label in labels if label.hasInstances and not label.ignoreInEval]


def polygon_boxes(path: Path, classes: Sequence[str], report: Report) -> tuple[list[Box], tuple[int, int] | None]:
    """The boxes of one gtFine polygon file (instance polygon extents of the wanted classes)
    and the image size it records."""
    from cityscapesscripts.helpers.annotation import Annotation
    from cityscapesscripts.helpers.labels import assureSingleInstanceName, name2label

    annotation = Annotation()
    try:
        annotation.fromJsonText(path.read_text())
    except OSError as exc:
        raise LCPError(f"{path}: cannot read ({exc.strerror})") from None
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise LCPError(f"{path}: not a Cityscapes polygon file ({type(exc).__name__}: {exc})") from None
    boxes = []
    for obj in annotation.objects:
        origin = f"{path}: object {obj.id + 1} ({obj.label})"
        if obj.deleted:
            report.count("deleted polygon, skipped")
            continue
        name = assureSingleInstanceName(obj.label)
        if name is None and obj.label.endswith("group") and obj.label[: -len("group")] in name2label:
            name = obj.label[: -len("group")]  # a group of a class without instances, e.g. "roadgroup"
        if name is None:
            raise LCPError(f"{origin}: unknown Cityscapes label {obj.label!r}")
        label = name2label[name]
        if not label.hasInstances:
            report.count("polygon of a class without instances (road, sky, ...), ignored")
            continue
        if label.ignoreInEval:
            report.count(f"{name} polygon (ignoreInEval in cityscapesscripts), ignored")
            continue
        if name not in classes:
            report.count(f"{name} polygon (not in --classes), ignored")
            continue
        if not obj.polygon:
            report.warn("polygon without points, skipped", origin)
            continue
        xs = [point.x for point in obj.polygon]
        ys = [point.y for point in obj.polygon]
        boxes.append(Box(name, min(xs), min(ys), max(xs), max(ys), origin=origin, crowd=obj.label != name))
    size = annotation.imgWidth, annotation.imgHeight
    return boxes, size if all(isinstance(side, int) and side > 0 for side in size) else None


def read_frames(gtfine: Path, classes: Sequence[str], report: Report) -> dict[str, Frame]:
    if not gtfine.is_dir():
        raise LCPError(f"{gtfine}: not a folder (ROOT must hold the Cityscapes gtFine folder)")
    frames: dict[str, Frame] = {}
    for folder, split in SPLIT_OF_FOLDER.items():
        if not (gtfine / folder).is_dir():
            report.warn(f"no gtFine/{folder} folder: the {split} split stays empty", gtfine / folder)
            continue
        for path in walk_files(gtfine / folder):
            if not path.name.endswith(ANNOTATION_SUFFIX):
                continue
            frame = path.name[: -len(ANNOTATION_SUFFIX)]
            if frame in frames:
                raise LCPError(f"{path}: frame {frame} is annotated twice (also {frames[frame].annotation})")
            boxes, size = polygon_boxes(path, classes, report)
            frames[frame] = Frame(split, boxes, path, size)
    if not frames:
        raise LCPError(f"{gtfine}: no *{ANNOTATION_SUFFIX} files below train/ or val/")
    return frames


def find_variants(source: ImageSource, frames: dict[str, Frame], report: Report) -> dict[str, list[Path]]:
    """The source's image files of annotated frames, by frame name."""
    if not source.folder.is_dir():
        raise LCPError(f"{source.folder}: not a folder ({source.what} images expected)")
    found: dict[str, list[Path]] = {}
    seen: dict[str, Path] = {}
    for path in walk_files(source.folder):
        match = source.pattern.match(path.name)
        if match is None:
            report.warn(f"file not named like {source.what} images, ignored", path)
            continue
        if not source.keep(match):
            continue
        if path.name in seen:
            raise LCPError(f"{path}: the same {source.what} image name appears twice (also {seen[path.name]})")
        seen[path.name] = path
        if match["frame"] not in frames:
            report.count(f"{source.what} image of a frame without fine annotations (e.g. test split), skipped")
            continue
        found.setdefault(match["frame"], []).append(path)
    if not found:
        raise LCPError(f"{source.folder}: no {source.what} images of annotated frames (with the chosen variant)")
    return found


def image_set_samples(source: ImageSource, frames: dict[str, Frame], report: Report) -> list[Sample]:
    """One sample per image of the source, carrying its frame's split and boxes."""
    variants = find_variants(source, frames, report)
    samples = []
    for frame_name, frame in frames.items():
        paths = variants.get(frame_name)
        if paths:
            samples += [
                Sample(path, frame.split, list(frame.boxes), frame.size, str(frame.annotation)) for path in paths
            ]
        elif source.missing_frame == "error":
            raise LCPError(f"{frame.annotation}: no {source.what} image of frame {frame_name} below {source.folder}")
        elif source.missing_frame == "warn":
            report.warn(f"annotated frame without a {source.what} image, left out", frame.annotation)
        else:
            report.count(f"annotated frame without a {source.what} image (that set covers a subset)")
    return samples


def matches_any(value: str, wanted: Sequence[float] | None) -> bool:
    return wanted is None or any(math.isclose(float(value), w, rel_tol=1e-9) for w in wanted)


def default_name(foggy: Path | None, rainy: Path | None) -> str:
    """The image set name when none is given: city_images, foggy_city_images or rainy_city_images."""
    return "foggy_city_images" if foggy is not None else "rainy_city_images" if rainy is not None else "city_images"


def image_source(
    root: Path,
    foggy: Path | None = None,
    beta: float = 0.02,
    rainy: Path | None = None,
    rain_alpha: Sequence[float] | None = None,
    rain_beta: Sequence[float] | None = None,
    rain_dropsize: Sequence[float] | None = None,
    rain_pattern: Sequence[int] | None = None,
) -> ImageSource:
    """Which images this run writes: clear leftImg8bit (default), `foggy` or `rainy`."""
    if foggy is not None:
        return ImageSource(
            foggy, FOGGY_PATTERN, lambda m: matches_any(m["beta"], [beta]), "Foggy Cityscapes", missing_frame="warn"
        )
    if rainy is not None:

        def keep_rainy(m: re.Match) -> bool:
            return (
                matches_any(m["alpha"], rain_alpha)
                and matches_any(m["beta"], rain_beta)
                and matches_any(m["dropsize"], rain_dropsize)
                and (rain_pattern is None or int(m["pattern"]) in rain_pattern)
            )

        return ImageSource(rainy, RAINY_PATTERN, keep_rainy, "Rainy Cityscapes", missing_frame="count")
    return ImageSource(root / "leftImg8bit", CLEAR_PATTERN, lambda m: True, "leftImg8bit", missing_frame="error")


def convert(
    root: Path,
    output: Output,
    *,
    classes: Sequence[str] = CONFIG_CLASS_ORDER,
    foggy: Path | None = None,
    beta: float = 0.02,
    rainy: Path | None = None,
    rain_alpha: Sequence[float] | None = None,
    rain_beta: Sequence[float] | None = None,
    rain_dropsize: Sequence[float] | None = None,
    rain_pattern: Sequence[int] | None = None,
    drop_empty: bool = False,
) -> Report:
    """Write the boxes of the gtFine annotations below `root` on the clear, `foggy` (one
    `beta`) or `rainy` (every variant the rain_* filters keep, None: all) images as the
    image set `output`; `classes` in category order."""
    if foggy is not None and rainy is not None:
        raise LCPError(f"{foggy}: give Foggy or Rainy Cityscapes images, not both (also {rainy})")
    report = Report("cityscapes")
    known = detection_classes()
    unknown = [name for name in classes if name not in known]
    if unknown:
        raise LCPError(f"--classes: {', '.join(unknown)} not a Cityscapes detection class ({', '.join(known)})")
    source = image_source(root, foggy, beta, rainy, rain_alpha, rain_beta, rain_dropsize, rain_pattern)
    check_output_free(output.out, [output.name], output.overwrite, [root, foggy, rainy])
    frames = read_frames(root / "gtFine", classes, report)
    samples = image_set_samples(source, frames, report)
    if source.missing_frame != "error":  # a subset of the frames (Rainy, Foggy's refined) may lack a rare class
        found = boxes_by_class(samples)
        for name in (name for name in classes if not found[name]):
            report.warn(f"class {name!r} has no box on the {source.what} images", source.folder)
    else:
        keep_classes(samples, classes, report, "box of class", root / "gtFine")
    write_image_set(
        samples,
        output,
        classes=classes,
        report=report,
        drop_empty=drop_empty,
        description=f"Cityscapes gtFine boxes on {source.what} images",
    )
    return report
