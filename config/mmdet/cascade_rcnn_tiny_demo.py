# The demo scene (`lcp data demo --out data/demo`) on the tiny plain Cascade R-CNN: pretraining
# on the detection-favoured (clean) images. The same config trains the low-quality baseline
# with --cfg-options train_img_dir=lowq/ train_ann=annotations/lowq_train.json
# test_img_dir=lowq/ test_ann=annotations/lowq_test.json.
_base_ = [
    '_base_/models/cascade_rcnn_tiny.py',
    '_base_/datasets/coco_detection.py',
    '_base_/schedules/schedule_2x.py',
    '_base_/default_runtime.py',
]

classes = ('circle', 'square', 'triangle')
num_classes = len(classes)

data_root = 'data/demo/'
train_img_dir = 'clean/'
train_ann = 'annotations/clean_train.json'
test_img_dir = 'clean/'
test_ann = 'annotations/clean_test.json'
img_scale = (128, 128)

data = dict(samples_per_gpu=2, workers_per_gpu=1)
optimizer = dict(lr=0.02)
lr_config = dict(warmup_iters=20, warmup_ratio=0.1, step=[6])
runner = dict(max_epochs=8)
# the lr above is for this batch, not for 8 GPUs
auto_scale_lr = dict(enable=False, base_batch_size=2)
log_config = dict(interval=10)
evaluation = dict(interval=4)
