# Ablation "w/o TR" (paper Table 4): no task re-weighting (every task loss
# has weight 1).
_base_ = ['./pdam_r101-gn_1xb1+1-24k_bbbc039-to-kumar-256.py']
model = dict(reweight=dict(enabled=False))
