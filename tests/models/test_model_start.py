"""LCPDetector's opt-in start_as_pretrained: at step 0 it is the plain Cascade R-CNN it is
loaded from, and the crux learner starts where it can learn (and then does)."""

import copy

import numpy as np
import pytest
import torch

from helpers.model_configs import batch, build, randomize_bn_statistics, tiny_lcp_cfg


def plain_tiny_cfg(lcp_cfg):
    """The plain CascadeRCNN / ResNet twin of a tiny LCP config."""
    cfg = copy.deepcopy(lcp_cfg)
    cfg.type = "CascadeRCNN"
    cfg.backbone.type = "ResNet"
    for key in ("crux_learner", "kl_loss_weight", "start_as_pretrained"):
        cfg.pop(key, None)
    return cfg


def lcp_from_plain(start_as_pretrained, seed=0):
    """A plain tiny Cascade R-CNN with random weights, and an LCPDetector initialised from it
    the way `lcp train --load-from` does (init_weights, then a non-strict load)."""
    torch.manual_seed(seed)
    cfg = tiny_lcp_cfg()
    cfg.test_cfg.rcnn.score_thr = 0.0  # keep every detection: the comparison sees many boxes
    cfg.start_as_pretrained = start_as_pretrained
    plain = build(plain_tiny_cfg(cfg))
    plain.init_weights()
    randomize_bn_statistics(plain, seed)
    lcp = build(cfg)
    lcp.init_weights()
    result = lcp.load_state_dict(plain.state_dict(), strict=False)
    assert result.unexpected_keys == []
    assert {key.split(".")[0] for key in result.missing_keys} == {"backbone", "crux_learner"}
    return plain.eval(), lcp.eval()


def detections(model, data):
    with torch.no_grad():
        return model.simple_test(data["img"], data["img_metas"], rescale=False)


@pytest.mark.parametrize("seed", [0, 1])
def test_start_as_pretrained_computes_the_plain_detectors_function(seed):
    plain, lcp = lcp_from_plain(start_as_pretrained=True, seed=seed)
    data = batch(num_images=2, height=96, width=128, seed=seed)
    expected, got = detections(plain, data), detections(lcp, data)
    assert sum(len(boxes) for image in expected for boxes in image) > 20
    for image_expected, image_got in zip(expected, got, strict=True):
        for boxes_expected, boxes_got in zip(image_expected, image_got, strict=True):
            assert boxes_expected.shape == boxes_got.shape
            np.testing.assert_allclose(boxes_got, boxes_expected, atol=1e-5, rtol=0)


def test_authors_start_differs_from_the_plain_detector():
    """The default (the authors' release) keeps PyTorch's init for the fusion: another function."""
    plain, lcp = lcp_from_plain(start_as_pretrained=False)
    data = batch(num_images=2, height=96, width=128)
    with torch.no_grad():
        assert not torch.allclose(plain.extract_feat(data["img"])[2], lcp.extract_feat(data["img"])[2], atol=1e-3)


def test_start_puts_the_mask_in_its_sensitive_range():
    _, authors = lcp_from_plain(start_as_pretrained=False)
    _, ours = lcp_from_plain(start_as_pretrained=True)
    img = batch(num_images=2, height=96, width=128)["img"]
    with torch.no_grad():
        saturated, sensitive = authors.crux_learner.mask(img), ours.crux_learner.mask(img)
    assert saturated.max() < 0.05  # sigmoid(10 * (0 - 0.5)) = 0.0067: the reported stuck start
    assert 0.3 < sensitive.mean() < 0.7
    assert sensitive.std() > 0  # the mask still varies over the image: every layer gets a gradient


def test_checkpoint_keys_and_shapes_are_unchanged():
    _, authors = lcp_from_plain(start_as_pretrained=False)
    _, ours = lcp_from_plain(start_as_pretrained=True)
    assert {k: v.shape for k, v in authors.state_dict().items()} == {k: v.shape for k, v in ours.state_dict().items()}


def test_crux_learner_moves_in_a_tiny_crux_mode_run():
    """The first step's gradient reaches the fusion's catch-up half (zero at the start), and
    from the second step on the crux learner's: after ten SGD steps every crux-learner
    parameter and the mask have moved."""
    _, lcp = lcp_from_plain(start_as_pretrained=True)
    lcp.train()
    lcp.set_train_mode("crux_learner")
    crux = list(lcp.crux_learner.parameters())
    others = [p for name, p in lcp.named_parameters() if p.requires_grad and not name.startswith("crux_learner.")]
    # the crux learner's lr multiplier of the demo config (10)
    optimizer = torch.optim.SGD([dict(params=others), dict(params=crux, lr=0.02)], lr=0.002, momentum=0.9)
    data = batch(num_images=2, height=96, width=128, num_classes=2)
    before = {name: p.detach().clone() for name, p in lcp.crux_learner.named_parameters()}
    with torch.no_grad():
        mask_before = lcp.crux_learner.mask(data["img"])
    for _ in range(10):
        losses = lcp.forward_train(**data)
        loss, _ = lcp._parse_losses(losses)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    moved = {name: (p.detach() - before[name]).abs().max().item() for name, p in lcp.crux_learner.named_parameters()}
    assert all(change > 0 for change in moved.values()), moved
    with torch.no_grad():
        assert (lcp.crux_learner.mask(data["img"]) - mask_before).abs().max() > 1e-4
