"""Bagged decision trees on candle shape for the next candle's direction, long-only.

A BaggingClassifier of 10 decision trees, each on a 30 % bootstrap sample of the rows and a
random 70 % of the features (random subspaces), reads the last candle's wicks and range, the
1- and 2-bar returns and the volume ratio: a "price-action" classifier.
The averaged tree probabilities are the chance of an up candle; long above
``long_threshold``, flat otherwise.

Fit cost: 0.50–0.53 s (max_depth 3) to 0.71–0.74 s (max_depth 5) for one fit, measured with
``fit_model(sample_market(bars=200000, seed=3), end=100000)``, ~100,000 training rows, one
core.
"""

from sklearn.ensemble import BaggingClassifier
from sklearn.tree import DecisionTreeClassifier

from distillbt.strategy import ModelStrategy


class BaggedTreesDirection(ModelStrategy):
    """BaggingClassifier(DecisionTreeClassifier) on direction; depth × threshold grid."""

    params = (("max_depth", 4), ("long_threshold", 0.52), ("allow_short", False))
    grid = {"max_depth": [3, 5], "long_threshold": [0.52, 0.55]}
    features = ("ret_1", "ret_2", "upper_wick", "lower_wick", "hl_range", "volume_ratio_16")
    target = "direction"
    horizon = 1

    def make_estimator(self):
        tree = DecisionTreeClassifier(max_depth=self.p.max_depth, min_samples_leaf=200,
                                      random_state=0)
        return BaggingClassifier(estimator=tree, n_estimators=10, max_samples=0.3,
                                 max_features=0.7, n_jobs=1, random_state=0)
