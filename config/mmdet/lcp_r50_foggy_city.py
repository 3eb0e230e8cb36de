# LCP-50 on Foggy Cityscapes, paired with clear Cityscapes images; published result
# 29.0 AP / 46.6 AP50 / 30.2 AP75.
_base_ = [
    '_base_/models/lcp_cascade_rcnn_r50_fpn.py',
    '_base_/datasets/lcp_paired_detection.py',
    '_base_/schedules/lcp_24e.py',
    '_base_/default_runtime.py',
]

classes = ('bicycle', 'bus', 'person', 'train', 'truck', 'motorcycle', 'car', 'rider')
num_classes = len(classes)

data_root = 'data/city/'
train_img_dir = 'foggy_city_images/'
train_ann = 'annotations/foggy_city_images_train.json'
df_img_dir = 'city_images/'
# the DF images are drawn from the train split only: the test images' city_images originals stay unseen
df_ann = 'annotations/city_images_train.json'
test_img_dir = 'foggy_city_images/'
test_ann = 'annotations/foggy_city_images_test.json'

# the detector pretrained on clear Cityscapes (cascade_rcnn_r50_city.py)
load_from = 'checkpoints/cascade_rcnn_r50_city.pth'
kl_loss_weight = 1
crux_lr_mult = 1
optimizer = dict(lr=0.002)
