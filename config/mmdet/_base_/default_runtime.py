# Runtime settings shared by every config (mmdet 2.x names).
# Keeps the last 3 epoch checkpoints (an R50 one with its optimizer state is about 0.5 GB);
# evaluation during training keeps the best one too (evaluation.save_best, 'auto' in lcp train).
# max_keep_ckpts=-1 keeps them all.
checkpoint_config = dict(interval=1, max_keep_ckpts=3)
log_config = dict(interval=50, hooks=[dict(type='TextLoggerHook')])
# custom_hooks and auto_scale_lr live in the schedules: the LCP schedule adds its own hooks.

dist_params = dict(backend='nccl')
log_level = 'INFO'
load_from = None
resume_from = None
workflow = [('train', 1)]
# `lcp train` uses this seed unless --seed is given (mmdet's own tools draw a random one);
# it also seeds the detection-favoured pairing of DFPairedDataset (under mmdet's tools too).
seed = 0

# Inputs are resized to one img_scale and padded to 32, so cuDNN's autotuning (done once per
# input shape) pays off; `lcp train --deterministic` turns it off.
cudnn_benchmark = True
# Mixed precision: `lcp train --fp16` / `lcp test --fp16`, or set here, e.g.
# fp16 = dict(loss_scale='dynamic')

opencv_num_threads = 0
mp_start_method = 'fork'

# lcp.models registers LCPDetector/LCPResNet/CruxLearner, lcp.datasets DFPairedDataset and its
# pipeline steps, lcp.hooks TrainModeHook and DFPairingHook.
custom_imports = dict(imports=['lcp.models', 'lcp.datasets', 'lcp.hooks'], allow_failed_imports=False)
