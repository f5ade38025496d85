default_scope = 'nucseg'
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # 'nccl' for GPUs; tests and CPU runs override with 'gloo'.
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
# NonFiniteLossHook stops training at the first NaN/inf loss (before any
# checkpoint of that state is written); NucsegRunner adds it to configs that
# replace custom_hooks unless check_finite_loss = False.
custom_hooks = [
    dict(type='InstanceOverlayHook', max_images=16),
    dict(type='NonFiniteLossHook'),
]
# NucsegRunner: trusted strict checkpoint loading, atomic checkpoint saves,
# --resume falling back to the newest checkpoint that loads.
runner_type = 'NucsegRunner'
# Checkpoint keys and shapes must match the model (tools: --non-strict).
strict_load = True
