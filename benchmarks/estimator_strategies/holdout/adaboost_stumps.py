"""AdaBoost of decision stumps on the next candle's direction.

An AdaBoostClassifier of depth-1 trees (a few rounds only: each stump is a full sort of
100k rows, and the fit has to stay cheap) on the 1-, 4- and 16-bar returns, the volatility
ratio, the candle body and the short volume z-score. Boosted probabilities are poorly
calibrated and spread wide, so the thresholds are wide too: long above 0.75, short below 0.25.

Fit cost: 0.59–0.77 s (6 rounds) to 1.17–1.29 s (12 rounds) for one fit, measured with
``fit_model(sample_market(bars=200000, seed=3), end=100000)``, ~100,000 training rows, one
core.
"""

from sklearn.ensemble import AdaBoostClassifier
from sklearn.tree import DecisionTreeClassifier

from distillbt.strategy import ModelStrategy


class AdaBoostStumps(ModelStrategy):
    """AdaBoostClassifier of stumps on direction; rounds × learning rate grid."""

    params = (("n_estimators", 10), ("learning_rate", 0.5), ("long_threshold", 0.75),
              ("short_threshold", 0.25))
    grid = {"n_estimators": [6, 12], "learning_rate": [0.2, 1.0]}
    features = ("ret_1", "ret_4", "ret_16", "vol_ratio_16_96", "body", "volume_z_16")
    target = "direction"
    horizon = 1

    def make_estimator(self):
        stump = DecisionTreeClassifier(max_depth=1, min_samples_leaf=100, random_state=0)
        return AdaBoostClassifier(estimator=stump, n_estimators=self.p.n_estimators,
                                  learning_rate=self.p.learning_rate, random_state=0)
