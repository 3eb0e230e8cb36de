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
    Sample,
    add_classes_argument,
    add_output_arguments,
    add_split_arguments,
    finish_conversion,
    is_image_file,
    start_conversion,
    walk_files,
)

HELP = "a folder of images without annotations (detection-favoured sets such as DFUI)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", type=Path, metavar="SRC", help="folder searched recursively for images")
    add_output_arguments(parser, default_name="images")
    add_classes_argument(parser, "comma-separated categories to list in the json (default: none)", default=[])
    add_split_arguments(parser, default_fraction=0.0, own_split=False, drop_empty=False)


def main(args: argparse.Namespace) -> int:
    report = start_conversion("folder", args)  # SRC is checked by walk_files
    samples = []
    for path in walk_files(args.src):
        if is_image_file(path):
            samples.append(Sample(path))
        else:
            report.warn("not an image file (by its extension), skipped", path)
    return finish_conversion(samples, args, report, classes=args.classes, description=f"images of {args.src}")
