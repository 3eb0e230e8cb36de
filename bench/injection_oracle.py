"""How much could LCP give this detector here? AP with layer3's input replaced, before any LCP training.

LCP's catch-up branch reaches detection through one place: the fusion that feeds layer3 (C3
itself still goes to the FPN unchanged). This runs a plain pretrained detector (mmdet ResNet
backbone) on a synthesised low-quality test set and replaces layer3's input by
  - `clean`: layer2's output on the image's clean original (read from the synthesis record
    that `lcp data synth` writes beside the low-quality images): what a perfect catch-up
    learner could deliver at that point;
  - `constant`: layer2's output averaged over the image: what is left when the branch carries
    no content at all (a collapsed crux mask).
Beside them: the unchanged detector on the low-quality images (`degraded`) and on the clean
originals (`all clean`, the bound of any restoration). If `clean` is not above `degraded`,
no catch-up learner can help this detector, whatever the crux learner marks.

Given an LCP checkpoint, `degraded` is the LCP detector as it is, and two kinds of variants
say what its crux branch carries. At the fusion's input (the 1x1 conv over [C3, branch] that
feeds layer3, trained with the branch), the branch half is replaced: `branch zero`, `branch
constant` (its spatial mean), `branch unmasked` (the raw image through the branch: a mask of
1 everywhere). With the fusion bypassed (layer3's input replaced as for the plain detector,
so the trained fusion's own transform of C3 is lost too): `bypass: layer2` (the raw image's
layer2 output) and `bypass: catch-up` (with the catch-up learner's residual), to compare with
each other, not with `degraded`; `clean` and `constant` bypass the fusion as well.

    python bench/injection_oracle.py config/mmdet/cascade_rcnn_tiny_demo.py \
        results/demo/pretrain/latest.pth --option data_root=data/ \
        --option test_img_dir=demo/lowq/ --option test_ann=demo/annotations/lowq_test.json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("degraded", "clean", "constant", "all clean")
LCP_VARIANTS = ("branch zero", "branch constant", "branch unmasked", "bypass: layer2", "bypass: catch-up")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="the plain detector's mmdet config")
    parser.add_argument("checkpoint", help="the plain detector's checkpoint (e.g. the scene's pretrained one)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="--cfg-options")
    parser.add_argument("--json", type=Path, help="also write each variant's AP and summed detection score here")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))

    from lcp.deferred_imports import import_mmdet

    import_mmdet()
    import torch
    from mmcv.parallel import MMDataParallel
    from mmcv.runner import load_checkpoint
    from mmdet.datasets import build_dataloader, build_dataset
    from mmdet.models import build_detector

    import lcp.models  # noqa: F401  registers the project's heads
    from lcp.apis.config import load_config
    from lcp.apis.options import parse_cfg_options
    from lcp.apis.streams import annotation_loading_unprinted

    cfg = load_config(args.config, parse_cfg_options(args.option))
    with annotation_loading_unprinted():
        dataset = build_dataset(cfg.data.test, dict(test_mode=True))
    record_file = Path(dataset.img_prefix) / "synthesis.json"
    try:
        record = json.loads(record_file.read_text())
        unrecorded = [info["filename"] for info in dataset.data_infos if info["filename"] not in record["images"]]
    except (OSError, ValueError, KeyError) as exc:
        print(f"{record_file}: needs the synthesis record `lcp data synth` writes beside the images ({exc})")
        return 2
    if unrecorded:
        print(f"{record_file}: {unrecorded[0]} has no recorded clean source ({len(unrecorded)} test images)")
        return 2
    clean_dir = (record_file.parent / record["source_dir"]).resolve()
    model = build_detector(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location="cpu", logger=logging.getLogger("injection_oracle"))
    model.eval()
    backbone = model.backbone
    batch = {}

    pipeline = dataset.pipeline  # the test set's own loading, resizing, normalising and padding

    def clean_images(img_metas) -> torch.Tensor:
        sources = [record["images"][meta["ori_filename"]]["source"] for meta in img_metas]
        prepared = [pipeline(dict(img_info=dict(filename=source), img_prefix=str(clean_dir))) for source in sources]
        return torch.stack([sample["img"][0].data for sample in prepared])

    lcp = hasattr(backbone, "catch_up_learner")

    def layer2_output(img: torch.Tensor, catch_up: bool = False) -> torch.Tensor:
        if lcp:
            return backbone.shallow(img, catch_up=catch_up)[1]
        x = backbone.maxpool(backbone.relu(backbone.norm1(backbone.conv1(img))))
        return backbone.layer2(backbone.layer1(x))

    def replace_input(module, inputs):
        variant = batch["variant"]
        if variant == "clean":
            return (layer2_output(clean_images(batch["img_metas"])),)
        if variant == "constant":
            return (inputs[0].mean(dim=(2, 3), keepdim=True).expand_as(inputs[0]).contiguous(),)
        if variant == "bypass: layer2":
            return (layer2_output(batch["img"]),)
        if variant == "bypass: catch-up":
            return (layer2_output(batch["img"], catch_up=True),)
        return None

    def replace_branch(module, inputs):
        """The fusion's input is [C3, branch] on channels: replace the branch half."""
        variant = batch["variant"]
        if not variant.startswith("branch "):
            return None
        c3, branch = inputs[0].chunk(2, dim=1)
        if variant == "branch zero":
            branch = torch.zeros_like(branch)
        elif variant == "branch constant":
            branch = branch.mean(dim=(2, 3), keepdim=True).expand_as(branch)
        else:  # unmasked
            branch = layer2_output(batch["img"], catch_up=True)
        return (torch.cat([c3, branch], dim=1),)

    backbone.layer3.register_forward_pre_hook(replace_input)
    if lcp:
        backbone.catch_up_fusion.register_forward_pre_hook(replace_branch)
    simple_test = model.simple_test

    def recording_test(img, img_metas, **kwargs):
        batch["img"], batch["img_metas"] = img, img_metas
        if batch["variant"] == "all clean":
            img = clean_images(img_metas)
        return simple_test(img, img_metas, **kwargs)

    model.simple_test = recording_test
    loader = build_dataloader(dataset, 1, 0, dist=False, shuffle=False)
    detector = MMDataParallel(model)
    print(f"{args.checkpoint} on {dataset.img_prefix} ({len(dataset)} images), COCO bbox AP:")
    measured = {}
    for variant in VARIANTS + (LCP_VARIANTS if lcp else ()):
        batch["variant"] = variant
        with torch.no_grad():
            results = [result for data in loader for result in detector(return_loss=False, rescale=True, **data)]
        with contextlib.redirect_stdout(io.StringIO()):  # COCO's tables
            ap = dataset.evaluate(results, metric="bbox", logger="silent")["bbox_mAP"]
        print(f"  {variant:16} {100 * ap:5.1f}")
        score = sum(float(boxes[:, 4].sum()) for result in results for boxes in result)
        measured[variant] = {"ap": ap, "score_sum": score}
    if args.json:
        args.json.write_text(json.dumps(measured, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
