# LCP-50 on Rainy Cityscapes, paired with clear Cityscapes images; published result
# 27.6 AP / 45.9 AP50 / 27.9 AP75. Same as Foggy Cityscapes but for the images and the lr.
_base_ = ['lcp_r50_foggy_city.py']

train_img_dir = 'rainy_city_images/'
train_ann = 'annotations/rainy_city_images_train.json'
test_img_dir = 'rainy_city_images/'
test_ann = 'annotations/rainy_city_images_test.json'

optimizer = dict(lr=0.001)
