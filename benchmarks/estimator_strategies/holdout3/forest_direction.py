"""Long-only random forest on the 4-candle direction.

``RandomForestClassifier(n_estimators=50, max_depth, min_samples_leaf=50,
max_features="sqrt", max_samples=0.2)`` (each tree on a 20 % bootstrap sample: 100 trees on
every row took ~30 s a fit here) on return lags, volatility, volume and moving-average features
(default windows). Target: whether the log return over the next 4 candles is positive.
Long while the forest's probability of an up move is above ``long_threshold``, flat
otherwise.

Grid: max_depth [5, 10] × long_threshold [0.5, 0.52, 0.55] = 6 configurations.
Measured fit cost (``fit_model`` on the first 100,000 candles of
``sample_market(bars=200000, seed=3)``, one thread, features included, on a shared 2-core
machine): 2.0 s (max_depth=5) / 3.4 s (max_depth=10).
"""

from sklearn.ensemble import RandomForestClassifier

from distillbt.strategy import ModelStrategy


class ForestDirection(ModelStrategy):
    """RandomForestClassifier on the 4-candle direction, long-only; depth × threshold grid."""

    params = (("max_depth", 5), ("long_threshold", 0.52), ("allow_short", False))
    grid = {"max_depth": [5, 10], "long_threshold": [0.5, 0.52, 0.55]}
    features = ("ret_1", "ret_4", "ret_16", "ret_32", "vol_16", "vol_ratio_16_96",
                "volume_z_16", "ma_dist_16", "ma_dist_64", "ma_dist_256")
    target = "direction"
    horizon = 4

    def make_estimator(self):
        return RandomForestClassifier(n_estimators=50, max_depth=self.p.max_depth,
                                      min_samples_leaf=50, max_features="sqrt",
                                      max_samples=0.2, random_state=0)
