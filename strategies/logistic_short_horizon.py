"""Long-only logistic regression on the direction of the next 4 candles.

The target is whether the log return over the next ``horizon = 4`` candles is positive (at
training time only rows whose 4 candles lie inside the training period are used). A slower
target suits a long-or-flat rule that holds for several bars: long above ``long_threshold``,
flat otherwise. The screen distils a set with 4-candle targets for it (the training period
prepared with ``horizon=4``), so the screen's model and the full backtest's learn the same
target.
"""

from distillbt.models import LogisticRegression
from distillbt.strategy import ModelStrategy


class LogisticShortHorizon(ModelStrategy):
    """Long-only logistic regression on the 4-candle direction; alpha × threshold grid."""

    params = (("alpha", 1e-3), ("long_threshold", 0.55), ("allow_short", False))
    grid = {"alpha": [1e-3, 1e-1], "long_threshold": [0.52, 0.55, 0.58]}
    features = ("ret_1", "ret_4", "ret_16", "ma_dist_16", "ma_dist_64", "vol_ratio_16_96",
                "volume_z_16")
    target = "direction"
    horizon = 4

    def make_estimator(self):
        return LogisticRegression(alpha=self.p.alpha)
