"""Check set: a scaled SGD classifier on the direction over the next 4 candles (scikit-learn).

``sklearn.pipeline.Pipeline`` of ``StandardScaler`` and ``SGDClassifier`` (log loss or
modified Huber loss, both give probabilities; ``random_state=0``) on whether the log return
over the next ``horizon = 4`` candles is positive (the screen distils a set with 4-candle
targets for it).

Part of ``benchmarks/estimator_strategies/check``. Measured cost of one fit on 100k rows ×
6 features, one core: 0.08–0.35 s.
"""

from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from distillbt.strategy import ModelStrategy


class ScaledSGDH4(ModelStrategy):
    """StandardScaler + SGDClassifier on 4-candle direction; loss × alpha × threshold grid,
    long-short (8 configurations)."""

    params = (("loss", "log_loss"), ("alpha", 1e-3), ("long_threshold", 0.51),
              ("short_threshold", 0.49))
    grid = {"loss": ["log_loss", "modified_huber"], "alpha": [1e-3, 1e-1],
            "long_threshold": [0.51, 0.54]}
    features = ("ret_4", "ret_16", "ret_32", "ma_dist_64", "ma_dist_256", "volume_ratio_96")
    target = "direction"
    horizon = 4

    def make_estimator(self):
        return Pipeline([
            ("scale", StandardScaler()),
            ("sgd", SGDClassifier(loss=self.p.loss, alpha=self.p.alpha, max_iter=200, tol=1e-3,
                                  random_state=0)),
        ])
