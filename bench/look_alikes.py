"""Does a crux mask that has a job get learnt? Look-alike distractors told apart by colour alone.

The crux learner is the one trainable part of LCP that sees pixels (the stem to layer2 stay
frozen in crux mode, as in the baseline), and its 1x1 convolutions can compute a colour. This
builds a demo scene where a colour gate has a job: the objects are warm (red high, blue low),
and each image also holds 1-3 unannotated look-alikes, the same shapes and sizes in cool
colours (blue high, red low). Fog adds the same airlight to every channel, so the sign of
red - blue survives it. A crux learner that marked the warm shapes would hand the crux branch
the objects without their look-alikes; this measures whether such a mask helps, and whether
training finds it.

    python bench/look_alikes.py data W/demo [--seed 0] [--num-images 160] [--look-alikes 3]
        the scene, in the demo's layout (then: bench/bench_demo_seeds.py --work W ...)
    python bench/look_alikes.py start PRETRAINED OUT.pth [--open]
        an LCP start whose crux learner is a hand-set colour gate (mask ~1 where red - blue of
        the normalised image is above 0.5, ~0 elsewhere), or with --open a mask of 1 on every
        pixel; train from it with bench/bench_demo_seeds.py --lcp-start OUT.pth, and with
        --lcp-option crux_lr_mult=0 to keep the mask as set
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RED, BLUE = 2, 0  # channels of the scene's BGR canvas; the network sees RGB


def colour(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A warm colour for an object, a cool one for a look-alike (BGR, 0..1)."""
    value = rng.uniform(0.0, 1.0, 3)
    high, low = (RED, BLUE) if kind == "object" else (BLUE, RED)
    value[high] = rng.uniform(0.75, 1.0)
    value[low] = rng.uniform(0.0, 0.3)
    return value


def render_with_look_alikes(look_alikes: int):
    """lcp.data.shapes_scene.render_scene with warm objects and 1..look_alikes cool look-alikes,
    drawn in a shuffled order, none overlapping another shape by more than the scene's IoU."""
    from lcp.data import shapes_scene as scene

    def render(size: int, rng: np.random.Generator):
        horizon = float(rng.uniform(*scene.HORIZON_RANGE))
        depth = scene.ground_plane_depth(size, size, scene.NEAR_M, scene.FAR_M, horizon)
        canvas = scene._background(size, horizon, rng)
        horizon_row = horizon * (size - 1)
        lowest_far_row = horizon_row + scene.NEAR_M * (size - 1 - horizon_row) / scene.OBJECT_MAX_DEPTH_M
        objects = int(rng.integers(scene.OBJECTS_PER_IMAGE[0], scene.OBJECTS_PER_IMAGE[1] + 1))
        kinds = ["object"] * objects + ["look-alike"] * int(rng.integers(1, look_alikes + 1))
        rng.shuffle(kinds)
        annotated, boxes = [], []
        for kind in kinds:
            for _attempt in range(30):
                candidate = scene._random_shape(size, lowest_far_row, rng)
                if candidate is None:
                    continue
                category, points = candidate
                coverage = scene._coverage(canvas.shape[:2], points)
                box = scene._box(coverage)
                if box is None or any(scene._iou(box, other) > scene.MAX_BOX_IOU for other in boxes):
                    continue
                scene._draw(canvas, coverage, points, colour(kind, rng), rng)
                bottom = min(size - 1, int(math.ceil(box[1] + box[3])))
                scene._draw_mask(depth, points, float(depth[bottom, 0]))
                boxes.append(box)
                if kind == "object":
                    annotated.append(
                        scene.SceneObject(
                            category,
                            [round(v, 2) for v in box],
                            round(scene._polygon_area(points), 2),
                            [round(float(v) + 0.5, 2) for v in points.ravel()],
                        )
                    )
                break
        return scene.Scene(scene._to_uint8(canvas), depth, horizon, annotated)

    return render


def write_start(pretrained: Path, out: Path, open_mask: bool, overwrite: bool) -> None:
    """The pretrained detector plus a crux learner set by hand (LCP's other modules start as usual).

    Each block passes one channel through (1x1 conv, ReLU, the depthwise conv's centre tap, ReLU,
    1x1 conv); the first block's channel is relu(R - B) of the normalised image, so h = relu(R - B)
    and the mask sigmoid(10 (h - 0.5)) is ~1 on warm pixels and ~0.007 elsewhere. --open: h = 1.5
    everywhere, a mask of 1."""
    import torch

    from lcp.errors import LCPError
    from lcp.io import atomic_path
    from lcp.models.checkpoint import _torch_load  # one line for a missing or unreadable file

    checkpoint = _torch_load(str(pretrained))
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise LCPError(f"{pretrained}: not an mmdet checkpoint (no 'state_dict' of weights)")
    state = checkpoint["state_dict"]
    for index, (channels_in, channels_out, kernel) in enumerate(((3, 16, 3), (16, 16, 3), (16, 1, 5))):
        middle = 3 * channels_in
        conv1, conv2 = torch.zeros(middle, channels_in, 1, 1), torch.zeros(middle, 1, kernel, kernel)
        conv3 = torch.zeros(channels_out, middle, 1, 1)
        conv2[0, 0, kernel // 2, kernel // 2] = 1.0
        conv3[0, 0] = 1.0
        if index == 0:
            conv1[0, 0], conv1[0, 2] = 1.0, -1.0  # RGB: red minus blue
        else:
            conv1[0, 0] = 1.0
        prefix = f"crux_learner.h_evaluation.{index}."
        for name, weight in (("conv1", conv1), ("conv2", conv2), ("conv3", conv3)):
            state[prefix + name + ".weight"] = weight
            state[prefix + name + ".bias"] = torch.zeros(weight.shape[0])
    if open_mask:
        state["crux_learner.h_evaluation.2.conv3.weight"].zero_()
        state["crux_learner.h_evaluation.2.conv3.bias"][0] = 1.5
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, overwrite=overwrite, sources=[pretrained]) as tmp:
        torch.save(checkpoint, tmp)
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="the demo scene with warm objects and cool look-alikes")
    data.add_argument("out", type=Path)
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--num-images", type=int, default=160)
    data.add_argument("--look-alikes", type=int, default=3, help="at most this many per image (at least 1)")
    data.add_argument("--overwrite", action="store_true", help="replace an OUT this command wrote")
    start = commands.add_parser("start", help="an LCP start with a hand-set colour gate (or an open mask)")
    start.add_argument("pretrained", type=Path)
    start.add_argument("out", type=Path)
    start.add_argument("--open", action="store_true", help="a mask of 1 on every pixel instead of the gate")
    start.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from lcp.errors import LCPError

    try:
        if args.command == "data":
            if args.look_alikes < 1:
                parser.error("--look-alikes: at least 1")
            from lcp.data.demo import make_demo

            summary = make_demo(
                args.out,
                seed=args.seed,
                num_images=args.num_images,
                overwrite=args.overwrite,
                progress=False,
                render=render_with_look_alikes(args.look_alikes),
            )
            print(f"{args.out}: {summary['counts']['images']} images, {summary['counts']['objects']} objects")
        else:
            write_start(args.pretrained, args.out, args.open, args.overwrite)
    except LCPError as error:
        sys.exit(f"bench/look_alikes.py: {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
