"""The optimised LCP forward (shared shallow passes, no-grad raw path, channels-last) computes
the straightforward function in fp32: same outputs and gradients on random inputs of
several sizes, odd ones included. The straightforward path is `shallow_batching='never'`
(two passes, as in lcp-model.md); tests/models/test_model_function.py compares the default path
with a plain-torch re-implementation as well."""

import copy

import pytest
import torch

from helpers.model_configs import batch, build, randomize_bn_statistics, tiny_lcp_cfg

SIZES = [(64, 96), (97, 131), (33, 47), (100, 100)]


def tiny_model(shallow_batching="auto", channels_last=False, norm_eval=True, seed=0):
    torch.manual_seed(seed)
    cfg = tiny_lcp_cfg(frozen_stages=-1)
    cfg.backbone.update(shallow_batching=shallow_batching, norm_eval=norm_eval)
    cfg.channels_last = channels_last
    model = build(cfg)
    randomize_bn_statistics(model)
    return model


def twins(*settings, **kwargs):
    """Models with the same weights, one per shallow_batching setting."""
    first = tiny_model(settings[0], **kwargs)
    models = [first]
    for setting in settings[1:]:
        other = tiny_model(setting, **kwargs)
        other.load_state_dict(first.state_dict())
        models.append(other)
    return models


def count_stem_calls(model):
    """Batch sizes the stem's first conv sees, in call order."""
    sizes = []
    model.backbone.conv1.register_forward_hook(lambda module, inputs, out: sizes.append(inputs[0].size(0)))
    return sizes


def images(height, width, num_images=2, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (
        torch.randn(num_images, 3, height, width, generator=generator),
        torch.randn(num_images, 3, height, width, generator=generator),
    )


@pytest.mark.parametrize("height,width", SIZES)
def test_test_time_features_batch_the_two_passes_and_equal_two_passes(height, width):
    batched, straightforward = twins("auto", "never")
    batched.eval()
    straightforward.eval()
    batched_calls, separate_calls = count_stem_calls(batched), count_stem_calls(straightforward)
    img, _ = images(height, width)
    with torch.no_grad():
        expected = straightforward.extract_feat(img)
        outputs = batched.extract_feat(img)
    assert batched_calls == [4] and separate_calls == [2, 2]
    for out, ref in zip(outputs, expected, strict=True):
        torch.testing.assert_close(out, ref)


def crux_mode_backward(model, img, weights=None):
    """Backbone outputs for crux-mode training and the gradients a weighted sum of them gives."""
    model.set_train_mode("crux_learner")
    model.train()
    outputs = model.backbone(img, model.crux_learner(img))
    if weights is None:
        generator = torch.Generator().manual_seed(1)
        weights = [torch.randn(out.shape, generator=generator) for out in outputs]
    sum(((out * w).sum() for out, w in zip(outputs, weights, strict=True)), torch.zeros(())).backward()
    grads = {name: param.grad.clone() for name, param in model.named_parameters() if param.grad is not None}
    return [out.detach() for out in outputs], grads, weights


@pytest.mark.parametrize("height,width", SIZES)
def test_crux_mode_keeps_the_raw_path_out_of_autograd_and_gradients_match(height, width):
    auto, batched, straightforward = twins("auto", "always", "never")
    raw_needs_grad = []
    auto.backbone.conv1.register_forward_hook(lambda m, inputs, out: raw_needs_grad.append(out.requires_grad))
    img, _ = images(height, width)
    expected, expected_grads, weights = crux_mode_backward(straightforward, img)
    for model in (auto, batched):
        outputs, grads, _ = crux_mode_backward(model, img, weights)
        for out, ref in zip(outputs, expected, strict=True):
            torch.testing.assert_close(out, ref)
        assert grads.keys() == expected_grads.keys()
        assert any(name.startswith("crux_learner.") for name in grads)
        for name, grad in grads.items():
            torch.testing.assert_close(grad, expected_grads[name], msg=name)
    assert raw_needs_grad == [False, True]  # 'auto': raw pass without a graph, crux pass with one


@pytest.mark.parametrize("height,width", SIZES)
def test_catch_up_loss_runs_one_batched_pass_and_equals_the_straightforward_loss(height, width):
    batched, straightforward = twins("auto", "never")
    crux_batches = []
    batched.crux_learner.register_forward_hook(lambda m, inputs, out: crux_batches.append(out.size(0)))
    img, img_df = images(height, width)
    results = []
    for model in (batched, straightforward):
        model.set_train_mode("catch_up_learner")
        model.train()
        loss = model.catch_up_divergence(img, img_df)
        loss.backward()
        grads = {name: param.grad.clone() for name, param in model.named_parameters() if param.grad is not None}
        results.append((loss.detach(), grads))
    (loss, grads), (expected_loss, expected_grads) = results
    assert crux_batches == [4]
    torch.testing.assert_close(loss, expected_loss)
    assert (
        set(grads)
        == set(expected_grads)
        == {name for name, _ in batched.named_parameters() if name.startswith("backbone.catch_up_learner.")}
    )
    for name, grad in grads.items():
        torch.testing.assert_close(grad, expected_grads[name], msg=name)


def test_no_batching_while_batchnorm_uses_batch_statistics():
    """With norm_eval=False a training-mode BatchNorm normalises by the batch's statistics:
    one pass over [img; crux] would mix the two images, so even 'always' keeps two passes."""
    always, straightforward = twins("always", "never", norm_eval=False)
    calls = count_stem_calls(always)
    img, _ = images(64, 96)
    outputs, grads, weights = crux_mode_backward(always, img)
    expected, expected_grads, _ = crux_mode_backward(straightforward, img, weights)
    assert calls == [2, 2]
    for out, ref in zip(outputs, expected, strict=True):
        torch.testing.assert_close(out, ref)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, expected_grads[name], msg=name)


@pytest.mark.parametrize("height,width", [(64, 96), (97, 131)])
def test_channels_last_detector_equals_the_contiguous_one(height, width):
    contiguous = tiny_model()
    channels_last = tiny_model(channels_last=True)
    channels_last.load_state_dict(contiguous.state_dict())
    conv = channels_last.backbone.layer3[0].conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    data = batch(num_images=1, height=height, width=width)
    test_inputs = dict(img=[data["img"]], img_metas=[data["img_metas"]], return_loss=False)
    for model in (contiguous, channels_last):
        model.eval()
    with torch.no_grad():
        features = channels_last.extract_feat(data["img"])
        assert all(level.is_contiguous() for level in features)  # what mmcv's RoIAlign indexes
        for out, ref in zip(features, contiguous.extract_feat(data["img"]), strict=True):
            torch.testing.assert_close(out, ref)
        detections = channels_last(**copy.deepcopy(test_inputs))[0]
        expected = contiguous(**copy.deepcopy(test_inputs))[0]
    assert sum(len(d) for d in expected) > 0
    for dets, ref in zip(detections, expected, strict=True):
        torch.testing.assert_close(torch.from_numpy(dets), torch.from_numpy(ref), rtol=1e-4, atol=1e-3)

    train = batch(height=height, width=width)
    for model in (contiguous, channels_last):
        model.set_train_mode("catch_up_learner")
        model.train()
    kl = channels_last(**train, return_loss=True)["kl_loss"]
    torch.testing.assert_close(kl, contiguous(**train, return_loss=True)["kl_loss"])
