"""URPC2020 underwater images with Pascal VOC xml boxes.

SRC is searched for images and xml files anywhere below it (the release's train/image and
train/box both fit); they are paired by file stem because the xml <filename> does not
always name the real image file.

Rules:
  * classes are fixed, in this category order: echinus, holothurian, scallop, starfish.
  * waterweed(s) boxes are dropped and counted (the detection benchmark has four classes);
    any other class name is an error naming the xml file.
  * boxes reaching outside the decoded image are clipped (boxes left without area are
    dropped), and both are reported. The xml <size> is read as for VOC: boxes that leave the
    image but fit <size> (an image downscaled after labelling) are refused, any other
    difference is a warning and the boxes are taken in the image's pixels.
  * images left with no box (e.g. only waterweed) are kept unless --drop-empty; the evaluation
    scores them (a detection on one is a false positive), mmdet's training skips them
    (filter_empty_gt).
  * an xml whose image is missing, or an unreadable xml or image: error naming the file.
    An image without an xml (e.g. the unlabelled test images) is skipped with a warning.
  * URPC2020 publishes no labelled test split: a seeded --test-fraction draw (default 0.2)
    or --test-list decides it.
Output: OUT/NAME/*.jpg and OUT/annotations/NAME_{train,test}.json (NAME: urpc by default;
--name dfui converts DFUI, which comes in the same format). With the same seed and
fraction, DFUI gets the same split as URPC2020 when both hold the same image stems.
"""

from __future__ import annotations

from pathlib import Path

from lcp.data.convert.image_set import begin, finish
from lcp.data.convert.output import Output
from lcp.data.convert.report import Report
from lcp.data.convert.splits import DEFAULT_SPLIT, Split
from lcp.data.convert.voc import pair_by_stem, source_folders, voc_sample
from lcp.errors import LCPError

CLASSES = ("echinus", "holothurian", "scallop", "starfish")
# The released sets write "waterweeds"; some copies the singular.
DROPPED_CLASSES = frozenset({"waterweed", "waterweeds"})
DEFAULT_TEST_FRACTION = 0.2


def convert(
    src: Path,
    output: Output,
    *,
    split: Split = DEFAULT_SPLIT,
    images: Path | None = None,
    annotations: Path | None = None,
    drop_empty: bool = False,
) -> Report:
    """Write the URPC2020 (or DFUI) set at `src` as the image set `output`."""
    images_root, annotations_root = source_folders(src, images, annotations)
    report = begin("urpc", output, [src, images, annotations, split.test_list])
    samples = []
    for image, xml in pair_by_stem(images_root, annotations_root, report):
        sample = voc_sample(image, xml)
        boxes = []
        for box in sample.boxes:
            if box.label in DROPPED_CLASSES:
                report.warn(f"{box.label} box, dropped (URPC rule)", box.origin)
            elif box.label in CLASSES:
                boxes.append(box)
            else:
                raise LCPError(
                    f"{box.origin}: unknown class {box.label!r}; "
                    f"URPC2020 has {', '.join(CLASSES)} (and waterweeds, dropped)"
                )
        sample.boxes = boxes
        samples.append(sample)
    return finish(
        samples,
        output,
        report,
        split=split,
        default_test_fraction=DEFAULT_TEST_FRACTION,
        classes=CLASSES,
        description=f"URPC2020 {src}",
        drop_empty=drop_empty,
    )
