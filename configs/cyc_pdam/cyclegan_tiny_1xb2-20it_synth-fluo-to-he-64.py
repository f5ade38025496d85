# CPU-sized CycleGAN for the synthetic CyC-PDAM chain (run in the test
# suite): synthetic fluorescence (`fluo`, inverted) -> synthetic H&E
# (`he_kumar`), 64 px crops, tiny networks, 20 iterations. Make the data:
#   python tools/misc/make_synthetic.py --out data/synthetic/fluo \
#       --domain fluo --num 16 --size 64 --seed 0
#   python tools/misc/make_synthetic.py --out data/synthetic/he_kumar \
#       --domain he_kumar --num 16 --size 64 --seed 1
# The numbers mean nothing about the method; the chain shows every stage
# runs end to end (see configs/cyc_pdam/README.md).
_base_ = ['./cyclegan_resnet-9b_1xb1-40k_bbbc039-to-kumar-256.py']
crop_size = 64
max_iters = 20
model = dict(
    generator=dict(base_channels=8, num_blocks=2),
    discriminator=dict(base_channels=8, num_convs=2),
    pool_size=4)
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        domain_a=dict(
            data_root='data/synthetic/fluo', split='train',
            pipeline=[
                dict(type='LoadNucleiImageFromFile'),
                dict(type='InvertIntensity'),
                dict(type='RandomInstanceCrop', crop_size=crop_size,
                     pad_val=255),
                dict(type='RandomFlipRot90'),
                dict(type='PackNucleiInputs'),
            ]),
        domain_b=dict(
            data_root='data/synthetic/he_kumar', split='train',
            pipeline=[
                dict(type='LoadNucleiImageFromFile'),
                dict(type='RandomInstanceCrop', crop_size=crop_size,
                     pad_val=255),
                dict(type='RandomFlipRot90'),
                dict(type='PackNucleiInputs'),
            ])))
optim_wrapper = dict(
    generators=dict(optimizer=dict(lr=2e-3)),
    discriminators=dict(optimizer=dict(lr=2e-3)))
param_scheduler = dict(
    generators=[
        dict(type='LinearLR', start_factor=1.0, end_factor=0.0,
             by_epoch=False, begin=max_iters // 2, end=max_iters)
    ],
    discriminators=[
        dict(type='LinearLR', start_factor=1.0, end_factor=0.0,
             by_epoch=False, begin=max_iters // 2, end=max_iters)
    ])
train_cfg = dict(max_iters=max_iters)
default_hooks = dict(
    logger=dict(interval=5),
    checkpoint=dict(interval=10, max_keep_ckpts=2))
custom_hooks = [dict(type='TranslationSamplesHook', interval=10)]
