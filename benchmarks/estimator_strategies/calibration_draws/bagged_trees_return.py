"""Row-draw calibration set: bagged regression trees on the 3-candle return (scikit-learn).

``sklearn.ensemble.BaggingRegressor`` of 12 trees of depth 5, each on a 30 % bootstrap draw of
the rows, ``min_samples_leaf`` 100 or 800. Part of
``benchmarks/estimator_strategies/calibration_draws`` (see ``bagged_trees_direction.py``).
Measured cost of one fit on 100k rows × 6 features, one core: 0.4–0.5 s.
"""

from sklearn.ensemble import BaggingRegressor
from sklearn.tree import DecisionTreeRegressor

from distillbt.strategy import ModelStrategy


class BaggedTreesReturn(ModelStrategy):
    """Bagged regression trees on returns and channel position; leaf × threshold
    (4 configurations), long-only."""

    params = (("min_leaf", 100), ("long_threshold", 0.02), ("allow_short", False))
    grid = {"min_leaf": [100, 800], "long_threshold": [0.02, 0.06]}
    features = ("ret_1", "ret_2", "ret_8", "vol_16", "ma_dist_64", "volume_ratio_16")
    target = "return"
    horizon = 3

    def make_estimator(self):
        tree = DecisionTreeRegressor(max_depth=5, min_samples_leaf=self.p.min_leaf, random_state=0)
        return BaggingRegressor(estimator=tree, n_estimators=12, max_samples=0.3, random_state=0, n_jobs=1)
