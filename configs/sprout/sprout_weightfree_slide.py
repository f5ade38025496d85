# Weight-free SPROUT, slide preset: the full recipe (sprout_weightfree.py)
# with one POT-Scan step (rho = 0.6, no expanded mask) and no dense CRF.
# With filter-bank features the scan and its CRF add ~0.01 AJI but cost
# ~85 % of the time (README "Which stages matter"); this preset is within
# 0.01 AJI / PQ of the full recipe on the MoNuSeg sample images (measured
# by tools/analysis_tools/benchmark_tiled_inference.py, see README).
#   python tools/infer.py configs/sprout/sprout_weightfree_slide.py \
#       SLIDE_OR_FOLDER --out preds --format geojson csv labels overlay
_base_ = ['./sprout_weightfree.py']
model = dict(
    # One step; the prototype K-means and the partial OT need no more
    # precision than this for it.
    pot_scan=dict(rho_max=0.6, expand_steps=0, kmeans_iters=20, tol=1e-4,
                  ot_dtype='float32'),
    crf=None)
