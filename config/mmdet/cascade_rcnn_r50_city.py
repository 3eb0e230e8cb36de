# Pretraining of the plain Cascade R-CNN R50-FPN on clear Cityscapes (8 detection classes);
# its checkpoint initialises lcp_r50_foggy_city.py and lcp_r50_rainy_city.py.
# The ResNet-50 starts from ImageNet (torchvision://resnet50, read from torch's hub cache; fetch it
# once with `lcp weights fetch`); as a baseline with load_from it starts from that checkpoint.
_base_ = [
    '_base_/models/cascade_rcnn_r50_fpn.py',
    '_base_/datasets/coco_detection.py',
    '_base_/schedules/schedule_2x.py',
    '_base_/default_runtime.py',
]

classes = ('bicycle', 'bus', 'person', 'train', 'truck', 'motorcycle', 'car', 'rider')
num_classes = len(classes)

data_root = 'data/city/'
train_img_dir = 'city_images/'
train_ann = 'annotations/city_images_train.json'
test_img_dir = 'city_images/'
test_ann = 'annotations/city_images_test.json'
