# LCP schedule (Fu et al., TCSVT 2024, as the authors released it): 24 epochs of SGD, warm-up 500 iterations,
# lr x0.1 at epochs 16 and 22. The scene configs set `optimizer.lr` and the crux learner's
# lr multiplier `crux_lr_mult`.
crux_lr_mult = 1
optimizer = dict(
    type='SGD',
    lr=0.002,
    momentum=0.9,
    weight_decay=1e-4,
    paramwise_cfg=dict(custom_keys={'crux_learner': dict(lr_mult='${crux_lr_mult}')}),
)
optimizer_config = dict(grad_clip=None)
lr_config = dict(policy='step', warmup='linear', warmup_iters=500, warmup_ratio=0.001, step=[16, 22])
runner = dict(type='EpochBasedRunner', max_epochs=24)
# the published learning rates are per 2 images per GPU, not scaled
auto_scale_lr = dict(enable=False, base_batch_size=2)

# The mode plan: phase i trains modes[i] for num_epoch[i] epochs ('alter' alternates the two,
# catch-up first). Epochs 1-6 train the catch-up learner, 7-12 the crux learner (with the
# detector), then the two alternate from epoch 13 (catch-up) to 24 (crux). A scene changes it
# with e.g. `lcp train --cfg-options mode_plan.num_epoch=[1,1,4]`; TrainModeHook reads it.
# (mmdet's tools/train.py resolves ${...} before its --cfg-options: there, custom_hooks.1.num_epoch.)
mode_plan = dict(num_epoch=[6, 6, 12], modes=['catch_up_learner', 'crux_learner', 'alter'])
# DFPairingHook tells the paired dataset the epoch so the detection-favoured pairing is reproducible.
custom_hooks = [
    dict(type='NumClassCheckHook'),
    dict(type='TrainModeHook', num_epoch='${mode_plan.num_epoch}', modes='${mode_plan.modes}'),
    dict(type='DFPairingHook'),
    dict(type='CruxHealthHook'),
]
