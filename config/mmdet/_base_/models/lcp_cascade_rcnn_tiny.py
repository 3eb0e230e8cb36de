# LCP on the tiny Cascade R-CNN (cascade_rcnn_tiny.py): the same LCP parts as
# lcp_cascade_rcnn_r50_fpn.py on an LCPResNet-18 with 8 base channels.
_base_ = './cascade_rcnn_tiny.py'

kl_loss_weight = 1
model = dict(
    type='LCPDetector',
    backbone=dict(type='LCPResNet', frozen_stages=-1),
    crux_learner=dict(type='CruxLearner', in_channels=3, mid_channels=16, num_blocks=3, k=10, mask_thr=0.5),
    kl_loss_weight='${kl_loss_weight}',
    # as in lcp_cascade_rcnn_r50_fpn.py (False: the authors' start); spelt out so that
    # --cfg-options model.start_as_pretrained=True finds the key
    start_as_pretrained=False,
    # as in lcp_cascade_rcnn_r50_fpn.py (nothing happens on the CPU); spelt out so that the
    # hint of a capture error, --cfg-options model.graph_capture.enabled=False, finds the key
    graph_capture=dict(enabled=True, warmup_iters=2, max_graphs=4, verify=True),
)

# Each training mode freezes part of the model (TrainModeHook): distributed training must let
# DDP skip the parameters a step does not use (lcp train refuses LCP configs without it).
find_unused_parameters = True
