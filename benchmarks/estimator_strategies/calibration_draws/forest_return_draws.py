"""Row-draw calibration set: a random-forest regression on the next candle's return.

``sklearn.ensemble.RandomForestRegressor`` of 25 trees of depth 8 on 30 % bootstrap draws,
60 % of the features per split, ``min_samples_leaf`` 200 or 1000. Part of
``benchmarks/estimator_strategies/calibration_draws`` (see ``bagged_trees_direction.py``).
Measured cost of one fit on 100k rows × 6 features, one core: 1.0–1.5 s.
"""

from sklearn.ensemble import RandomForestRegressor

from distillbt.strategy import ModelStrategy


class ForestReturnDraws(ModelStrategy):
    """Forest regression on returns, volatility and MA distances; leaf × threshold
    (4 configurations), long-short."""

    params = (("min_leaf", 200), ("long_threshold", 0.0), ("short_threshold", -0.03), ("allow_short", True))
    grid = {"min_leaf": [200, 1000], "long_threshold": [0.0, 0.04]}
    features = ("ret_1", "ret_4", "ret_16", "vol_16", "ma_dist_16", "ma_dist_64")
    target = "return"
    horizon = 1

    def make_estimator(self):
        return RandomForestRegressor(n_estimators=25, max_depth=8, min_samples_leaf=self.p.min_leaf,
                                     max_features=0.6, max_samples=0.3, random_state=0, n_jobs=1)
