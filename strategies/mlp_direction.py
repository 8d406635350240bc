"""A small neural network (one tanh hidden layer) on the direction of the next candle.

The estimator is a scikit-learn-style wrapper around :class:`distillbt.models.MLP` that
trains for about the same number of Adam steps whatever the data size: full batch on a few
hundred distilled points, one pass of mini-batches over a long real training period. A fixed
number of epochs would give the distilled fit a handful of steps and the real fit thousands,
or make the real fit slow. Long above ``long_threshold``, short below ``short_threshold``
(probabilities of an up candle).
"""

import math

from distillbt.models import MLP
from distillbt.strategy import ModelStrategy


class StepBudgetMLP:
    """MLP classifier trained for at least ``steps`` Adam steps on any number of rows."""

    def __init__(self, *, hidden=8, steps=150, batch_size=256, alpha=1e-4, learning_rate=0.01,
                 random_state=0):
        self.hidden = hidden
        self.steps = steps
        self.batch_size = batch_size
        self.alpha = alpha
        self.learning_rate = learning_rate
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        n = len(X)
        batch = None if n <= self.batch_size else self.batch_size
        epochs = self.steps if batch is None else max(1, math.ceil(self.steps * batch / n))
        self.model_ = MLP(task="classification", hidden=self.hidden, alpha=self.alpha,
                          learning_rate=self.learning_rate, epochs=epochs, batch_size=batch,
                          random_state=self.random_state)
        self.model_.fit(X, y, sample_weight=sample_weight)
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(X)

    def predict(self, X):
        return self.model_.predict(X)


class MLPDirection(ModelStrategy):
    """One-hidden-layer network on next-candle direction; hidden × threshold grid."""

    params = (("hidden", 8), ("long_threshold", 0.52), ("short_threshold", 0.48))
    grid = {"hidden": [4, 16], "long_threshold": [0.52, 0.55], "short_threshold": [0.48, 0.45]}
    features = ("ret_1", "ret_2", "ret_4", "ret_8", "ma_dist_16", "ma_dist_64",
                "vol_ratio_16_96", "volume_z_16", "hl_range")
    target = "direction"

    def make_estimator(self):
        return StepBudgetMLP(hidden=self.p.hidden)
