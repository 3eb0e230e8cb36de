"""LCP's computed function against a straightforward re-implementation from plain torch ops.

The re-implementation reads the weights from state dicts and uses mmdet's plain ResNet for
the stem and the residual stages, so only mmdet itself is shared with lcp.models.
"""

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models import build_backbone

from helpers.model_configs import batch, build, randomize_bn_statistics, tiny_lcp_cfg


def sub_state(state, prefix):
    return {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}


def reference_crux(crux_state, img, k=10.0, thr=0.5):
    """Blocks of 1x1 conv, ReLU, depthwise conv, ReLU, 1x1 conv; mask sigmoid(k(h - thr))."""
    x = img
    for i in range(3):
        w = sub_state(crux_state, f"h_evaluation.{i}.")
        x = F.relu(F.conv2d(x, w["conv1.weight"], w["conv1.bias"]))
        depthwise = w["conv2.weight"]
        x = F.relu(F.conv2d(x, depthwise, w["conv2.bias"], padding=depthwise.shape[-1] // 2, groups=depthwise.shape[0]))
        x = F.conv2d(x, w["conv3.weight"], w["conv3.bias"])
    return img * torch.sigmoid(k * (x - thr))


def reference_catch_up(catch_up_state, c2):
    """max-pool 2x2 (odd maps padded with -inf), conv, ReLU, conv, conv: one ReLU only."""
    w = sub_state(catch_up_state, "layers.")
    x = F.pad(c2, (0, c2.shape[-1] % 2, 0, c2.shape[-2] % 2), value=float("-inf"))
    x = F.max_pool2d(x, 2, 2)
    x = F.relu(F.conv2d(x, w["conv1.weight"], w["conv1.bias"], padding=1))
    x = F.conv2d(x, w["conv2.weight"], w["conv2.bias"], padding=1)
    return F.conv2d(x, w["conv3.weight"], w["conv3.bias"], padding=1)


class ReferenceLCPBackbone:
    """Plain mmdet ResNet with the LCP backbone's weights plus the LCP-only parts written out."""

    def __init__(self, lcp_backbone_cfg, lcp_backbone):
        cfg = copy.deepcopy(lcp_backbone_cfg)
        cfg.type = "ResNet"
        self.resnet = build_backbone(cfg)
        state = lcp_backbone.state_dict()
        result = self.resnet.load_state_dict(state, strict=False)
        assert result.missing_keys == []
        assert {key.split(".")[0] for key in result.unexpected_keys} == {"catch_up_learner", "catch_up_fusion"}
        self.catch_up_state = sub_state(state, "catch_up_learner.")
        self.fusion_weight, self.fusion_bias = state["catch_up_fusion.weight"], state["catch_up_fusion.bias"]
        self.resnet.eval()

    def shallow(self, x, catch_up):
        c2, c3 = self.resnet(x)[:2]
        return c2, (c3 + reference_catch_up(self.catch_up_state, c2) if catch_up else c3)

    def __call__(self, img, crux):
        c2, c3 = self.shallow(img, catch_up=False)
        _, catch = self.shallow(crux, catch_up=True)
        c4 = self.resnet.layer3(F.conv2d(torch.cat([c3, catch], dim=1), self.fusion_weight, self.fusion_bias))
        return c2, c3, c4, self.resnet.layer4(c4)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    cfg = tiny_lcp_cfg(kl_loss_weight=100.0)
    model = build(cfg)
    randomize_bn_statistics(model)
    model.eval()
    return cfg, model, ReferenceLCPBackbone(cfg.backbone, model.backbone)


def test_crux_learner_matches_reference(tiny):
    _, model, _ = tiny
    img = batch(height=48, width=40)["img"]
    with torch.no_grad():
        expected = reference_crux(model.crux_learner.state_dict(), img)
        torch.testing.assert_close(model.crux_learner(img), expected)
        mask = model.crux_learner.mask(img)
    assert mask.shape == (2, 1, 48, 40) and 0 <= mask.min() and mask.max() <= 1
    torch.testing.assert_close(img * mask, expected)


def test_catch_up_learner_has_exactly_one_relu(tiny):
    _, model, _ = tiny
    layers = model.backbone.catch_up_learner.layers
    assert [(name, type(module)) for name, module in layers.named_children()] == [
        ("pooling", nn.MaxPool2d),
        ("conv1", nn.Conv2d),
        ("relu", nn.ReLU),
        ("conv2", nn.Conv2d),
        ("conv3", nn.Conv2d),
    ]


@pytest.mark.parametrize("height,width", [(64, 96), (97, 131), (100, 100), (64, 66)])
def test_backbone_matches_reference_at_any_size(tiny, height, width):
    _, model, reference = tiny
    img = batch(height=height, width=width)["img"]
    with torch.no_grad():
        crux = model.crux_learner(img)
        outputs = model.backbone(img, crux)
        expected = reference(img, crux)
        plain_shapes = [out.shape for out in reference.resnet(img)]
    assert [out.shape for out in outputs] == plain_shapes
    for out, ref in zip(outputs, expected, strict=True):
        torch.testing.assert_close(out, ref)


def test_detector_features_and_kl_loss_match_reference(tiny):
    _, model, reference = tiny
    data = batch(height=64, width=64)
    img, img_df = data["img"], data["img_df"]
    crux_state = model.crux_learner.state_dict()
    with torch.no_grad():
        crux = reference_crux(crux_state, img)
        for out, ref in zip(model.extract_feat(img), model.neck(reference(img, crux)), strict=True):
            torch.testing.assert_close(out, ref)

        _, catch = reference.shallow(crux, catch_up=True)
        _, df = reference.shallow(reference_crux(crux_state, img_df), catch_up=False)
        log_p_catch = torch.log_softmax(catch.reshape(2, -1).double(), dim=1)
        p_df = torch.softmax(df.reshape(2, -1).double(), dim=1)
        expected_kl = (100.0 * (p_df * (torch.log(p_df) - log_p_catch)).sum() / 2).float()

        model.set_train_mode("catch_up_learner")
        losses = model.forward_train(**data)
    assert list(losses) == ["kl_loss"]
    torch.testing.assert_close(losses["kl_loss"], expected_kl, rtol=1e-5, atol=1e-9)
    assert expected_kl > 0


@pytest.mark.parametrize("size", [(20, 32), (100, 168)], ids=["256x160", "1344x800"])
def test_the_kl_of_nearby_feature_maps_is_exact_at_the_published_size(size):
    """In float32 the log-normalisers' rounding over C*H*W entries exceeded the divergence itself:
    layer2-sized ReLU maps one 1% perturbation apart (5.0e-5) gave 6.4e-7 at 256x160 and 8.4e-4 at
    the published input's 1344x800, and the published URPC model a negative loss."""
    from lcp.models.kl_loss import feature_kl_divergence

    generator = torch.Generator().manual_seed(0)
    df = torch.randn(2, 512, *size, generator=generator).relu()
    catch = df + 0.01 * torch.randn(2, 512, *size, generator=generator)
    log_p = F.log_softmax(df.flatten(1).double(), dim=1)
    log_q = F.log_softmax(catch.flatten(1).double(), dim=1)
    exact = (log_p.exp() * (log_p - log_q)).sum() / 2
    catch.requires_grad_(True)
    kl = feature_kl_divergence(df, catch)
    assert kl.dtype == torch.float32 and kl > 0
    torch.testing.assert_close(kl.double(), exact, rtol=1e-5, atol=0)
    kl.backward()
    exact_grad = (log_q.exp() - log_p.exp()).reshape(catch.shape) / 2  # d KL(p || softmax(x)) / dx
    cosine = F.cosine_similarity(catch.grad.double().flatten(), exact_grad.flatten(), dim=0)
    assert cosine > 1 - 1e-6


@pytest.mark.parametrize("height,width", [(97, 131), (64, 66)])
def test_detector_tests_images_of_odd_size(tiny, height, width):
    _, model, _ = tiny
    data = batch(num_images=1, height=height, width=width)
    with torch.no_grad():
        results = model(img=[data["img"]], img_metas=[data["img_metas"]], return_loss=False)
    assert len(results) == 1 and len(results[0]) == 2  # one image, two classes
    assert all(dets.ndim == 2 and dets.shape[1] == 5 for dets in results[0])


@pytest.mark.parametrize(
    "backbone_cfg,stage_channels",
    [
        (dict(type="LCPResNet", depth=18), (64, 128, 256, 512)),
        (dict(type="LCPResNet", depth=34), (64, 128, 256, 512)),
        (dict(type="LCPResNet", depth=50), (256, 512, 1024, 2048)),
        (dict(type="LCPResNet", depth=101), (256, 512, 1024, 2048)),
        (dict(type="LCPResNeXt", depth=50, groups=32, base_width=4), (256, 512, 1024, 2048)),
    ],
)
def test_every_depth_adapts_the_catch_up_channels(backbone_cfg, stage_channels):
    backbone = build_backbone(dict(backbone_cfg, init_cfg=None))
    backbone.eval()
    c2, c3 = stage_channels[:2]
    assert backbone.catch_up_learner.layers.conv1.weight.shape == (c3, c2, 3, 3)
    assert backbone.catch_up_learner.layers.conv3.weight.shape == (c3, c3, 3, 3)
    assert backbone.catch_up_fusion.weight.shape == (c3, 2 * c3, 1, 1)
    img = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        outputs = backbone(img, img * 0.5)
    assert [tuple(out.shape) for out in outputs] == [
        (1, c, 64 // s, 64 // s) for c, s in zip(stage_channels, (4, 8, 16, 32), strict=True)
    ]


def test_lcp_modules_keep_pytorch_default_init():
    torch.manual_seed(0)
    backbone = build_backbone(dict(type="LCPResNet", depth=18, base_channels=8, init_cfg=None))
    lcp_before = {key: value.clone() for key, value in backbone.state_dict().items() if key.startswith("catch_up_")}
    stem_before = backbone.conv1.weight.clone()
    backbone.init_weights()
    assert not torch.equal(backbone.conv1.weight, stem_before)  # mmdet's Kaiming init ran
    for key, value in lcp_before.items():
        assert torch.equal(backbone.state_dict()[key], value), key
