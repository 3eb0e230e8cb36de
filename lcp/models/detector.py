"""LCPDetector: Cascade R-CNN whose features always come through the crux learner and catch-up branch."""

from __future__ import annotations

import torch
from mmcv.runner import auto_fp16
from mmdet.models.builder import DETECTORS, MODELS
from mmdet.models.detectors import CascadeRCNN

from lcp.apis.config import refuse_unresolved
from lcp.errors import LCPError
from lcp.models.graph_capture import FrontGraphs
from lcp.models.kl_loss import feature_kl_divergence
from lcp.models.loss_parsing import parse_losses
from lcp.models.sync_free import check_proposal_slots
from lcp.modes import CATCH_UP, CRUX, TRAIN_MODES


@DETECTORS.register_module()
class LCPDetector(CascadeRCNN):
    """Cascade R-CNN with LCP's crux learner (`crux_learner`) and an LCP backbone.

    Training alternates between two modes (see set_train_mode, and TrainModeHook in
    lcp/hooks/mode_controller.py which picks the mode of each epoch):

    - 'catch_up_learner': loss = kl_loss_weight * KL(P_df || P_catch), where catch is
      layer2-with-catch-up of crux_learner(img) and df is plain layer2 of
      crux_learner(img_df); only backbone.catch_up_learner trains.
    - 'crux_learner': the ordinary Cascade R-CNN losses; crux_learner, catch_up_fusion,
      the stages after layer2, neck, rpn_head and roi_head train.

    `train_mode` is None until set_train_mode is called: the model is built with every
    parameter as its config makes it, so that mmcv's optimizer constructor (built once,
    before the first epoch) gives every parameter its param-wise options such as the
    crux learner's lr_mult; it puts parameters that are frozen at build time in a group
    without them.

    start_as_pretrained=True (opt-in; the authors' release leaves it off) starts the LCP-only
    modules so that, once the plain Cascade R-CNN's weights are loaded, the detector computes
    exactly that detector's function: catch_up_fusion passes C3 through and gives the
    catch-up branch zero weight, and the crux learner's mask starts at 0.5, in its sensitive
    range, instead of saturated near 0 (see CruxLearner.start_in_sensitive_range). With the
    authors' start (PyTorch's default initialisation) the fine-tuned detector begins behind
    its pretrained weights: a random fusion mixes C3 with a random projection.

    channels_last=True keeps the convolution weights and the backbone's and neck's
    activations in NHWC memory layout (faster cuDNN kernels with fp16 on recent GPUs; same
    function). The neck's outputs go back to NCHW because mmcv's RoIAlign kernels index
    their input as contiguous NCHW.

    graph_capture (FrontGraphs' arguments, lcp/models/graph_capture.py) replays the front, the
    crux learner, backbone, FPN and RPN convolutions (`front`), as CUDA graphs in crux-mode
    training and at test time: on by default, nothing happens on the CPU; dict(enabled=False)
    runs it eagerly everywhere.
    """

    def __init__(
        self,
        backbone,
        neck=None,
        rpn_head=None,
        roi_head=None,
        train_cfg=None,
        test_cfg=None,
        pretrained=None,
        init_cfg=None,
        crux_learner=None,
        kl_loss_weight: float = 1.0,
        channels_last: bool = False,
        start_as_pretrained: bool = False,
        graph_capture: dict | None = None,
    ):
        refuse_unresolved({key: value for key, value in locals().items() if key != "self"})
        super().__init__(
            backbone=backbone,
            neck=neck,
            rpn_head=rpn_head,
            roi_head=roi_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            pretrained=pretrained,
            init_cfg=init_cfg,
        )
        if not hasattr(self.backbone, "shallow"):
            raise LCPError(
                f"LCPDetector: backbone type {type(self.backbone).__name__} has no catch-up branch; "
                "use LCPResNet or LCPResNeXt"
            )
        check_proposal_slots(getattr(self, "rpn_head", None), getattr(self, "roi_head", None))
        self.crux_learner = MODELS.build(dict(type="CruxLearner") if crux_learner is None else crux_learner)
        self.kl_loss_weight = float(kl_loss_weight)
        self.start_as_pretrained = bool(start_as_pretrained)
        # Frozen by the config itself (frozen_stages, norm_cfg requires_grad=False): no mode unfreezes these.
        self._frozen_by_config = {name for name, p in self.named_parameters() if not p.requires_grad}
        self.front_graphs = FrontGraphs(**(graph_capture or {}))
        self.train_mode = None
        self.channels_last = bool(channels_last)
        if self.channels_last:
            # load_state_dict and .cuda() keep a parameter's layout, so converting once suffices
            self.to(memory_format=torch.channels_last)

    def init_weights(self) -> None:
        super().init_weights()
        if self.start_as_pretrained:  # a checkpoint loaded afterwards overrides what it holds
            self.backbone.start_fusion_as_passthrough()
            self.crux_learner.start_in_sensitive_range()

    def trainable_prefixes(self, mode: str) -> tuple[str, ...]:
        """State-dict name prefixes of the parameters that train in `mode`."""
        if mode == CATCH_UP:
            return ("backbone.catch_up_learner.",)
        if mode == CRUX:
            deep_stages = tuple(f"backbone.{name}." for name in self.backbone.res_layers[2:])
            return ("crux_learner.", "backbone.catch_up_fusion.") + deep_stages + ("neck.", "rpn_head.", "roi_head.")
        raise LCPError(f"LCPDetector: unknown train mode {mode!r}; expected one of {TRAIN_MODES}")

    def _parse_losses(self, losses):
        return parse_losses(losses)  # mmdet's, with one host transfer instead of one per logged value

    def set_train_mode(self, mode: str) -> None:
        """Make exactly the parameters of `mode` trainable and guarantee the others do not move.

        How a frozen parameter is kept bit-identical: it gets requires_grad=False and its
        .grad is set to None here. Autograd then never gives it a gradient again, and
        PyTorch's optimizers skip every parameter whose .grad is None: no weight decay, no
        momentum update, even though mmcv's optimizer holds all parameters and keeps the
        momentum buffers of the other mode. (mmcv's OptimizerHook zeroes gradients with
        zero_grad(), which only touches existing .grad tensors, so None stays None.)
        """
        prefixes = self.trainable_prefixes(mode)
        for name, param in self.named_parameters():
            trainable = name.startswith(prefixes) and name not in self._frozen_by_config
            param.requires_grad_(trainable)
            if not trainable:
                param.grad = None
        if mode != self.train_mode:  # the graphs computed the gradients of the other mode's parameters
            self.front_graphs.clear()
        self.train_mode = mode

    def _in_model_layout(self, img: torch.Tensor) -> torch.Tensor:
        return img.contiguous(memory_format=torch.channels_last) if self.channels_last else img

    def extract_feat(self, img: torch.Tensor):
        """Backbone + neck features; the crux branch runs at test time too."""
        img = self._in_model_layout(img)
        x = self.backbone(img, self.crux_learner(img))
        if self.with_neck:
            x = self.neck(x)
        if self.channels_last:
            x = tuple(level.contiguous() for level in x)
        return x

    def front(self, img: torch.Tensor):
        """(FPN features, (RPN class scores, RPN box deltas)): all a crux-mode step or a test computes
        before anything depends on the boxes, with shapes fixed by the padded batch."""
        x = self.extract_feat(img)
        return x, self.rpn_head(x)

    @auto_fp16(apply_to=("img", "img_df"))
    def forward(self, img, img_metas, return_loss=True, **kwargs):
        """mmdet's forward, with the detection-favoured image `img_df` cast to fp16 as well."""
        if not return_loss:
            kwargs.pop("img_df", None)
        return super().forward(img, img_metas, return_loss=return_loss, **kwargs)

    def forward_train(self, img, img_metas, gt_bboxes, gt_labels, gt_bboxes_ignore=None, img_df=None, **kwargs):
        if self.train_mode == CATCH_UP:
            if img_df is None:
                raise LCPError(
                    "LCPDetector: catch_up_learner mode needs img_df (the detection-favoured image "
                    "paired with each sample); the training dataset must collect 'img_df'"
                )
            return dict(kl_loss=self.kl_loss_weight * self.catch_up_divergence(img, img_df))
        if self.train_mode == CRUX:
            return self.detection_losses(img, img_metas, gt_bboxes, gt_labels, gt_bboxes_ignore, **kwargs)
        raise LCPError(
            "LCPDetector: train_mode is not set; add TrainModeHook to custom_hooks "
            "or call set_train_mode('catch_up_learner' | 'crux_learner') before training"
        )

    def detection_losses(
        self, img, img_metas, gt_bboxes, gt_labels, gt_bboxes_ignore=None, gt_masks=None, proposals=None, **kwargs
    ):
        """mmdet's TwoStageDetector.forward_train (RPN head's forward_train inlined), the front
        through front_graphs: same losses, same order of random draws."""
        if not self.with_rpn:
            return super().forward_train(
                img,
                img_metas,
                gt_bboxes,
                gt_labels,
                gt_bboxes_ignore=gt_bboxes_ignore,
                gt_masks=gt_masks,
                proposals=proposals,
                **kwargs,
            )
        x, rpn_outs = self.front_graphs.run(self, img)
        losses = dict(self.rpn_head.loss(*rpn_outs, gt_bboxes, img_metas, gt_bboxes_ignore=gt_bboxes_ignore))
        proposal_cfg = self.train_cfg.get("rpn_proposal", self.test_cfg.rpn)
        proposal_list = self.rpn_head.get_bboxes(*rpn_outs, img_metas=img_metas, cfg=proposal_cfg)
        losses.update(
            self.roi_head.forward_train(
                x, img_metas, proposal_list, gt_bboxes, gt_labels, gt_bboxes_ignore, gt_masks, **kwargs
            )
        )
        return losses

    def simple_test(self, img, img_metas, proposals=None, rescale=False):
        """mmdet's TwoStageDetector.simple_test, the front through front_graphs."""
        if proposals is not None or not self.with_rpn:
            return super().simple_test(img, img_metas, proposals=proposals, rescale=rescale)
        x, rpn_outs = self.front_graphs.run(self, img)
        proposal_list = self.rpn_head.get_bboxes(*rpn_outs, img_metas=img_metas)
        return self.roi_head.simple_test(x, proposal_list, img_metas, rescale=rescale)

    def catch_up_divergence(self, img: torch.Tensor, img_df: torch.Tensor) -> torch.Tensor:
        """KL(P_df || P_catch) between layer2 features (unweighted).

        In catch-up training nothing before the catch-up learner trains, so the crux
        learner and the shallow stages run once on [img; img_df] as one batch, without
        autograd; the crux learner has no batch-dependent layer and the backbone batches
        only when that keeps the function (BatchNorm on running statistics).
        """
        img, img_df = self._in_model_layout(img), self._in_model_layout(img_df)
        upstream_trains = self.backbone.shallow_params_train() or any(
            p.requires_grad for p in self.crux_learner.parameters()
        )
        needs_input_grad = img.requires_grad or img_df.requires_grad or upstream_trains
        if not self.backbone.batch_shallow_passes(needs_input_grad):
            _, catch = self.backbone.shallow(self.crux_learner(img), catch_up=True)
            _, target = self.backbone.shallow(self.crux_learner(img_df), catch_up=False)
            return feature_kl_divergence(target, catch)
        n = img.size(0)
        with torch.no_grad():
            c2, c3 = self.backbone.shallow(self.crux_learner(torch.cat([img, img_df])), catch_up=False)
        catch = c3[:n] + self.backbone.catch_up_learner(c2[:n])
        return feature_kl_divergence(c3[n:], catch)
