"""Check set: small (exact) gradient boosting on the next candle's direction (scikit-learn).

``sklearn.ensemble.GradientBoostingClassifier`` with 30 trees of depth 2 or 3, each fitted on
30 % of the rows (``subsample``) with half the features per split, ``random_state=0``.
Exact split search is slow on many rows, hence the subsampling.

Part of ``benchmarks/estimator_strategies/check``. Measured cost of one fit on 100k rows ×
7 features, one core: 1.25–1.6 s at depth 3, 0.9–1.3 s at depth 2.
"""

from sklearn.ensemble import GradientBoostingClassifier

from distillbt.strategy import ModelStrategy


class BoostDirection(ModelStrategy):
    """Gradient boosting on returns, volume, range and MA distances; depth × learning rate ×
    threshold grid, long-short (8 configurations)."""

    params = (("max_depth", 2), ("learning_rate", 0.1), ("long_threshold", 0.51),
              ("short_threshold", 0.49))
    grid = {"max_depth": [2, 3], "learning_rate": [0.05, 0.2], "long_threshold": [0.51, 0.53]}
    features = ("ret_1", "ret_2", "ret_16", "volume_z_16", "hl_range", "ma_dist_16",
                "ma_dist_256")
    target = "direction"
    horizon = 1

    def make_estimator(self):
        return GradientBoostingClassifier(n_estimators=30, max_depth=self.p.max_depth,
                                          learning_rate=self.p.learning_rate, subsample=0.3,
                                          max_features=0.5, random_state=0)
