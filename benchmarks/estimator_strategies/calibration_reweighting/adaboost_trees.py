"""AdaBoost of shallow trees on the next candle's direction (calibrates the reweighting rule).

``AdaBoostClassifier`` (SAMME) reweights every training row by whether the previous trees got
*its own* label right, round after round. Written to decide how the screen fits such
estimators, not to trade well: depth-1 or depth-2 trees, 8 or 25 rounds, two thresholds.

Grid: max_depth [1, 2] × n_estimators [8, 25] × long_threshold [0.51, 0.54] = 8
configurations, 4 fits.
"""

from sklearn.ensemble import AdaBoostClassifier
from sklearn.tree import DecisionTreeClassifier

from distillbt.strategy import ModelStrategy


class AdaBoostTrees(ModelStrategy):
    """AdaBoostClassifier of shallow trees on direction; depth × rounds × threshold grid."""

    params = (("max_depth", 1), ("n_estimators", 8), ("long_threshold", 0.51), ("short_threshold", 0.49))
    grid = {"max_depth": [1, 2], "n_estimators": [8, 25], "long_threshold": [0.51, 0.54]}
    features = ("ret_1", "ret_2", "ret_8", "ma_dist_16", "vol_ratio_16_96", "upper_wick", "volume_z_16")
    target = "direction"
    horizon = 2

    def make_estimator(self):
        tree = DecisionTreeClassifier(max_depth=self.p.max_depth, min_samples_leaf=300, random_state=0)
        return AdaBoostClassifier(estimator=tree, n_estimators=self.p.n_estimators,
                                  learning_rate=0.5, random_state=0)
