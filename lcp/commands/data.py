"""`lcp data ...`: convert data sets, synthesise degradations, check them, make the demo scene."""

from __future__ import annotations

import argparse
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lcp.commands.arguments import positive_int
from lcp.errors import INPUT_REFUSED

HELP = "convert data sets, synthesise degradations, check them, make the demo scene"


@dataclass(frozen=True)
class Tool:
    """One `lcp data` sub-command: its help line, the module whose doc is its --help text, and
    its argument parsing and running (convert's live in their own package, lcp.commands.convert)."""

    help: str
    doc_module: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    main: Callable[[argparse.Namespace], int]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lcp.commands import convert

    sub = parser.add_subparsers(dest="data_command", required=True, metavar="TOOL")
    tools = {**TOOLS, "convert": Tool(convert.HELP, convert.__name__, convert.add_arguments, convert.main)}
    for name, tool in tools.items():
        command = sub.add_parser(
            name,
            help=tool.help,
            description=importlib.import_module(tool.doc_module).__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        tool.add_arguments(command)
        command.set_defaults(_main=tool.main)


def main(args: argparse.Namespace) -> int:  # replaced by the chosen tool's main
    raise AssertionError("unreachable: a data tool is required")


# --- lcp data demo ---------------------------------------------------------------------


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    from lcp.data.demo import DEFAULT_BETA
    from lcp.data.demo_sizes import NUM_IMAGES, TEST_FRACTION

    parser.add_argument("--out", required=True, help="scene folder to create, e.g. data/demo")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--num-images", type=int, default=NUM_IMAGES, help=f"number of images (default {NUM_IMAGES})")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (default 128)")
    parser.add_argument(
        "--beta", type=float, default=DEFAULT_BETA, help=f"fog attenuation coefficient in 1/m (default {DEFAULT_BETA})"
    )
    parser.add_argument(
        "--test-fraction",
        type=float,
        default=TEST_FRACTION,
        help=f"share of images in the test split (default {TEST_FRACTION})",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a scene folder an earlier lcp run wrote")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_demo(args: argparse.Namespace) -> int:
    from lcp.data.demo import make_demo

    summary = make_demo(
        Path(args.out),
        seed=args.seed,
        num_images=args.num_images,
        size=args.size,
        beta=args.beta,
        test_fraction=args.test_fraction,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    counts = summary["counts"]
    print(
        f"{args.out}: {counts['images']} images ({counts['train']} train, {counts['test']} test), "
        f"{counts['objects']} objects, fog beta {args.beta:g}"
    )
    return 0


# --- lcp data synth --------------------------------------------------------------------


def add_synth_arguments(parser: argparse.ArgumentParser) -> None:
    from lcp.data.degradations import DEGRADATIONS

    sub = parser.add_subparsers(dest="degradation", required=True, metavar="DEGRADATION")
    for name, cls in DEGRADATIONS.items():
        # argparse %-formats help strings; the models' formulas may contain a literal '%'.
        command = sub.add_parser(
            name, help=cls.model.replace("%", "%%"), description=f"{cls.model}. {_depth_help(cls.depth_defaults)}"
        )
        _add_synth_common_arguments(command, cls.depth_defaults)
        for option in cls.options:
            command.add_argument(
                option.flag,
                type=option.type,
                nargs="+" if option.many else None,
                default=option.default,
                choices=option.choices,
                help=option.help,
            )


def _depth_help(d: dict[str, float]) -> str:
    return (
        f"Depth: Cityscapes disparity (--disparity-dir + --camera-dir), else depth maps (--depth-dir), "
        f"else a ground plane with horizon {d['horizon']:g} of the height, {d['near']:g} m at the "
        f"bottom row, {d['far']:g} m at most."
    )


def _add_synth_common_arguments(parser: argparse.ArgumentParser, d: dict[str, float]) -> None:
    from lcp.data.images import JPEG_QUALITY

    parser.add_argument("--src", required=True, help="folder of clean images (.jpg/.png)")
    parser.add_argument("--out", required=True, help="output folder (must not exist unless --overwrite)")
    parser.add_argument(
        "--ann",
        action="append",
        default=[],
        metavar="COCO.json",
        help="COCO file over --src images to rewrite for the output (repeatable, one --ann-out each); "
        "with it, only the images the --ann files list are synthesised",
    )
    parser.add_argument(
        "--ann-out",
        action="append",
        default=[],
        metavar="OUT.json",
        help="where the rewritten --ann goes (file_names -> synthesised names)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=os.cpu_count() or 1,
        help="processes (default: all cores); the output does not depend on it",
    )
    parser.add_argument("--quality", type=int, default=JPEG_QUALITY, help=f"JPEG quality (default {JPEG_QUALITY})")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an output folder (and --ann-out files) an earlier lcp run wrote",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    depth = parser.add_argument_group("depth")
    depth.add_argument("--disparity-dir", help="Cityscapes disparity folder (*_disparity.png, searched recursively)")
    depth.add_argument("--camera-dir", help="Cityscapes camera folder (*_camera.json, searched recursively)")
    depth.add_argument("--depth-dir", help="depth maps <stem>.npy (metres) or <stem>.png (16-bit, metres*256)")
    depth.add_argument(
        "--near",
        type=float,
        default=d["near"],
        help=f"fallback ground plane: depth of the bottom row in m (default {d['near']:g})",
    )
    depth.add_argument(
        "--far", type=float, default=d["far"], help=f"depth cap in m, for every source (default {d['far']:g})"
    )
    depth.add_argument(
        "--horizon",
        type=float,
        default=d["horizon"],
        help=f"fallback ground plane: horizon row / height (default {d['horizon']:g})",
    )


def run_synth(args: argparse.Namespace) -> int:
    from lcp.data.degradations import DEGRADATIONS
    from lcp.data.depth import DepthSource
    from lcp.data.synth import SIDECAR_NAME, fallback_note, synthesise_folder
    from lcp.errors import LCPError

    model = DEGRADATIONS[args.degradation]
    degradation = model(**{option.name: getattr(args, option.name) for option in model.options})
    depth = DepthSource.from_folders(
        args.near, args.far, args.horizon, args.depth_dir, args.disparity_dir, args.camera_dir
    )
    if len(args.ann) != len(args.ann_out):
        raise LCPError(f"--ann/--ann-out: give one --ann-out per --ann (got {len(args.ann)} and {len(args.ann_out)})")
    sidecar = synthesise_folder(
        degradation,
        Path(args.src),
        Path(args.out),
        depth,
        seed=args.seed,
        workers=args.workers,
        annotations=list(zip(args.ann, args.ann_out, strict=True)),
        overwrite=args.overwrite,
        quality=args.quality,
        progress=not args.no_progress,
        depth_dirs=[args.depth_dir, args.disparity_dir, args.camera_dir],
    )
    print(f"{args.out}: {len(sidecar['images'])} {degradation.name} images from {args.src} (sidecar {SIDECAR_NAME})")
    note = fallback_note(sidecar)
    if note:
        print(note)
    return 0


# --- lcp data check --------------------------------------------------------------------


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    from lcp.data.check import MAX_ERASED_SHARE, NONE
    from lcp.data.degradations import DEGRADATIONS
    from lcp.data.degradations.base import ERASED_BELOW

    parser.add_argument("--lowq", required=True, help="folder of low-quality images")
    parser.add_argument("--clean", help="folder of clean images (needed for a synthesised set)")
    parser.add_argument(
        "--ann",
        nargs="+",
        default=[],
        metavar="COCO.json",
        help="annotation files to check (images looked up in --lowq, then --clean)",
    )
    parser.add_argument("--classes", help="comma-separated class names the configs use, e.g. circle,square,triangle")
    parser.add_argument(
        "--degradation",
        choices=[*sorted(DEGRADATIONS), NONE],
        help="expected degradation (default: the sidecar's, else the file names' marker); "
        "none: a real low-quality set, its annotations and images checked alone",
    )
    parser.add_argument(
        "--erased-below",
        type=float,
        default=ERASED_BELOW,
        help=f"a box whose visibility (the share of it the degradation leaves) is below this "
        f"is erased (default {ERASED_BELOW})",
    )
    parser.add_argument(
        "--max-erased-share",
        type=float,
        default=MAX_ERASED_SHARE,
        help=f"fail when more than this share of a variant's boxes is erased (default {MAX_ERASED_SHARE})",
    )
    parser.add_argument("--report", help="write the machine-readable report here (json)")
    parser.add_argument(
        "--workers", type=positive_int, default=os.cpu_count() or 1, help="processes (default: all cores)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_check(args: argparse.Namespace) -> int:
    from lcp.data.check import check_set, format_summary
    from lcp.io import check_outside_sources, write_json

    sources = [args.lowq, args.clean, *args.ann]
    if args.report:
        check_outside_sources(args.report, sources)  # before the check's work, not after it
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    report = check_set(
        Path(args.lowq),
        Path(args.clean) if args.clean else None,
        [Path(a) for a in args.ann],
        classes=classes,
        degradation=args.degradation,
        workers=args.workers,
        progress=not args.no_progress,
        erased_below=args.erased_below,
        max_erased_share=args.max_erased_share,
    )
    if args.report:
        write_json(args.report, report, sources=sources)
    print(format_summary(report))
    return 0 if report["ok"] else INPUT_REFUSED  # the workflow's retries of a failed check end at once


TOOLS: dict[str, Tool] = {
    "demo": Tool(
        "generate the built-in demo scene: clean and foggy shapes with COCO annotations",
        "lcp.data.demo",
        add_demo_arguments,
        run_demo,
    ),
    "synth": Tool(
        "synthesise fog, rain or underwater images from clean ones (physical models, depth-aware)",
        "lcp.data.synth",
        add_synth_arguments,
        run_synth,
    ),
    "check": Tool(
        "check a low-quality set and its annotations, a synthesised one against its clean set "
        "(the gate before training)",
        "lcp.data.check",
        add_check_arguments,
        run_check,
    ),
}
