"""Check set: one decision tree on the next candle's direction (scikit-learn).

``sklearn.tree.DecisionTreeClassifier`` of depth 4 or 8 with large leaves (200 or 1000 rows),
``random_state=0``: a single tree's probabilities are its leaves' shares of up moves, a
handful of distinct values, so many bars sit exactly on a leaf's value.

Part of ``benchmarks/estimator_strategies/check``. Measured cost of one fit on 100k rows ×
6 features, one core: 0.5–0.65 s at depth 8, 0.3 s at depth 4.
"""

from sklearn.tree import DecisionTreeClassifier

from distillbt.strategy import ModelStrategy


class TreeDirection(ModelStrategy):
    """Decision tree on returns, wicks and a volume ratio; depth × leaf size × threshold grid,
    long-short (8 configurations)."""

    params = (("max_depth", 4), ("min_samples_leaf", 1000), ("long_threshold", 0.51),
              ("short_threshold", 0.49))
    grid = {"max_depth": [4, 8], "min_samples_leaf": [200, 1000],
            "long_threshold": [0.505, 0.53]}
    features = ("ret_1", "ret_4", "ret_16", "upper_wick", "lower_wick", "volume_ratio_96")
    target = "direction"
    horizon = 1

    def make_estimator(self):
        return DecisionTreeClassifier(max_depth=self.p.max_depth,
                                      min_samples_leaf=self.p.min_samples_leaf, random_state=0)
