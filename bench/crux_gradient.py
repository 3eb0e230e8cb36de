"""Where does the detection loss want the crux mask? dL/dm per pixel, inside vs outside the boxes.

Runs an LCP checkpoint in crux mode on training batches (no optimiser step) and records the
gradient of the detection loss with respect to every mask pixel. Prints, for the pixels inside
ground-truth boxes and for the others: the mean gradient, its mean magnitude and the share of
pixels whose gradient is negative (the loss falls if the mask rises there), then how many boxes
have a negative sum. A crux learner can only learn to mark regions whose gradient has a
consistent sign.

    python bench/crux_gradient.py results/demo/lcp/seed0/latest.pth
    python bench/crux_gradient.py results/demo/pretrain/latest.pth --option model.start_as_pretrained=True
    python bench/crux_gradient.py LCP.pth --data-root half/demo/ --halves half/demo/halves.json
        (bench/half_fog.py's scene: also the fogged half of each image against its clear half)
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="an LCP checkpoint, or a plain one (LCP's modules then start fresh)")
    parser.add_argument("--config", default=str(ROOT / "config" / "mmdet" / "lcp_tiny_demo.py"))
    parser.add_argument("--data-root", default=str(ROOT / "data" / "demo") + "/")
    parser.add_argument("--batches", type=int, default=16, help="training batches to measure (default 16)")
    parser.add_argument("--halves", type=Path, help="halves.json of bench/half_fog.py data: split by fogged half")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="extra --cfg-options")
    parser.add_argument(
        "--seed", type=int, default=0, help="seeds the training pipeline's random flips (default 0): each seed one draw"
    )
    args = parser.parse_args(argv)

    from lcp.deferred_imports import import_mmdet

    import_mmdet()
    import torch
    from mmcv.runner import load_checkpoint
    from mmdet.datasets import build_dataloader, build_dataset
    from mmdet.models import build_detector

    sys.path.insert(0, str(ROOT / "bench"))
    from half_fog import half_mask, half_of, read_halves

    import lcp.datasets  # noqa: F401  registers the paired dataset
    import lcp.hooks  # noqa: F401
    import lcp.models  # noqa: F401
    from lcp.apis.config import load_config
    from lcp.apis.options import parse_cfg_options

    cfg = load_config(args.config, {"data_root": args.data_root, **parse_cfg_options(args.option)})
    import random

    import numpy as np

    random.seed(args.seed)
    np.random.seed(args.seed)  # mmdet's RandomFlip draws from numpy's global generator
    torch.manual_seed(args.seed)
    model = build_detector(cfg.model)
    model.init_weights()
    quiet = logging.getLogger("crux_gradient")  # a plain checkpoint lacks LCP's keys: expected
    quiet.setLevel(logging.ERROR)
    load_checkpoint(model, args.checkpoint, map_location="cpu", strict=False, logger=quiet)
    model.set_train_mode("crux_learner")
    model.train()
    dataset = build_dataset(cfg.data.train)
    dataset.set_epoch(0)
    loader = build_dataloader(dataset, 2, 0, dist=False, shuffle=False, seed=0)

    masks = []
    crux_learner = model.crux_learner

    def masked(img):  # the crux learner's forward, keeping the mask's gradient
        mask = crux_learner.mask(img)
        mask.retain_grad()
        masks.append(mask)
        return img * mask

    crux_learner.forward = masked
    inside, outside, spatial_std, box_sums = [], [], [], []
    halves = read_halves(args.halves) if args.halves else None
    fogged_values, clear_values, half_sums = [], [], []
    for index, data in enumerate(loader):
        if index == args.batches:
            break
        masks.clear()
        gt_bboxes = data["gt_bboxes"].data[0]
        losses = model.forward_train(
            data["img"].data[0],
            data["img_metas"].data[0],
            gt_bboxes,
            data["gt_labels"].data[0],
            img_df=data["img_df"].data[0],
        )
        loss, _ = model._parse_losses(losses)
        model.zero_grad()
        loss.backward()
        mask = masks[-1]
        for image, meta in enumerate(data["img_metas"].data[0] if halves else []):
            height, width = meta["img_shape"][:2]
            gradient = mask.grad[image, 0, :height, :width]
            half = half_of(halves, meta["ori_filename"], args.halves)
            fogged = torch.from_numpy(half_mask((height, width), half, flipped=bool(meta.get("flip"))))
            fogged_values.append(gradient[fogged])
            clear_values.append(gradient[~fogged])
            half_sums.append((float(fogged_values[-1].sum()), float(clear_values[-1].sum())))
        for image, boxes in enumerate(gt_bboxes):
            in_box = torch.zeros(mask.shape[-2:], dtype=torch.bool)
            gradient = mask.grad[image, 0]
            for x1, y1, x2, y2 in boxes.round().long().tolist():
                in_box[y1:y2, x1:x2] = True
                box_sums.append(float(gradient[y1:y2, x1:x2].sum()))
            inside.append(gradient[in_box])
            outside.append(gradient[~in_box])
            spatial_std.append(float(mask[image, 0].detach().std()))
    mean_mask = float(torch.cat([m.detach().flatten() for m in masks]).mean())
    print(
        f"{args.checkpoint}: mask {mean_mask:.4f} (last batch), spatial std {sum(spatial_std) / len(spatial_std):.4f}"
    )
    regions = [("inside boxes", torch.cat(inside)), ("outside", torch.cat(outside))]
    if halves:
        regions += [("fogged half", torch.cat(fogged_values)), ("clear half", torch.cat(clear_values))]
    for name, values in regions:
        print(
            f"  dL/dm {name:12}: mean {float(values.mean()):+.2e}  mean |.| {float(values.abs().mean()):.2e}"
            f"  negative {float((values < 0).float().mean()):.0%}  pixels {values.numel()}"
        )
    negative = sum(total < 0 for total in box_sums)
    print(f"  dL/dm summed over each box: negative for {negative} of {len(box_sums)} boxes")
    if halves:
        lower = sum(fogged < clear for fogged, clear in half_sums)
        print(f"  per image, the fogged half's sum below the clear half's in {lower} of {len(half_sums)} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
