# CyC-PDAM step 1 for BBBC039 -> TNBC: as the Kumar config with TNBC's
# training cases (8 patients, 40 images: splits/train.txt in data/tnbc,
# see README) as domain B.
_base_ = ['./cyclegan_resnet-9b_1xb1-40k_bbbc039-to-kumar-256.py']
train_dataloader = dict(
    dataset=dict(domain_b=dict(data_root='data/tnbc', split='train')))
