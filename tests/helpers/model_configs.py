"""Model configs and batches shared by the tests of lcp.models (tests/models/test_model_*.py).

Configs derive from mmdet's own Cascade R-CNN R50-FPN config (shipped inside the mmdet
package), so the tests compare against mmdet itself; init_cfg=None everywhere: no downloads.
"""

from __future__ import annotations

import copy
import os

import torch

import lcp.models  # noqa: F401  registers the LCP components

CASCADE_R50_FPN = os.path.join("_base_", "models", "cascade_rcnn_r50_fpn.py")


def mmdet_cascade_r50_cfg():
    """mmdet's CascadeRCNN R50-FPN model config (an mmcv ConfigDict), without pretrained init."""
    import mmdet
    from mmcv import Config

    path = os.path.join(os.path.dirname(mmdet.__file__), ".mim", "configs", CASCADE_R50_FPN)
    model = Config.fromfile(path).model
    model.backbone.init_cfg = None
    return model


def to_lcp(model_cfg, kl_loss_weight=1.0):
    """The LCPDetector counterpart of an mmdet CascadeRCNN config."""
    cfg = copy.deepcopy(model_cfg)
    cfg.type = "LCPDetector"
    cfg.backbone.type = "LCPResNet"
    cfg.crux_learner = dict(type="CruxLearner", in_channels=3, mid_channels=16, num_blocks=3, k=10, mask_thr=0.5)
    cfg.kl_loss_weight = kl_loss_weight
    return cfg


def tiny_lcp_cfg(depth=18, base_channels=8, num_classes=2, kl_loss_weight=1.0, frozen_stages=1):
    """A small LCPDetector (ResNet-18 with 8 base channels, 16-channel FPN) for CPU tests."""
    cfg = to_lcp(mmdet_cascade_r50_cfg(), kl_loss_weight)
    expansion = 4 if depth >= 50 else 1
    stage_channels = [base_channels * expansion * 2**i for i in range(4)]
    cfg.backbone.update(depth=depth, base_channels=base_channels, frozen_stages=frozen_stages)
    cfg.neck.update(in_channels=stage_channels, out_channels=16)
    cfg.rpn_head.update(in_channels=16, feat_channels=16)
    cfg.roi_head.bbox_roi_extractor.out_channels = 16
    for head in cfg.roi_head.bbox_head:
        head.update(in_channels=16, fc_out_channels=32, num_classes=num_classes)
    cfg.train_cfg.rpn.sampler.num = 64
    cfg.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=100)
    for stage in cfg.train_cfg.rcnn:
        stage.sampler.num = 32
    cfg.test_cfg.rpn.update(nms_pre=100, max_per_img=50)
    return cfg


def build(cfg):
    from mmdet.models import build_detector

    return build_detector(cfg)


def randomize_bn_statistics(model, seed=0):
    """Give BatchNorm layers non-trivial running statistics so function comparisons mean something."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.copy_(0.1 * torch.randn(module.running_mean.shape, generator=generator))
            module.running_var.copy_(0.5 + torch.rand(module.running_var.shape, generator=generator))
            module.weight.data.copy_(1 + 0.1 * torch.randn(module.weight.shape, generator=generator))
            module.bias.data.copy_(0.1 * torch.randn(module.bias.shape, generator=generator))


def batch(num_images=2, height=64, width=64, num_boxes=3, num_classes=2, seed=0):
    """A training batch in the layout mmdet's data pipeline produces, plus the paired img_df."""
    generator = torch.Generator().manual_seed(seed)
    img = torch.randn(num_images, 3, height, width, generator=generator)
    img_df = torch.randn(num_images, 3, height, width, generator=generator)
    metas, boxes, labels = [], [], []
    for _ in range(num_images):
        metas.append(
            dict(
                img_shape=(height, width, 3),
                ori_shape=(height, width, 3),
                pad_shape=(height, width, 3),
                batch_input_shape=(height, width),
                scale_factor=torch.ones(4).numpy(),
                flip=False,
            )
        )
        xy = torch.rand(num_boxes, 2, generator=generator) * torch.tensor([width * 0.6, height * 0.6])
        wh = 8 + torch.rand(num_boxes, 2, generator=generator) * torch.tensor([width * 0.35, height * 0.35])
        boxes.append(torch.cat([xy, xy + wh], dim=1))
        labels.append(torch.randint(0, num_classes, (num_boxes,), generator=generator))
    return dict(img=img, img_metas=metas, gt_bboxes=boxes, gt_labels=labels, img_df=img_df)


def batch_on(device, data):
    """`data` (a batch()) with its tensors moved to `device`; img_metas stays as it is."""
    moved = dict(data)
    for key in ("img", "img_df"):
        moved[key] = data[key].to(device)
    for key in ("gt_bboxes", "gt_labels"):
        moved[key] = [t.to(device) for t in data[key]]
    return moved
