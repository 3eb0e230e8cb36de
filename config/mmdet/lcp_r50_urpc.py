# LCP-50 on URPC2020 (underwater), paired with DFUI's detection-favoured images; published
# result 47.8 AP / 81.8 AP50 / 50.3 AP75.
_base_ = [
    '_base_/models/lcp_cascade_rcnn_r50_fpn.py',
    '_base_/datasets/lcp_paired_detection.py',
    '_base_/schedules/lcp_24e.py',
    '_base_/default_runtime.py',
]

classes = ('echinus', 'holothurian', 'scallop', 'starfish')
num_classes = len(classes)

data_root = 'data/urpc/'
train_img_dir = 'urpc/'
train_ann = 'annotations/urpc_train.json'
df_img_dir = 'dfui/'
# the DF images are drawn from the train split only: the test images' dfui originals stay unseen
df_ann = 'annotations/dfui_train.json'
test_img_dir = 'urpc/'
test_ann = 'annotations/urpc_test.json'

# the detector pretrained on DFUI (cascade_rcnn_r50_dfui.py); LCP-only modules start from
# PyTorch's default initialisation
load_from = 'checkpoints/cascade_rcnn_r50_dfui.pth'
kl_loss_weight = 100
crux_lr_mult = 100
optimizer = dict(lr=0.002)
