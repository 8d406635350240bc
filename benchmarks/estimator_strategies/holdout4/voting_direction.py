"""Soft-voting ensemble of three different classifiers on the 3-candle direction.

A ``VotingClassifier`` averages the probabilities of a logistic regression, a Gaussian naive
Bayes and a shallow decision tree (depth 4 or 6, a param; at least 500 rows a leaf), so each
model's bias is tempered by the others. The strategy uses its own, faster volatility windows
(``vol_windows = (12, 48)``, hence ``vol_12``, ``vol_ratio_12_48``, and moving-average
distances scaled by ``vol_48``). It learns whether the return over the next ``horizon = 3``
candles is positive. Long above ``long_threshold``, short below 0.46.

Grid: ``tree_depth`` in {4, 6} × ``long_threshold`` in {0.52, 0.55} — 4 configurations,
2 fits.
"""

from sklearn.ensemble import VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.tree import DecisionTreeClassifier

from distillbt.strategy import ModelStrategy


class VotingDirection(ModelStrategy):
    """Soft vote of LogisticRegression, GaussianNB and a DecisionTree; depth × threshold grid."""

    params = (("tree_depth", 5), ("long_threshold", 0.53), ("short_threshold", 0.46))
    grid = {"tree_depth": [4, 6], "long_threshold": [0.52, 0.55]}
    feature_options = {"vol_windows": (12, 48)}
    features = ("ret_1", "ret_4", "ret_16", "vol_12", "vol_ratio_12_48", "ma_dist_16",
                "ma_dist_64", "volume_z_16")
    target = "direction"
    horizon = 3

    def make_estimator(self):
        return VotingClassifier(
            estimators=[
                ("logit", LogisticRegression(C=0.1, max_iter=500)),
                ("nb", GaussianNB()),
                ("tree", DecisionTreeClassifier(max_depth=self.p.tree_depth,
                                                min_samples_leaf=500, random_state=0)),
            ],
            voting="soft",
        )
