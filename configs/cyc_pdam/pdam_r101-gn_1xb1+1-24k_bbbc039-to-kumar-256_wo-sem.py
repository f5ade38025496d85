# Ablation "w/o SEM" (paper Table 4): no semantic branch and no
# semantic-level discriminator (image + instance level remain).
_base_ = ['./pdam_r101-gn_1xb1+1-24k_bbbc039-to-kumar-256.py']
model = dict(semantic_head=None, sem_discriminator=None)
