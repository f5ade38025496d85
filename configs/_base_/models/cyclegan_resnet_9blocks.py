# CycleGAN (Zhu et al. 2017) as used by CyC-PDAM: ResNet generator with 9
# residual blocks, 70x70 PatchGAN, LSGAN, cycle x10, identity x0.5 (of the
# cycle weight), image pools of 50.
model = dict(
    type='CycleGAN',
    generator=dict(type='ResnetGenerator', base_channels=64, num_blocks=9),
    discriminator=dict(type='PatchDiscriminator', base_channels=64,
                       num_convs=3),
    loss_weights=dict(cycle=10.0, identity=0.5),
    pool_size=50,
    data_preprocessor=dict(type='UnpairedDataPreprocessor'))
# Separate DDP per part: the model's own train_step orders the updates.
model_wrapper_cfg = dict(type='MMSeparateDistributedDataParallel')
