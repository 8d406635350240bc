"""Scaled logistic regression on the direction of the next 2 candles, strongly regularised.

A scikit-learn ``Pipeline`` (``StandardScaler`` then ``LogisticRegression``) learns whether
the log return over the next ``horizon = 2`` candles is positive from short return lags,
moving-average distances, the volatility ratio and the volume z-score. ``C`` is the inverse
regularisation strength: 0.002 is a heavy penalty that keeps the coefficients near zero (a
classic guard against fitting noise), 0.5 a light one. Long when the probability of an up
move is above ``long_threshold``, short below ``short_threshold`` (fixed at 0.47).

Grid: ``C`` in {0.002, 0.5} × ``long_threshold`` in {0.51, 0.53} — 4 configurations, 2 fits.
"""

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from distillbt.strategy import ModelStrategy


class LogisticScaledDirection(ModelStrategy):
    """StandardScaler + LogisticRegression on 2-candle direction; C × long threshold grid."""

    params = (("C", 0.05), ("long_threshold", 0.52), ("short_threshold", 0.47))
    grid = {"C": [0.002, 0.5], "long_threshold": [0.51, 0.53]}
    features = ("ret_1", "ret_2", "ret_4", "ret_8", "ma_dist_16", "ma_dist_64",
                "vol_ratio_16_96", "volume_z_16")
    target = "direction"
    horizon = 2

    def make_estimator(self):
        return make_pipeline(
            StandardScaler(),
            LogisticRegression(C=self.p.C, max_iter=500),
        )
