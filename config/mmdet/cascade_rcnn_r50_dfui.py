# Pretraining of the plain Cascade R-CNN R50-FPN on DFUI, the detection-favoured underwater
# images (annotated with the URPC classes); its checkpoint initialises lcp_r50_urpc.py.
# The ResNet-50 starts from ImageNet (torchvision://resnet50, read from torch's hub cache; fetch it
# once with `lcp weights fetch`); as a baseline with load_from it starts from that checkpoint.
_base_ = [
    '_base_/models/cascade_rcnn_r50_fpn.py',
    '_base_/datasets/coco_detection.py',
    '_base_/schedules/schedule_2x.py',
    '_base_/default_runtime.py',
]

classes = ('echinus', 'holothurian', 'scallop', 'starfish')
num_classes = len(classes)

data_root = 'data/urpc/'
train_img_dir = 'dfui/'
train_ann = 'annotations/dfui_train.json'
test_img_dir = 'dfui/'
test_ann = 'annotations/dfui_test.json'
