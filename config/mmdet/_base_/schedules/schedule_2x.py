# mmdetection's 2x schedule, for pretraining the plain detector. Its lr 0.02 is for a total
# batch of 16 (8 GPUs x 2 images); auto_scale_lr scales it linearly to the actual batch.
optimizer = dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4)
optimizer_config = dict(grad_clip=None)
lr_config = dict(policy='step', warmup='linear', warmup_iters=500, warmup_ratio=0.001, step=[16, 22])
runner = dict(type='EpochBasedRunner', max_epochs=24)
auto_scale_lr = dict(enable=True, base_batch_size=16)
# checks that the heads' num_classes matches the data set's classes
custom_hooks = [dict(type='NumClassCheckHook')]
