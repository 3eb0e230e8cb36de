"""mmdet's image-inference entry point on this project's configs: `init_detector` reads a config
file without resolving its ${...} references, so the project's own `lcp.apis.inference.init_detector`
does, and mmdet's says in one line what to use instead of failing deep inside a head."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from mmcv import Config
from mmcv.runner import save_checkpoint
from mmdet.apis import inference_detector
from mmdet.apis import init_detector as mmdet_init_detector
from mmdet.models import build_detector
from mmdet.utils import replace_cfg_vals

import lcp.models  # noqa: F401  registers the project's modules, as custom_imports would
from lcp.apis.config import load_config
from lcp.apis.inference import init_detector
from lcp.errors import LCPError

CONFIGS = ("config/mmdet/lcp_tiny_demo.py", "config/mmdet/cascade_rcnn_tiny_demo.py")


@pytest.mark.parametrize("config", CONFIGS)
def test_mmdets_init_detector_on_a_raw_config_names_the_fix(config):
    with pytest.raises(
        LCPError, match=r"holds '\$\{num_classes\}'.*lcp\.apis\.inference\.init_detector\(path"
    ) as caught:
        mmdet_init_detector(config, None, device="cpu")
    assert "\n" not in str(caught.value)


def test_lcp_init_detector_detects_as_mmdets_on_the_resolved_config(tmp_path):
    config = CONFIGS[0]
    torch.manual_seed(0)
    model = build_detector(load_config(config).model)
    checkpoint = tmp_path / "lcp.pth"
    save_checkpoint(model, str(checkpoint), meta=dict(CLASSES=("circle", "square", "triangle")))
    image = tmp_path / "image.jpg"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8))

    ours = init_detector(config, str(checkpoint), device="cpu")
    stock = mmdet_init_detector(replace_cfg_vals(Config.fromfile(config)), str(checkpoint), device="cpu")
    assert ours.CLASSES == stock.CLASSES == ("circle", "square", "triangle")
    detections = inference_detector(ours, str(image))
    assert sum(len(boxes) for boxes in detections) > 0  # a random head detects something to compare
    for mine, theirs in zip(detections, inference_detector(stock, str(image)), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    # overrides reach the references, as in the lcp tools: img_scale feeds the test pipeline's resize
    scaled = init_detector(config, str(checkpoint), device="cpu", cfg_options={"img_scale": (64, 64)})
    assert scaled.cfg.data.test.pipeline[1].img_scale == (64, 64)


def _saved(model, path, **meta):
    save_checkpoint(model, str(path), meta=meta or None)
    return str(path)


def test_lcp_init_detector_refuses_a_plain_cascade_checkpoint_for_an_lcp_config(tmp_path):
    """mmcv's loader printed the missing crux and catch-up keys and left them random."""
    plain = build_detector(load_config(CONFIGS[1]).model)
    checkpoint = _saved(plain, tmp_path / "plain.pth", CLASSES=("circle", "square", "triangle"))
    with pytest.raises(
        LCPError,
        match=r"does not match the model exactly: missing backbone\.catch_up_learner.*; it is a plain detector's "
        r"checkpoint, without LCP's modules: use it with a plain config, or start an LCP training from it "
        r"\(--load-from\)$",
    ):
        init_detector(CONFIGS[0], checkpoint, device="cpu")


def test_a_checkpoint_of_mmdets_ema_hook_detects_as_mmdets_init_detector(tmp_path):
    """mmdet's EMA hook keeps a buffer ema_<key> beside each entry (the raw weights; the entries hold
    the averaged ones, which mmdet tests with): lcp test, lcp infer and init_detector refused such a
    file as 'does not match the model exactly: unexpected ema_backbone_conv1_weight, ...'."""
    from types import SimpleNamespace

    from mmdet.core.hook import ExpMomentumEMAHook

    config = CONFIGS[0]
    torch.manual_seed(0)
    model = build_detector(load_config(config).model)
    ExpMomentumEMAHook().before_run(SimpleNamespace(model=model))  # registers the ema_ buffers, as in training
    for name, buffer in model.named_buffers():
        if name.startswith("ema_") and buffer.is_floating_point():
            buffer.add_(0.5)  # the raw weights differ from the averaged ones
    checkpoint = _saved(model, tmp_path / "ema.pth", CLASSES=("circle", "square", "triangle"))
    assert "ema_backbone_conv1_weight" in torch.load(checkpoint, weights_only=True)["state_dict"]
    image = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)

    ours = init_detector(config, checkpoint, device="cpu")
    stock = mmdet_init_detector(replace_cfg_vals(Config.fromfile(config)), checkpoint, device="cpu")
    detections = inference_detector(ours, image)
    assert sum(len(boxes) for boxes in detections) > 0
    for mine, theirs in zip(detections, inference_detector(stock, image), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_lcp_init_detector_names_the_classes_of_an_mmdet3_checkpoint(tmp_path):
    """mmdet 3.x keeps the class names in meta.dataset_meta.classes: the config's were used, which
    named every detection of a checkpoint trained in another class order wrongly."""
    model = build_detector(load_config(CONFIGS[0]).model)
    order = ("square", "circle", "triangle")
    checkpoint = _saved(model, tmp_path / "mmdet3.pth", dataset_meta={"classes": order, "palette": None})
    assert init_detector(CONFIGS[0], checkpoint, device="cpu").CLASSES == order


def test_lcp_init_detector_refuses_a_checkpoint_of_another_class_count(tmp_path):
    checkpoint = _saved(build_detector(load_config(CONFIGS[0]).model), tmp_path / "lcp.pth")
    with pytest.raises(LCPError, match=r"trained for 3 classes, the model has 5"):
        init_detector(CONFIGS[0], checkpoint, device="cpu", cfg_options={"num_classes": 5, "classes": list("abcde")})


def test_lcp_init_detector_names_classes_from_the_config_when_the_checkpoint_has_none(tmp_path):
    checkpoint = _saved(build_detector(load_config(CONFIGS[0]).model), tmp_path / "no_meta.pth")
    assert init_detector(CONFIGS[0], checkpoint, device="cpu").CLASSES == ("circle", "square", "triangle")


@pytest.mark.parametrize("config", CONFIGS)
def test_a_test_forward_outside_no_grad_returns_detections(config, tmp_path):
    """mmdet's bbox2result detaches; the sync-free heads' results raised 'Can't call numpy() on Tensor
    that requires grad' (a notebook calling the model, or a saliency method)."""
    torch.manual_seed(0)
    model = build_detector(load_config(config).model).eval()
    image = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    img = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    img = torch.nn.functional.pad(img, (0, 0, 0, 32))  # 128 x 128, as the test pipeline pads
    meta = dict(
        img_shape=(96, 128, 3),
        ori_shape=(96, 128, 3),
        pad_shape=(128, 128, 3),
        scale_factor=np.ones(4, np.float32),
        flip=False,
    )
    with torch.no_grad():
        expected = model(return_loss=False, rescale=True, img=[img], img_metas=[[meta]])[0]
    result = model(return_loss=False, rescale=True, img=[img], img_metas=[[meta]])[0]
    assert sum(len(boxes) for boxes in expected) > 0  # a random head scores every class above 0.05
    assert len(result) == len(expected)
    # the same detections; within float rounding, as with autograd on the LCP backbone runs the
    # raw and crux images' shallow passes one by one instead of as one batch
    for boxes, wanted in zip(result, expected, strict=True):
        assert isinstance(boxes, np.ndarray) and boxes.shape == wanted.shape
        assert np.allclose(boxes, wanted, rtol=1e-4, atol=0.02)


def test_lcp_init_detector_says_it_takes_a_file_not_a_url():
    """mmcv's loader downloaded URLs: 'checkpoint file does not exist' would leave a user guessing."""
    with pytest.raises(LCPError, match=r"^https://example.com/m.pth: init_detector loads a checkpoint file; download"):
        init_detector(CONFIGS[0], "https://example.com/m.pth", device="cpu")
