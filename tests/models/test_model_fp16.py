"""mmdet 2.x mixed precision (wrap_fp16_model) with LCPDetector.

With torch >= 1.6, mmcv's fp16 keeps fp32 weights, casts the inputs named in auto_fp16 to
fp16 and runs the forward under CUDA autocast, so fp16 steps only run on a GPU: on CPU a
half input meets fp32 weights in the first conv, for a plain mmdet detector as much as for
LCP. On CPU the catch-up step runs with a forward pre-hook that records the crux learner's
input dtype and hands it fp32 (standing in for autocast at that one entry); crux-mode and
test steps are checked on a GPU.
"""

import pytest
import torch
from mmcv.runner import wrap_fp16_model

from helpers.model_configs import batch, batch_on, build, tiny_lcp_cfg

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="mmcv fp16 runs under CUDA autocast")


def fp16_model(device):
    torch.manual_seed(0)
    model = build(tiny_lcp_cfg()).to(device)
    wrap_fp16_model(model)
    assert model.fp16_enabled
    return model


def test_catch_up_step_casts_img_and_img_df_to_half_on_cpu():
    model = fp16_model("cpu")
    model.set_train_mode("catch_up_learner")
    model.train()
    seen = []

    def record_and_feed_fp32(module, inputs):
        seen.append((inputs[0].dtype, inputs[0].size(0)))
        return (inputs[0].float(),)

    model.crux_learner.register_forward_pre_hook(record_and_feed_fp32)
    with pytest.raises(RuntimeError, match="Half"):  # the real CPU limitation, without the hook
        model.backbone.shallow(batch()["img"].half(), catch_up=False)
    losses = model(**batch(), return_loss=True)
    assert seen == [(torch.half, 4)]  # crux_learner([img; img_df]): both images of the batch of 2, in one call
    assert losses["kl_loss"].dtype == torch.float32 and torch.isfinite(losses["kl_loss"])
    losses["kl_loss"].backward()
    assert all(
        (param.grad is not None) == name.startswith("backbone.catch_up_learner.")
        for name, param in model.named_parameters()
    )


@needs_cuda
def test_fp16_train_steps_in_both_modes_and_test_step_on_gpu():
    model = fp16_model("cuda")
    reference = build(tiny_lcp_cfg()).cuda()
    reference.load_state_dict(model.state_dict())
    data = batch_on("cuda", batch())
    catch_up_dtypes = []
    model.backbone.catch_up_learner.register_forward_hook(lambda m, i, out: catch_up_dtypes.append(out.dtype))
    model.train()
    reference.train()

    for mode in ("catch_up_learner", "crux_learner"):
        model.set_train_mode(mode)
        losses = model(**data, return_loss=True)
        loss, log_vars = model._parse_losses(losses)
        assert torch.isfinite(loss), (mode, log_vars)
        loss.backward()
        assert all(
            param.grad is not None
            for name, param in model.named_parameters()
            if name.startswith("crux_learner." if mode == "crux_learner" else "backbone.catch_up_learner.")
        )
        model.zero_grad()
    assert torch.half in catch_up_dtypes  # the features really ran in half precision

    model.set_train_mode("catch_up_learner")
    reference.set_train_mode("catch_up_learner")
    with torch.no_grad():
        kl_fp16 = model(**data, return_loss=True)["kl_loss"]
        kl_fp32 = reference(**data, return_loss=True)["kl_loss"]
    assert kl_fp16.dtype == torch.float32
    torch.testing.assert_close(kl_fp16, kl_fp32, rtol=0.05, atol=1e-4)

    model.eval()
    single = batch_on("cuda", batch(num_images=1, height=96, width=128))
    with torch.no_grad():
        results = model(img=[single["img"]], img_metas=[single["img_metas"]], return_loss=False)
    assert len(results) == 1 and len(results[0]) == 2
