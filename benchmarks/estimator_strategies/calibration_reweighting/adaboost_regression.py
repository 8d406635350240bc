"""AdaBoost.R2 of regression trees on the 4-candle return (calibrates the reweighting rule).

``AdaBoostRegressor`` draws each round's rows in proportion to weights it raises on the rows
whose *own* target the previous trees missed most. Written to decide how the screen fits such
estimators, not to trade well.

Grid: n_estimators [5, 15] × loss ["linear", "square"] = 4 configurations, 4 fits.
"""

from sklearn.ensemble import AdaBoostRegressor
from sklearn.tree import DecisionTreeRegressor

from distillbt.strategy import ModelStrategy


class AdaBoostReturn(ModelStrategy):
    """AdaBoostRegressor of depth-3 trees on the 4-candle return; rounds × loss grid."""

    params = (("n_estimators", 5), ("loss", "linear"), ("long_threshold", 0.05), ("short_threshold", -0.05))
    grid = {"n_estimators": [5, 15], "loss": ["linear", "square"]}
    features = ("ret_1", "ret_4", "ret_16", "ma_dist_64", "vol_16", "volume_ratio_16")
    target = "return"
    horizon = 4

    def make_estimator(self):
        tree = DecisionTreeRegressor(max_depth=3, min_samples_leaf=300, random_state=0)
        return AdaBoostRegressor(estimator=tree, n_estimators=self.p.n_estimators, loss=self.p.loss,
                                 learning_rate=0.5, random_state=0)
