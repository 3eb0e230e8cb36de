# A COCO-format detection data set, images resized to exactly `img_scale` (keep_ratio=False),
# evaluated with COCO bbox AP (class-wise too).
#
# Paths come from top-level keys the scene configs set and `--cfg-options` can override:
#   data_root      scene folder, e.g. data/demo/ (relative paths below are joined to it)
#   train_img_dir  training images            train_ann  their COCO json
#   test_img_dir   test/validation images     test_ann   their COCO json
#   classes        class names, in the annotation files' category order
#   num_classes    len(classes)
# `lcp train/test/infer` apply --cfg-options before resolving the ${...} references, so
# `--cfg-options data_root=/scratch/city/` moves every path at once.
img_scale = (1333, 800)
# ImageNet statistics (RGB); pipelines refer to them through ${img_norm_cfg.*}.
img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', img_scale='${img_scale}', keep_ratio=False),
    dict(type='RandomFlip', flip_ratio=0.5),
    dict(type='Normalize', mean='${img_norm_cfg.mean}', std='${img_norm_cfg.std}', to_rgb='${img_norm_cfg.to_rgb}'),
    dict(type='Pad', size_divisor=32),
    dict(type='DefaultFormatBundle'),
    dict(type='Collect', keys=['img', 'gt_bboxes', 'gt_labels']),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='MultiScaleFlipAug',
        img_scale='${img_scale}',
        flip=False,
        transforms=[
            dict(type='Resize', keep_ratio=False),
            dict(type='RandomFlip'),
            dict(
                type='Normalize',
                mean='${img_norm_cfg.mean}',
                std='${img_norm_cfg.std}',
                to_rgb='${img_norm_cfg.to_rgb}',
            ),
            dict(type='Pad', size_divisor=32),
            dict(type='ImageToTensor', keys=['img']),
            dict(type='Collect', keys=['img']),
        ],
    ),
]
test_dataset = dict(
    type='CocoDataset',
    data_root='${data_root}',
    ann_file='${test_ann}',
    img_prefix='${test_img_dir}',
    classes='${classes}',
    pipeline=test_pipeline,
)
data = dict(
    samples_per_gpu=2,
    workers_per_gpu=2,
    train=dict(
        type='CocoDataset',
        data_root='${data_root}',
        ann_file='${train_ann}',
        img_prefix='${train_img_dir}',
        classes='${classes}',
        pipeline=train_pipeline,
    ),
    val=test_dataset,
    test=test_dataset,
)
evaluation = dict(interval=1, metric='bbox', classwise=True)
