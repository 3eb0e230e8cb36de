# LCP training data: the low-quality training set, each sample paired with an unpaired image
# from the detection-favoured folder `df_img_dir` (joined to data_root like the other paths;
# see coco_detection.py for the other keys). The pair goes through the same resize, flip,
# normalisation and padding. Test and validation sets are plain low-quality COCO sets.
_base_ = './coco_detection.py'
df_ann = None

paired_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadDFImage'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', img_scale='${img_scale}', keep_ratio=False),
    dict(type='RandomFlip', flip_ratio=0.5),
    dict(type='Normalize', mean='${img_norm_cfg.mean}', std='${img_norm_cfg.std}', to_rgb='${img_norm_cfg.to_rgb}'),
    dict(type='Pad', size_divisor=32),
    dict(type='DFFormatBundle'),
    dict(type='Collect', keys=['img', 'img_df', 'gt_bboxes', 'gt_labels']),
]
data = dict(
    train=dict(
        _delete_=True,
        type='DFPairedDataset',
        data_root='${data_root}',
        df_img_prefix='${df_img_dir}',
        # 'random': an unpaired DF image per sample and epoch (the authors' recipe); 'source':
        # the clean image a synthesised sample was made from (lcp/datasets/df_paired.py)
        pairing='random',
        # a COCO file listing the DF images that may be drawn, e.g. the clean set's train split
        # (the workflow gives it); None: the whole folder
        df_ann_file='${df_ann}',
        dataset=dict(
            type='CocoDataset',
            data_root='${data_root}',
            ann_file='${train_ann}',
            img_prefix='${train_img_dir}',
            classes='${classes}',
            pipeline=paired_train_pipeline,
        ),
    )
)
