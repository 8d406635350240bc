"""Check set: a random forest regression of the next candle's return (scikit-learn).

``sklearn.ensemble.RandomForestRegressor`` (20 trees on 40 % of the rows each, half the
features per split, leaves of at least 200 rows, ``random_state=0``, ``n_jobs=1``) learns the
next log return divided by its standard deviation over the training rows (``target =
"return"``); the thresholds are in those standard deviations.

Part of ``benchmarks/estimator_strategies/check``. Measured cost of one fit on 100k rows ×
7 features, one core: 1.5–1.75 s at depth 6, 1.05–1.3 s at depth 4.
"""

from sklearn.ensemble import RandomForestRegressor

from distillbt.strategy import ModelStrategy


class ForestReturn(ModelStrategy):
    """Random forest regression on returns, volatility and MA distances; depth × band ×
    long-only/long-short grid (8 configurations)."""

    params = (("max_depth", 4), ("long_threshold", 0.02), ("short_threshold", -0.02),
              ("allow_short", True))
    grid = {"max_depth": [4, 6], "long_threshold": [0.0, 0.03], "allow_short": [False, True]}
    features = ("ret_1", "ret_2", "ret_4", "ret_8", "vol_ratio_16_96", "ma_dist_16",
                "ma_dist_64")
    target = "return"
    horizon = 1

    def make_estimator(self):
        return RandomForestRegressor(n_estimators=20, max_depth=self.p.max_depth,
                                     min_samples_leaf=200, max_features=0.5, max_samples=0.4,
                                     random_state=0, n_jobs=1)
