"""Check set: extremely randomised trees on the next candle's direction (scikit-learn).

``sklearn.ensemble.ExtraTreesClassifier``: 20 trees with random split points, depth 5 or 8,
at least 50 or 300 rows per leaf, ``random_state=0``, ``n_jobs=1``, on volatility, range and
candle-shape features that no calibration strategy uses together.

Part of ``benchmarks/estimator_strategies/check``: configurations the screen's trust in
scikit-learn estimators is checked on after being calibrated on ``calibration/``. Measured
cost of one fit on 100k rows × 8 features, one core: 0.15–0.25 s.
"""

from sklearn.ensemble import ExtraTreesClassifier

from distillbt.strategy import ModelStrategy


class ExtraTreesDirection(ModelStrategy):
    """Extra trees on returns, volatilities, range, body and volume; depth × leaf size ×
    threshold grid, long-short (8 configurations)."""

    params = (("max_depth", 5), ("min_samples_leaf", 50), ("long_threshold", 0.505),
              ("short_threshold", 0.495))
    grid = {"max_depth": [5, 8], "min_samples_leaf": [50, 300], "long_threshold": [0.505, 0.51]}
    features = ("ret_1", "ret_8", "ret_32", "vol_16", "vol_96", "hl_range", "body",
                "volume_ratio_16")
    target = "direction"
    horizon = 1

    def make_estimator(self):
        return ExtraTreesClassifier(n_estimators=20, max_depth=self.p.max_depth,
                                    min_samples_leaf=self.p.min_samples_leaf,
                                    random_state=0, n_jobs=1)
