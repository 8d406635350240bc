"""XGBoost (histogram trees) on the 4-candle return (calibrates where histogram boosting is
fitted).

``XGBRegressor(tree_method="hist")`` bins its rows once, as scikit-learn's histogram boosting
does. Written to decide how the screen fits such estimators, not to trade well. One thread.

Grid: max_depth [3, 6] × long_threshold [0.03, 0.08] = 4 configurations, 2 fits.
"""

from xgboost import XGBRegressor

from distillbt.strategy import ModelStrategy


class XGBReturn(ModelStrategy):
    """XGBRegressor (hist) on the 4-candle return; depth × threshold grid."""

    params = (("max_depth", 4), ("long_threshold", 0.05), ("short_threshold", -0.05))
    grid = {"max_depth": [3, 6], "long_threshold": [0.03, 0.08]}
    features = ("ret_1", "ret_4", "ret_16", "ma_dist_64", "vol_16", "volume_ratio_16")
    target = "return"
    horizon = 4

    def make_estimator(self):
        return XGBRegressor(n_estimators=150, max_depth=self.p.max_depth, learning_rate=0.05,
                            min_child_weight=200, tree_method="hist", n_jobs=1, random_state=0)
