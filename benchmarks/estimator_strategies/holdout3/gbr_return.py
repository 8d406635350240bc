"""Stochastic gradient boosting regression of the 6-candle return, on 15/60/240 windows.

``GradientBoostingRegressor(n_estimators=50, learning_rate=0.1, max_depth, subsample=0.4,
max_features=0.5, random_state=0)`` (stochastic boosting, rows and features subsampled: the
exact splitter is slow on ~100k rows) on returns over 1, 5, 15 and 60 candles, 15/60-candle
volatilities and their ratio and the 15/60/240-candle moving-average distances
(``feature_options``). Target: the log return over the next 6 candles, in standard
deviations. Long above 0.1, short below -0.1 when ``allow_short``.

Grid: max_depth [2, 3] × allow_short [True, False] = 4 configurations.
Measured fit cost (``fit_model`` on the first 100,000 candles of
``sample_market(bars=200000, seed=3)``, one thread, features included, on a shared 2-core
machine): 2.9 s (max_depth=2) / 4.6 s (max_depth=3).
"""

from sklearn.ensemble import GradientBoostingRegressor

from distillbt.strategy import ModelStrategy


class GBRReturn(ModelStrategy):
    """GradientBoostingRegressor on the 6-candle return; max_depth × allow_short grid."""

    params = (("max_depth", 3), ("long_threshold", 0.1), ("short_threshold", -0.1))
    grid = {"max_depth": [2, 3], "allow_short": [True, False]}
    feature_options = {"return_lags": (1, 5, 15, 60), "vol_windows": (15, 60),
                       "ma_windows": (15, 60, 240)}
    features = ("ret_1", "ret_5", "ret_15", "ret_60", "vol_15", "vol_60", "vol_ratio_15_60",
                "ma_dist_15", "ma_dist_60", "ma_dist_240")
    target = "return"
    horizon = 6

    def make_estimator(self):
        return GradientBoostingRegressor(n_estimators=50, learning_rate=0.1,
                                         max_depth=self.p.max_depth, subsample=0.4,
                                         max_features=0.5, random_state=0)
