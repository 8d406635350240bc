"""Next-candle linear regression: the design's baseline model strategy.

Least squares (``Ridge(alpha=0)``) of the next candle's log return on every default feature
of :func:`distillbt.features.make_features` (return lags, volatilities, volume ratios, candle
shape, moving-average distances). Long when the predicted return is above ``long_threshold``,
short when below ``short_threshold``; predictions and thresholds are in standard deviations
of the next candle's return (0.1 = a tenth of one). The grid sweeps both thresholds: near zero
the strategy trades almost every bar and commission dominates, wider bands trade rarely.
"""

from distillbt.models import Ridge
from distillbt.strategy import ModelStrategy


class LinearNextCandle(ModelStrategy):
    """Least-squares next-candle return on all default features; threshold grid."""

    params = (("long_threshold", 0.05), ("short_threshold", -0.05))
    grid = {
        "long_threshold": [0.0, 0.05, 0.1, 0.2],
        "short_threshold": [0.0, -0.05, -0.1, -0.2],
    }
    features = (
        "ret_1", "ret_2", "ret_4", "ret_8", "ret_16", "ret_32",
        "vol_16", "vol_96", "vol_ratio_16_96",
        "volume_ratio_16", "volume_z_16", "volume_ratio_96", "volume_z_96",
        "hl_range", "body", "upper_wick", "lower_wick",
        "ma_dist_16", "ma_dist_64", "ma_dist_256",
    )
    target = "return"

    def make_estimator(self):
        return Ridge(alpha=0.0)
