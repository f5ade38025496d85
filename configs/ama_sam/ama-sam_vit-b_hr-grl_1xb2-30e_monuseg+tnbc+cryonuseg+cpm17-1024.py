# Table 2 row 3: plain gradient reversal (every sample reversed).
_base_ = ['./ama-sam_vit-b_hr-cgrl_1xb2-30e_monuseg+tnbc+cryonuseg+cpm17-1024.py']
model = dict(alignment='grl')
