"""Check set: a ridge classifier on the next candle's direction (scikit-learn).

``sklearn.linear_model.RidgeClassifier`` has no ``predict_proba``: the model's prediction is
its predicted class, 0 or 1, so the thresholds sit at 0.5 (long on a predicted up move; short
on a predicted down move when shorting is allowed). ``alpha`` is weighed against a sum of
squared errors over the rows, as ``Ridge``'s.

Part of ``benchmarks/estimator_strategies/check``. Measured cost of one fit on 100k rows ×
6 features, one core: 0.01–0.02 s.
"""

from sklearn.linear_model import RidgeClassifier

from distillbt.strategy import ModelStrategy


class RidgeClassDirection(ModelStrategy):
    """Ridge classifier on long returns, volume z-scores and MA distances; alpha ×
    long-only/long-short grid (6 configurations)."""

    params = (("alpha", 1.0), ("long_threshold", 0.5), ("short_threshold", 0.5),
              ("allow_short", True))
    grid = {"alpha": [1.0, 1e4, 1e6], "allow_short": [False, True]}
    features = ("ret_2", "ret_16", "ret_32", "volume_z_16", "volume_z_96", "ma_dist_256")
    target = "direction"
    horizon = 1

    def make_estimator(self):
        return RidgeClassifier(alpha=self.p.alpha)
