# A tiny Cascade R-CNN (ResNet-18 with 8 base channels, 16-channel FPN and heads) that trains
# in seconds on a CPU on 128x128 images: for the demo scene and the tests, not for accuracy.
# mmcv replaces lists instead of merging them, so the per-stage lists are written out here,
# stage by stage as in cascade_rcnn_r50_fpn.py (regression stds and IoU thresholds).
_base_ = './cascade_rcnn_r50_fpn.py'

model = dict(
    # no ImageNet weights exist for this backbone: it starts from random weights
    backbone=dict(depth=18, base_channels=8, init_cfg=None),
    neck=dict(in_channels=[8, 16, 32, 64], out_channels=16),
    rpn_head=dict(in_channels=16, feat_channels=16),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=16),
        bbox_head=[
            dict(
                type='SyncFreeShared2FCBBoxHead',
                in_channels=16,
                fc_out_channels=32,
                roi_feat_size=7,
                num_classes='${num_classes}',
                bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0, 0.0, 0.0, 0.0], target_stds=stds),
                reg_class_agnostic=True,
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0),
            )
            for stds in ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067])
        ],
    ),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=64)),
        rpn_proposal=dict(nms_pre=200, max_per_img=100),
        rcnn=[
            dict(
                assigner=dict(
                    type='SyncFreeMaxIoUAssigner',  # mmdet's MaxIoUAssigner without host syncs
                    pos_iou_thr=iou,
                    neg_iou_thr=iou,
                    min_pos_iou=iou,
                    match_low_quality=False,
                    ignore_iof_thr=-1,
                ),
                sampler=dict(
                    type='SyncFreeRandomSampler', num=64, pos_fraction=0.25, neg_pos_ub=-1, add_gt_as_proposals=True
                ),
                pos_weight=-1,
                debug=False,
            )
            for iou in (0.5, 0.6, 0.7)
        ],
    ),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=100)),
)
