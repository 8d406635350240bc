"""Calibration set: stochastic gradient boosting on the next candle's direction (scikit-learn).

``sklearn.ensemble.GradientBoostingClassifier`` with 30 trees of depth 2 or 3, each fitted on
half the rows (``subsample=0.5``), ``random_state=0``. Written to calibrate how the screen
fits estimators that *draw rows* for each tree on distilled points (added after the check set
showed the question; its features and settings are not the check set's).

Part of ``benchmarks/estimator_strategies/calibration``. Measured cost of one ``fit_model``
on 100k candles (features included), one core: 2.7 s at depth 2, 4.1 s at depth 3.
"""

from sklearn.ensemble import GradientBoostingClassifier

from distillbt.strategy import ModelStrategy


class StochasticBoostDirection(ModelStrategy):
    """Gradient boosting on returns, volatility, volume and an MA distance; depth × threshold
    grid, long-short (4 configurations)."""

    params = (("max_depth", 2), ("long_threshold", 0.51), ("short_threshold", 0.49))
    grid = {"max_depth": [2, 3], "long_threshold": [0.51, 0.53]}
    features = ("ret_1", "ret_4", "ret_16", "vol_16", "volume_z_96", "ma_dist_64")
    target = "direction"
    horizon = 1

    def make_estimator(self):
        return GradientBoostingClassifier(n_estimators=30, max_depth=self.p.max_depth,
                                          learning_rate=0.1, subsample=0.5, random_state=0)
