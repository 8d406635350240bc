"""Ridge regression of the next candle's return on volatility, volume and candle shape.

No return lags at all: realised volatilities and their ratio, volume ratios and z-scores,
the high–low range and the body/wick shares of the candle. Whatever it finds is conditional
drift (e.g. after a volume spike or a long lower wick), a different view from the momentum
models. Long above ``long_threshold``, short below ``short_threshold`` (fixed at -0.1) when
``allow_short``.
"""

from distillbt.models import Ridge
from distillbt.strategy import ModelStrategy


class RidgeVolatility(ModelStrategy):
    """Ridge on volatility/volume/candle-shape features; alpha × threshold × short grid."""

    params = (("alpha", 0.1), ("long_threshold", 0.1), ("short_threshold", -0.1))
    grid = {"alpha": [0.01, 1.0], "long_threshold": [0.05, 0.1, 0.15],
            "allow_short": [True, False]}
    features = ("vol_16", "vol_96", "vol_ratio_16_96", "volume_ratio_16", "volume_z_16",
                "volume_ratio_96", "volume_z_96", "hl_range", "body", "upper_wick",
                "lower_wick")
    target = "return"

    def make_estimator(self):
        return Ridge(alpha=self.p.alpha)
