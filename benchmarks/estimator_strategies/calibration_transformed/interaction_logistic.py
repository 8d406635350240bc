"""Logistic regression on pairwise interactions of scaled features, next 2 candles' direction
(calibrates the rule for linear models behind a non-affine transform).

``StandardScaler`` then ``PolynomialFeatures(interaction_only=True)`` then
``LogisticRegression``: linear in products of features. Written to decide how the screen fits
such pipelines, not to trade well.

Grid: C [1e-3, 1.0] × long_threshold [0.51, 0.53] × allow_short [True, False] = 8
configurations, 2 fits.
"""

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from distillbt.strategy import ModelStrategy


class InteractionLogistic(ModelStrategy):
    """Scaled pairwise interactions + LogisticRegression on direction; C × threshold × side grid."""

    params = (("C", 0.1), ("long_threshold", 0.52), ("short_threshold", 0.48))
    grid = {"C": [1e-3, 1.0], "long_threshold": [0.51, 0.53], "allow_short": [True, False]}
    features = ("ret_1", "ret_2", "ret_8", "ma_dist_64", "vol_16", "body")
    target = "direction"
    horizon = 2

    def make_estimator(self):
        return make_pipeline(StandardScaler(), PolynomialFeatures(degree=2, interaction_only=True, include_bias=False),
                             LogisticRegression(C=self.p.C, max_iter=500))
