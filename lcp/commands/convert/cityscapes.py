"""`lcp data convert cityscapes`; its description is the conversion's rules (lcp.data.convert.cityscapes)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lcp.commands.arguments import class_list
from lcp.commands.convert.options import add_drop_empty_argument, add_output_arguments, output_of, print_report
from lcp.data.convert import cityscapes

__doc__ = cityscapes.__doc__  # `--help` shows the conversion's rules, which the library documents
HELP = "Cityscapes gtFine polygons -> 8 detection classes, with Foggy / Rainy Cityscapes images"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "root", type=Path, metavar="ROOT", help="Cityscapes folder with gtFine/ (and leftImg8bit/ for the clear set)"
    )
    add_output_arguments(parser, default_name=None)
    parser.add_argument(
        "--name",
        default=None,
        help="image set name (default: city_images, foggy_city_images with --foggy, rainy_city_images with --rainy)",
    )
    order = cityscapes.CONFIG_CLASS_ORDER
    parser.add_argument(
        "--classes",
        type=class_list,
        default=list(order),
        help=f"comma-separated detection classes in category order (default: {','.join(order)})",
    )
    variant = parser.add_mutually_exclusive_group()
    variant.add_argument(
        "--foggy",
        type=Path,
        default=None,
        metavar="DIR",
        help="write the Foggy Cityscapes images of DIR (leftImg8bit_foggy)",
    )
    variant.add_argument(
        "--rainy",
        type=Path,
        default=None,
        metavar="DIR",
        help="write the Rainy Cityscapes images of DIR (leftImg8bit_rain)",
    )
    parser.add_argument(
        "--beta",
        type=float,
        choices=cityscapes.FOGGY_BETAS,
        default=0.02,
        help="with --foggy: the fog density (default: %(default)s)",
    )
    for option, kind, metavar, what in (
        ("--rain-alpha", float, "A", "alpha values"),
        ("--rain-beta", float, "B", "beta values"),
        ("--rain-dropsize", float, "D", "drop sizes"),
        ("--rain-pattern", int, "P", "rain patterns"),
    ):
        parser.add_argument(
            option,
            type=kind,
            nargs="+",
            default=None,
            metavar=metavar,
            help=f"with --rainy: keep these {what} (default: all)",
        )
    add_drop_empty_argument(parser)


def main(args: argparse.Namespace) -> int:
    output = output_of(args, name=args.name or cityscapes.default_name(args.foggy, args.rainy))
    return print_report(
        cityscapes.convert(
            args.root,
            output,
            classes=args.classes,
            foggy=args.foggy,
            beta=args.beta,
            rainy=args.rainy,
            rain_alpha=args.rain_alpha,
            rain_beta=args.rain_beta,
            rain_dropsize=args.rain_dropsize,
            rain_pattern=args.rain_pattern,
            drop_empty=args.drop_empty,
        )
    )
