"""Pascal VOC: one xml per image (<object><name>, <bndbox> xmin ymin xmax ymax), images beside.

Images and xml files are found below SRC (by default SRC/JPEGImages and SRC/Annotations when
SRC has the VOC layout, else anywhere below SRC; --images/--annotations override) and paired
by file stem, not by the xml's <filename>, which often disagrees with the real file name.

Rules:
  * classes: --classes fixes the list and its order (category ids 1..N); boxes of other
    classes are dropped and counted. Without it, every class found is used, sorted by name.
  * corners are used as given (width = xmax - xmin), as mmdet's XMLDataset reads them; boxes
    reaching outside the decoded image are clipped, boxes left without area dropped, both
    reported.
  * <difficult>1</difficult> objects become crowd boxes (COCO iscrowd 1): ignored in
    training and evaluation, as VOC's own evaluation ignores them.
  * an xml whose image is missing, or an unreadable xml or image: error naming the file.
    An image without an xml is skipped with a warning.
  * images left with no box are kept unless --drop-empty; the evaluation scores them (a detection on one
    is a false positive), mmdet's training skips them (filter_empty_gt).
  * split: --test-list (e.g. ImageSets/Main/test.txt) or a seeded --test-fraction draw.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from lcp.data.convert.image_set import begin, finish
from lcp.data.convert.output import Output
from lcp.data.convert.report import Report
from lcp.data.convert.samples import Box, Sample, keep_classes
from lcp.data.convert.sources import walk_files
from lcp.data.convert.splits import DEFAULT_SPLIT, Split
from lcp.data.images import is_source_image
from lcp.errors import LCPError

XML_DECLARATION = re.compile(rb'\s*<\?xml[^>]*?encoding=["\']([A-Za-z0-9._-]+)["\'][^>]*\?>')

DEFAULT_TEST_FRACTION = 0.2


def voc_sample(image: Path, xml: Path) -> Sample:
    """The sample of an image and its VOC xml file: its objects and its recorded <size>."""
    root = _voc_root(xml)
    return Sample(image, boxes=parse_voc_xml(xml, root), recorded_size=_recorded_size(root), recorded_in=str(xml))


def _voc_root(path: Path) -> ET.Element:
    root = _read_xml(path)
    if root.tag != "annotation":
        raise LCPError(f"{path}: root element is <{root.tag}>, a VOC file has <annotation>")
    return root


def _read_xml(path: Path) -> ET.Element:
    """The root of an xml file; LCPError naming the file when it cannot be read or parsed.

    Expat reads only single-byte declared encodings; a file declared `encoding="gbk"` (written
    by Chinese labelling tools) is decoded with Python's codec instead.
    """
    try:
        data = path.read_bytes()
        try:
            return ET.fromstring(data)
        except ValueError:  # "multi-byte encodings are not supported"
            declared = XML_DECLARATION.match(data)
            if declared is None:
                raise
            text = data[declared.end() :].decode(declared.group(1).decode("ascii"))
            return ET.fromstring(text)
    except ET.ParseError as exc:
        raise LCPError(f"{path}: not valid XML ({exc})") from None
    except (LookupError, UnicodeDecodeError, ValueError) as exc:
        raise LCPError(f"{path}: cannot decode its text ({exc})") from None
    except OSError as exc:
        raise LCPError(f"{path}: cannot read ({exc.strerror})") from None


def _recorded_size(root: ET.Element) -> tuple[int, int] | None:
    """<size>'s (width, height) when both are positive integers (labelling tools write 0 when unsure)."""
    try:
        size = int(root.findtext("size/width") or 0), int(root.findtext("size/height") or 0)
    except ValueError:
        return None
    return size if min(size) > 0 else None


def parse_voc_xml(path: Path, root: ET.Element | None = None) -> list[Box]:
    """The objects of one VOC xml file (`root`: its parsed tree, when at hand); LCPError naming
    the file when it is malformed."""
    root = _voc_root(path) if root is None else root
    boxes = []
    for number, obj in enumerate(root.findall("object"), start=1):
        label = (obj.findtext("name") or "").strip()
        if not label:
            raise LCPError(f"{path}: object {number} has no <name>")
        origin = f"{path}: object {number} ({label})"
        bndbox = obj.find("bndbox")
        if bndbox is None:
            raise LCPError(f"{origin}: no <bndbox>")
        corners = []
        for tag in ("xmin", "ymin", "xmax", "ymax"):
            text = bndbox.findtext(tag)
            try:
                corners.append(float(text))
            except (TypeError, ValueError):
                value = "missing" if text is None else repr(text)
                raise LCPError(f"{origin}: <{tag}> is {value}, not a number") from None
        difficult = (obj.findtext("difficult") or "0").strip() in {"1", "1.0", "true", "True"}
        boxes.append(Box(label, *corners, origin=origin, crowd=difficult))
    return boxes


def pair_by_stem(images_root: Path, annotations_root: Path, report: Report) -> list[tuple[Path, Path]]:
    """(image, xml) pairs matched by file stem; missing images are errors, missing xml a warning."""
    images: dict[str, Path] = {}
    annotations: dict[str, Path] = {}
    roots = {images_root, annotations_root}
    files = sorted({f for root in roots for f in walk_files(root)})
    for path in files:
        if path.suffix.lower() == ".xml" and path.is_relative_to(annotations_root):
            table = annotations
        elif is_source_image(path) and path.is_relative_to(images_root):
            table = images
        else:
            kind = f"{path.suffix.lower()} file" if path.suffix else "file without a suffix"
            report.warn(f"{kind}, neither an image nor a VOC xml, ignored", path)
            continue
        if path.stem in table:
            raise LCPError(
                f"{path}: same stem as {table[path.stem]}; images and xml files are paired by stem, "
                "so stems must be unique"
            )
        table[path.stem] = path
    for stem in sorted(set(images) - set(annotations)):
        report.warn("image without an xml file, skipped", images[stem])
    pairs = []
    for stem, xml in sorted(annotations.items()):
        if stem not in images:
            raise LCPError(f"{xml}: no image named {stem}.<jpg|png|...> below {images_root}")
        pairs.append((images[stem], xml))
    count_filename_mismatches(pairs, report)
    return pairs


def count_filename_mismatches(pairs: list[tuple[Path, Path]], report: Report) -> None:
    """Count the xml files whose <filename> names another file than the image paired with them."""
    for image, xml in pairs:
        try:
            named = (_read_xml(xml).findtext("filename") or "").strip()
        except LCPError:
            continue  # parse_voc_xml names the file
        if named and Path(named).name != image.name:
            report.count("xml whose <filename> names another file than its image (paired by file stem)")


def source_folders(src: Path, images: Path | None, annotations: Path | None) -> tuple[Path, Path]:
    """The folders searched for images and for xml files: as given, else SRC/JPEGImages and
    SRC/Annotations when SRC has the VOC layout, else SRC."""
    if not src.is_dir():
        raise LCPError(f"{src}: not a folder")
    voc_layout = (src / "JPEGImages").is_dir() and (src / "Annotations").is_dir()
    images = images or (src / "JPEGImages" if voc_layout else src)
    annotations = annotations or (src / "Annotations" if voc_layout else src)
    return images, annotations


def convert(
    src: Path,
    output: Output,
    *,
    classes: Sequence[str] | None = None,
    split: Split = DEFAULT_SPLIT,
    images: Path | None = None,
    annotations: Path | None = None,
    drop_empty: bool = False,
) -> Report:
    """Write the VOC set at `src` as the image set `output`; `classes` (default: all found,
    sorted) in category order."""
    images_root, annotations_root = source_folders(src, images, annotations)
    report = begin("voc", output, [src, images, annotations, split.test_list])
    pairs = pair_by_stem(images_root, annotations_root, report)
    samples = [voc_sample(image, xml) for image, xml in pairs]
    classes = classes or sorted({box.label for s in samples for box in s.boxes})
    if not classes:
        raise LCPError(f"{annotations_root}: no objects in any xml file, and no --classes given")
    keep_classes(samples, classes, report, "box of class", annotations_root)
    return finish(
        samples,
        output,
        report,
        split=split,
        default_test_fraction=DEFAULT_TEST_FRACTION,
        classes=classes,
        description=f"VOC {src}",
        drop_empty=drop_empty,
    )
