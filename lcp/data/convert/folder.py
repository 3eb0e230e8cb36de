"""A folder of images without annotations, e.g. a detection-favoured set (DFUI, clear images).

Rules:
  * images are collected recursively (hidden files and folders skipped) and written flat as
    .jpg; a file keeps its stem unless another file shares it (ignoring case), then each of
    those is named after its path (sub/a.png -> sub__a_png.jpg): deterministic, whatever
    the listing order.
  * a control character (a newline, a tab) or a byte that is no UTF-8 in a name becomes _
    (new_line.jpg, unless a file has that name).
  * files without an image extension are skipped with a warning; a file with an image
    extension that does not decode is an error naming it.
  * the json lists the images (no annotations); --classes only fills its categories.
  * everything is train unless --test-fraction or --test-list says otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lcp.data.convert.image_set import begin, finish
from lcp.data.convert.output import Output
from lcp.data.convert.report import Report
from lcp.data.convert.samples import Sample
from lcp.data.convert.sources import walk_files
from lcp.data.convert.splits import DEFAULT_SPLIT, Split
from lcp.data.images import is_source_image

DEFAULT_TEST_FRACTION = 0.0


def convert(src: Path, output: Output, *, classes: Sequence[str] = (), split: Split = DEFAULT_SPLIT) -> Report:
    """Write the images below `src` as the image set `output`, listing `classes` as categories."""
    report = begin("folder", output, [src, split.test_list])  # SRC is checked by walk_files
    samples = []
    for path in walk_files(src):
        if is_source_image(path):
            samples.append(Sample(path))
        else:
            report.warn("not an image file (by its extension), skipped", path)
    return finish(
        samples,
        output,
        report,
        split=split,
        default_test_fraction=DEFAULT_TEST_FRACTION,
        classes=classes,
        description=f"images of {src}",
    )
