"""`lcp weights fetch`: put pretrained backbone weights into torch's hub cache.

The R50 pretraining configs start their ResNet from ImageNet (`torchvision://resnet50`), and
`lcp train` downloads nothing: it reads the file from torch's hub cache
($TORCH_HOME/hub/checkpoints/, default ~/.cache/torch/hub/checkpoints/) and stops with one
line naming the file when it is missing. Run this once on a machine with internet that
shares that folder with the compute nodes (a login node), or copy a file you downloaded
elsewhere with --from. Every file is checked against the SHA-256 prefix in its name, as
torch.hub does.
"""

from __future__ import annotations

import argparse
import sys

from lcp.errors import LCPError

HELP = "fetch pretrained backbone weights (ImageNet ResNet-50) into torch's hub cache, for offline compute nodes"

DEFAULT_WEIGHTS = "torchvision://resnet50"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="weights_command", required=True, metavar="ACTION")
    fetch = sub.add_parser(
        "fetch",
        help="download (or copy) weights into torch's hub cache",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fetch.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        default=[DEFAULT_WEIGHTS],
        help="weights as a config's init_cfg names them: torchvision://resnet50 (or resnet50), "
        f"an http(s) URL (default: {DEFAULT_WEIGHTS}, what the R50 configs use)",
    )
    source = fetch.add_mutually_exclusive_group()
    source.add_argument("--url", help="download from this mirror instead of the weights' own URL (one NAME)")
    source.add_argument(
        "--from",
        dest="from_file",
        metavar="FILE",
        help="copy this file, downloaded elsewhere, instead of downloading (one NAME)",
    )
    fetch.add_argument("--overwrite", action="store_true", help="replace a file already in the cache")
    fetch.set_defaults(_main=main_fetch)


def main(args: argparse.Namespace) -> int:  # replaced by the chosen action's main
    raise AssertionError("unreachable: an action is required")


def main_fetch(args: argparse.Namespace) -> int:
    from lcp.models.pretrained import fetch_checkpoint, hub_checkpoint

    if (args.url or args.from_file) and len(args.names) != 1:
        raise LCPError(f"--url and --from take one NAME, not {len(args.names)}")
    for name in args.names:
        checkpoint = hub_checkpoint(name if "://" in name else f"torchvision://{name}")
        if checkpoint is None:
            raise LCPError(f"{name}: not weights from torch's hub cache; give torchvision://NAME or an http(s) URL")
        path, written = fetch_checkpoint(checkpoint, url=args.url, from_file=args.from_file, overwrite=args.overwrite)
        state = "written" if written else "already there (--overwrite replaces it)"
        print(f"{checkpoint.name}: {path} {state}", file=sys.stdout)
    return 0
