"""A folder of images without annotations, e.g. a detection-favoured set (DFUI, clear images).

Rules:
  * images are collected recursively (hidden files and folders skipped) and written flat as
    .jpg; a file keeps its stem unless another file shares it (ignoring case), then each of
    those is named after its path (sub/a.png -> sub__a_png.jpg): deterministic, whatever
    the listing order.
  * files without an image extension are skipped with a warning; a file with an image
    extension that does not decode is an error naming it.
  * the json lists the images (no annotations); --classes only fills its categories.
  * everything is train unless --test-fraction or --test-list says otherwise.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lcp.data.convert.common import (
    Report,
    Sample,
    add_output_arguments,
    add_split_arguments,
    assign_splits,
    check_output_free,
    class_list,
    is_image_file,
    walk_files,
    write_image_set,
)

HELP = "a folder of images without annotations (detection-favoured sets such as DFUI)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", type=Path, metavar="SRC", help="folder searched recursively for images")
    add_output_arguments(parser, default_name="images")
    parser.add_argument("--classes", type=class_list, default=[], help="comma-separated categories to list in the json (default: none)")
    add_split_arguments(parser, default_fraction=0.0, own_split=False)


def main(args: argparse.Namespace) -> int:
    report = Report("folder")
    check_output_free(args.out, [args.name], args.overwrite)
    samples = []
    for path in walk_files(args.src):
        if is_image_file(path):
            samples.append(Sample(path))
        else:
            report.warn("not an image file (by its extension), skipped", path)
    assign_splits(samples, args, report)
    write_image_set(
        samples, out=args.out, name=args.name, classes=args.classes, workers=args.workers,
        overwrite=args.overwrite, report=report, description=f"images of {args.src}",
    )
    report.print()
    return 0
