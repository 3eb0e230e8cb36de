# LCP on Cascade R-CNN R50-FPN (Fu et al., TCSVT 2024, as the authors released it): the crux learner masks the
# normalised image, the LCPResNet backbone adds the catch-up residual and fuses both branches.
_base_ = './cascade_rcnn_r50_fpn.py'

# weight of the KL loss of the catch-up learner (scene configs: 100 URPC, 1 Cityscapes)
kl_loss_weight = 1

model = dict(
    type='LCPDetector',
    # Which stages train is decided per epoch by TrainModeHook (set_train_mode), not by
    # frozen_stages. No ImageNet init: LCP starts from a pretrained detector (load_from), and
    # with init_cfg=None its LCP-only modules keep PyTorch's default init (LCPResNet).
    backbone=dict(type='LCPResNet', frozen_stages=-1, init_cfg=None),
    crux_learner=dict(type='CruxLearner', in_channels=3, mid_channels=16, num_blocks=3, k=10, mask_thr=0.5),
    kl_loss_weight='${kl_loss_weight}',
    # True: the LCP-only modules start so that the detector computes exactly the loaded
    # Cascade R-CNN (see LCPDetector); False is the authors' release
    start_as_pretrained=False,
    # CUDA graphs of the crux learner, backbone, FPN and RPN convolutions per padded batch shape, in
    # crux-mode training and at test (lcp/models/graph_capture.py); nothing happens on the CPU
    graph_capture=dict(enabled=True, warmup_iters=2, max_graphs=4, verify=True),
)

# Each training mode freezes part of the model (TrainModeHook): distributed training must let
# DDP skip the parameters a step does not use (lcp train refuses LCP configs without it).
find_unused_parameters = True
