"""Calibration set: histogram gradient boosting on the next candle's direction (scikit-learn).

``sklearn.ensemble.HistGradientBoostingClassifier`` with at most 50 boosting iterations,
``early_stopping=False`` (scikit-learn's default turns it on above 10k rows and holds out a
random validation split: the fit would then depend on the row count) and ``random_state=0``.
The grid spans tree depth and learning rate.

Part of ``benchmarks/estimator_strategies/calibration``. Measured cost of one fit on 100k
rows × 7 features, one core (``OMP_NUM_THREADS=1``): 0.26–0.45 s; predicting 100k rows:
0.15–0.2 s. Otherwise it starts OpenMP threads at every fit and predict: on a busy 2-core
machine a fit then took 6.4 s (25 times slower) and a one-row predict 5 ms instead of 0.4 ms,
so limit them (``OMP_NUM_THREADS``) when the screen runs fits in parallel.
"""

from sklearn.ensemble import HistGradientBoostingClassifier

from distillbt.strategy import ModelStrategy


class HistBoostDirection(ModelStrategy):
    """Histogram gradient boosting on returns, wicks, volume and MA distances; depth ×
    learning rate × threshold grid, long-short (8 configurations)."""

    params = (("max_depth", 3), ("learning_rate", 0.05), ("long_threshold", 0.51),
              ("short_threshold", 0.49))
    grid = {"max_depth": [3, 5], "learning_rate": [0.05, 0.1], "long_threshold": [0.51, 0.53]}
    features = ("ret_1", "ret_2", "ret_8", "upper_wick", "lower_wick", "volume_ratio_96",
                "ma_dist_16")
    target = "direction"
    horizon = 1

    def make_estimator(self):
        return HistGradientBoostingClassifier(max_iter=50, max_depth=self.p.max_depth,
                                              learning_rate=self.p.learning_rate,
                                              early_stopping=False, random_state=0)
