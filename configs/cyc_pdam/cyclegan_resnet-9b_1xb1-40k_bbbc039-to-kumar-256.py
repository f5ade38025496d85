# CyC-PDAM step 1: CycleGAN from BBBC039 fluorescence (inverted) to Kumar
# H&E, 256x256 crops. Data (nucseg layout):
#   data/bbbc039  tools/dataset_converters/bbbc039.py (official split:
#                 splits/train.txt = 100 training images)
#   data/kumar    MoNuSeg training images (tools/dataset_converters/
#                 monuseg.py) with splits/train.txt = the 16 Kumar training
#                 images of the paper's split (see README)
# Then: tools/cyc_pdam/translate.py and tools/cyc_pdam/inpaint.py.
_base_ = [
    '../_base_/models/cyclegan_resnet_9blocks.py',
    '../_base_/datasets/cyclegan_fluo_to_he.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_cyclegan_40k.py'
]
# real A | fake B | rec A grids in <work_dir>/samples every 1000 iterations
custom_hooks = [dict(type='TranslationSamplesHook', interval=1000)]
