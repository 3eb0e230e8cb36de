"""Speed of LCPDetector R50-FPN against mmdet's plain Cascade R-CNN R50-FPN on one GPU.

Builds both from mmdet's own Cascade R-CNN R50-FPN config (random weights), feeds batches of
random 800x1344 images (the configs' 1333x800 resize padded to 32) with a few boxes, and
prints images/s for a training step (forward, backward, SGD step) in each LCP mode and for
inference, in fp32 and with mmcv's wrap_fp16_model, with the LCP/plain ratio.

    .venv/bin/python bench/bench_lcp_model.py [--batch 2] [--iters 10] [--warmup 3]

Measured once on an H100 (torch 2.11, mmcv-full 1.7.2 CUDA build), batch 2, 10 iterations,
img/s plain / LCP (ratio): fp32 train catch-up mode 14.7 / 50.7 (3.44), crux mode 14.7 / 11.4
(0.78), test 36.7 / 33.2 (0.90); fp16 train catch-up 13.0 / 67.0, crux 13.0 / 10.8 (0.83),
test 37.9 / 33.6 (0.89). Catch-up steps skip the heads and train four convs only.
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import torch


def model_cfgs():
    import mmdet
    from mmcv import Config

    path = os.path.join(os.path.dirname(mmdet.__file__), ".mim", "configs", "_base_", "models",
                        "cascade_rcnn_r50_fpn.py")
    plain = Config.fromfile(path).model
    plain.backbone.init_cfg = None
    plain.roi_head.bbox_head = [dict(head, num_classes=8) for head in plain.roi_head.bbox_head]
    lcp = copy.deepcopy(plain)
    lcp.type = "LCPDetector"
    lcp.backbone.type = "LCPResNet"
    lcp.crux_learner = dict(type="CruxLearner")
    return plain, lcp


def make_batch(batch_size, height, width, device, seed=0):
    generator = torch.Generator().manual_seed(seed)
    metas, boxes, labels = [], [], []
    for _ in range(batch_size):
        metas.append(dict(img_shape=(height, width, 3), ori_shape=(height, width, 3), pad_shape=(height, width, 3),
                          batch_input_shape=(height, width), scale_factor=torch.ones(4).numpy(), flip=False))
        xy = torch.rand(6, 2, generator=generator) * torch.tensor([width * 0.7, height * 0.7])
        wh = 32 + torch.rand(6, 2, generator=generator) * torch.tensor([width * 0.25, height * 0.25])
        boxes.append(torch.cat([xy, xy + wh], 1).to(device))
        labels.append(torch.randint(0, 8, (6,), generator=generator).to(device))
    img = torch.randn(batch_size, 3, height, width, generator=generator).to(device)
    img_df = torch.randn(batch_size, 3, height, width, generator=generator).to(device)
    return dict(img=img, img_metas=metas, gt_bboxes=boxes, gt_labels=labels, img_df=img_df)


def timed(step, warmup, iters):
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters


def measure(cfg, mode, fp16, data, args):
    from mmcv.runner import build_optimizer, wrap_fp16_model
    from mmdet.models import build_detector

    import lcp.models  # noqa: F401

    torch.manual_seed(0)
    model = build_detector(cfg).cuda()
    if fp16:
        wrap_fp16_model(model)
    if mode == "test":
        model.eval()
        test_data = dict(img=[data["img"]], img_metas=[data["img_metas"]])

        def step():
            with torch.no_grad():
                model(**test_data, return_loss=False, rescale=True)
    else:
        if mode != "plain":
            model.set_train_mode(mode)
        model.train()
        optimizer = build_optimizer(model, dict(type="SGD", lr=1e-4, momentum=0.9, weight_decay=1e-4))
        scaler = torch.cuda.amp.GradScaler(enabled=fp16)
        train_data = data if mode != "plain" else {k: v for k, v in data.items() if k != "img_df"}

        def step():
            optimizer.zero_grad()
            loss, _ = model._parse_losses(model(**train_data, return_loss=True))
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
    seconds = timed(step, args.warmup, args.iters)
    del model
    torch.cuda.empty_cache()
    return args.batch / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--height", type=int, default=800)
    parser.add_argument("--width", type=int, default=1344)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_lcp_model: needs a CUDA GPU")
    torch.backends.cudnn.benchmark = True
    plain_cfg, lcp_cfg = model_cfgs()
    data = make_batch(args.batch, args.height, args.width, "cuda")
    print(f"{torch.cuda.get_device_name()}, batch {args.batch} x {args.height}x{args.width}, "
          f"{args.iters} timed iterations after {args.warmup}")
    print(f"{'precision':9} {'step':22} {'plain img/s':>11} {'LCP img/s':>10} {'LCP/plain':>9}")
    for fp16 in (False, True):
        precision = "fp16" if fp16 else "fp32"
        plain_train = measure(plain_cfg, "plain", fp16, data, args)
        for mode in ("catch_up_learner", "crux_learner"):
            speed = measure(lcp_cfg, mode, fp16, data, args)
            print(f"{precision:9} {'train ' + mode:22} {plain_train:11.1f} {speed:10.1f} {speed / plain_train:9.2f}")
        plain_test = measure(plain_cfg, "test", fp16, data, args)
        lcp_test = measure(lcp_cfg, "test", fp16, data, args)
        print(f"{precision:9} {'test':22} {plain_test:11.1f} {lcp_test:10.1f} {lcp_test / plain_test:9.2f}")


if __name__ == "__main__":
    main()
