# Table 2 row 2: auxiliary data sets without multi-domain alignment.
_base_ = ['./ama-sam_vit-b_hr-cgrl_1xb2-30e_monuseg+tnbc+cryonuseg+cpm17-1024.py']
model = dict(alignment='none', discriminator=None, loss_align=None)
