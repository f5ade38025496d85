_base_ = [
    '../_base_/models/unet_contour.py', '../_base_/datasets/synthetic_he.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_cpu_300.py'
]
