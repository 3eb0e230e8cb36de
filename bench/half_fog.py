"""Does a degradation confined to part of each image make the crux mask spatial?

The crux learner can only mark regions if keeping the crux branch's content helps in some
regions and hurts in others. This builds the cleanest such case from a demo scene: each image
fogged on one half only (left or right, fixed by the image's name) and clear on the other,
then measures whether a trained LCP's mask differs between the two halves.

    python bench/half_fog.py data data/demo half/demo --beta 0.06
        copy of the demo scene (clean images, annotations) with lowq/ fogged on one half,
        synthesised by `lcp data synth fog` from the scene's depth maps; half/demo/halves.json
        names each image's fogged half
    python bench/half_fog.py start config/mmdet/lcp_tiny_demo.py PRETRAINED START.pth --mask-start 0.9
        an LCP start checkpoint from a plain pretrained detector: `start_as_pretrained`, the
        catch-up learner's residual started at zero, the mask started at --mask-start (train
        from it with bench/bench_demo_seeds.py --lcp-start START.pth)
    python bench/half_fog.py masks CONFIG CHECKPOINT half/demo
        mean mask on the fogged and on the clear halves of the test images

`bench/crux_gradient.py --halves half/demo/halves.json` splits the loss's gradient the same way.
Every command takes --option KEY=VALUE (--cfg-options) where it reads a config.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HALVES = "halves.json"
CLEAR_DEPTH_M = 0.01  # lcp data synth reads depth 0 as "unknown" and fills it as far away


def read_halves(path: Path) -> dict[str, str]:
    """halves.json as `data` wrote it (image stem -> fogged half); one line and exit if it is not."""
    try:
        halves = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        sys.exit(f"{path}: not a halves.json of `bench/half_fog.py data` ({error})")
    if not isinstance(halves, dict) or not set(halves.values()) <= {"left", "right"}:
        sys.exit(f"{path}: not a halves.json of `bench/half_fog.py data` (image stem -> left or right)")
    return halves


def half_of(halves: dict[str, str], file_name: str, path: Path) -> str:
    """The fogged half of a synthesised image (<stem>_foggy_....jpg)."""
    stem = Path(file_name).name.split("_foggy")[0]
    if stem not in halves:
        sys.exit(f"{path}: has no entry for {stem} ({file_name}); was the scene made by `half_fog.py data`?")
    return halves[stem]


def fogged_half(stem: str) -> str:
    return "left" if zlib.crc32(stem.encode()) % 2 == 0 else "right"


def half_mask(shape: tuple[int, int], half: str, flipped: bool = False):
    """Boolean (H, W) map of the fogged half; `flipped` for an image mirrored left-right."""
    import numpy as np

    fogged = np.zeros(shape, dtype=bool)
    width = shape[1]
    if (half == "left") != flipped:
        fogged[:, : width // 2] = True
    else:
        fogged[:, width // 2 :] = True
    return fogged


def make_data(demo: Path, out: Path, beta: float, seed: int, overwrite: bool) -> None:
    """Write the half-fog scene to `out`, which appears complete or not at all."""
    import numpy as np
    from PIL import Image

    from lcp.io import atomic_folder

    depths = sorted((demo / "depth").glob("*.png"))
    if not depths or not (demo / "clean").is_dir():
        sys.exit(f"{demo}: no clean/ images with depth/*.png maps; expected a folder of `lcp data demo`")
    with atomic_folder(out, overwrite=overwrite, sources=[demo]) as tmp:
        depth_dir = tmp / "depth"
        depth_dir.mkdir()
        shutil.copytree(demo / "clean", tmp / "clean")
        (tmp / "annotations").mkdir()
        for split in ("train", "test"):
            shutil.copy(demo / "annotations" / f"clean_{split}.json", tmp / "annotations")
        halves = {}
        for path in depths:
            depth = np.asarray(Image.open(path), dtype=np.float64) / 256  # the demo's 16-bit metres * 256
            halves[path.stem] = fogged_half(path.stem)
            fogged = half_mask(depth.shape, halves[path.stem])
            np.save(depth_dir / f"{path.stem}.npy", np.where(fogged, depth, CLEAR_DEPTH_M))
        (tmp / HALVES).write_text(json.dumps(halves, indent=1))
        lcp = str(Path(sys.executable).parent / "lcp")
        command = [lcp, "data", "synth", "fog", "--src", str(tmp / "clean"), "--out", str(tmp / "lowq")]
        command += ["--depth-dir", str(depth_dir), "--beta", str(beta), "--seed", str(seed), "--no-progress"]
        for split in ("train", "test"):
            command += ["--ann", str(tmp / "annotations" / f"clean_{split}.json")]
            command += ["--ann-out", str(tmp / "annotations" / f"lowq_{split}.json")]
        if subprocess.run(command, check=False).returncode != 0:
            sys.exit(f"{out}: lcp data synth failed (its message is above); nothing was written")


def load(config: str, options: list[str]):
    import lcp.models  # noqa: F401  registers LCP's modules
    from lcp.apis.config import load_config
    from lcp.apis.options import parse_cfg_options

    return load_config(config, parse_cfg_options(options))


def make_start(
    config: str, pretrained: str, out: Path, mask_start: float, seed: int, options: list[str], overwrite: bool
) -> None:
    import torch
    from mmcv.runner import load_checkpoint, save_checkpoint
    from mmdet.models import build_detector

    from lcp.io import atomic_path

    if not 0 < mask_start < 1:
        sys.exit(f"--mask-start {mask_start}: must be inside (0, 1)")
    if not Path(pretrained).is_file():
        sys.exit(f"{pretrained}: no such checkpoint")
    cfg = load(config, options)
    logging.getLogger("mmcv").setLevel(logging.WARNING)  # init_weights' report of every parameter
    cfg.model.start_as_pretrained = True
    torch.manual_seed(seed)  # the crux learner's and the catch-up learner's random weights
    model = build_detector(cfg.model)
    model.init_weights()
    quiet = logging.getLogger("half_fog")  # a plain checkpoint lacks LCP's keys: expected
    quiet.setLevel(logging.ERROR)
    load_checkpoint(model, pretrained, map_location="cpu", strict=False, logger=quiet)
    crux = model.crux_learner
    with torch.no_grad():
        residual = model.backbone.catch_up_learner.layers.conv3
        residual.weight.zero_()
        residual.bias.zero_()
        crux.h_evaluation[-1].conv3.bias.fill_(crux.mask_thr + math.log(mask_start / (1 - mask_start)) / crux.k)
    with atomic_path(out, overwrite=overwrite, sources=[config, pretrained]) as tmp:
        save_checkpoint(model, str(tmp))
    print(f"{out}: {pretrained} with LCP's modules started as the pretrained detector, mask bias set for {mask_start}")


def region_masks(config: str, checkpoint: str, data: Path, options: list[str]) -> None:
    import numpy as np

    from lcp.apis.inference import build_test_model
    from lcp.report.test_set import test_set_with
    from lcp.tracking.heatmaps import crux_masks

    halves = read_halves(data / HALVES)
    cfg = load(config, [f"data_root={data}/", *options])
    dataset = test_set_with(cfg, 1, config, "one image")
    model = build_test_model(cfg, checkpoint).eval()
    fog, clear = [], []
    for name, _, mask, _ in crux_masks(model, dataset, len(dataset)):
        fogged = half_mask(mask.shape, half_of(halves, name, data / HALVES))
        fog.append(float(mask[fogged].mean()))
        clear.append(float(mask[~fogged].mean()))
    difference = np.array(fog) - np.array(clear)
    print(
        f"{checkpoint} on {len(fog)} test images: mask on the fogged half {np.mean(fog):.4f}, "
        f"on the clear half {np.mean(clear):.4f}, "
        f"per image fogged - clear {difference.mean():+.4f} ± {difference.std():.4f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="a demo scene fogged on one half of each image")
    data.add_argument("demo", type=Path, help="a demo scene folder (lcp data demo)")
    data.add_argument("out", type=Path)
    data.add_argument("--beta", type=float, default=0.06)
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--overwrite", action="store_true", help="replace an OUT this command wrote")
    start = commands.add_parser("start", help="an LCP start checkpoint from a plain pretrained detector")
    start.add_argument("config")
    start.add_argument("pretrained")
    start.add_argument("out", type=Path)
    start.add_argument("--mask-start", type=float, default=0.9, help="the mask's level (its weights move it a little)")
    start.add_argument("--seed", type=int, default=0, help="seed of the modules' random weights")
    start.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    masks = commands.add_parser("masks", help="mean mask on the fogged and the clear halves")
    masks.add_argument("config")
    masks.add_argument("checkpoint")
    masks.add_argument("data", type=Path, help="the folder `data` wrote")
    for command in (start, masks):
        command.add_argument("--option", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from lcp.errors import LCPError

    try:
        if args.command == "data":
            make_data(args.demo, args.out, args.beta, args.seed, args.overwrite)
        elif args.command == "start":
            make_start(args.config, args.pretrained, args.out, args.mask_start, args.seed, args.option, args.overwrite)
        else:
            region_masks(args.config, args.checkpoint, args.data, args.option)
    except LCPError as error:  # a bad config, an output that exists, ...: one line
        sys.exit(str(error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
