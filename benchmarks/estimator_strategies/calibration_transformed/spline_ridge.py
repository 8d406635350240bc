"""Ridge on spline-expanded features for the 3-candle return (calibrates the rule for linear
models behind a non-affine transform).

``SplineTransformer`` turns each feature into a few cubic B-spline columns, so the ridge fit
is linear in columns that are non-linear in the candles. Written to decide how the screen
fits such pipelines, not to trade well.

Grid: alpha [1.0, 1000.0] × n_knots [4, 7] = 4 configurations.
"""

from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import SplineTransformer

from distillbt.strategy import ModelStrategy


class SplineRidgeReturn(ModelStrategy):
    """SplineTransformer + Ridge on the 3-candle return; penalty × knots grid."""

    params = (("alpha", 10.0), ("n_knots", 5), ("long_threshold", 0.04), ("short_threshold", -0.04))
    grid = {"alpha": [1.0, 1000.0], "n_knots": [4, 7]}
    features = ("ret_1", "ret_4", "ma_dist_16", "vol_ratio_16_96", "volume_z_16")
    target = "return"
    horizon = 3

    def make_estimator(self):
        return make_pipeline(SplineTransformer(n_knots=self.p.n_knots, degree=3), Ridge(alpha=self.p.alpha))
