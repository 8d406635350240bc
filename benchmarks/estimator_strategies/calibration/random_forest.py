"""Calibration set: a small random forest on the next candle's direction (scikit-learn).

``sklearn.ensemble.RandomForestClassifier`` with 30 trees, each grown on 40 % of the rows
(``max_samples``), depth 3 or 6, at least 100 rows per leaf; ``random_state=0`` and
``n_jobs=1`` so a fit is reproducible and takes one core. Trees are not linear in the
features: the screen fits them on a coreset of real rows, not on moment-matching points.

Part of ``benchmarks/estimator_strategies/calibration``. Measured cost of one fit on 100k
rows × 8 features, one core: 1.5–1.8 s at depth 6, 1.0–1.4 s at depth 3.
"""

from sklearn.ensemble import RandomForestClassifier

from distillbt.strategy import ModelStrategy


class RandomForestDirection(ModelStrategy):
    """Random forest on returns, volatility, volume and MA distances; depth × threshold grid,
    long-short (4 configurations)."""

    params = (("max_depth", 6), ("long_threshold", 0.51), ("short_threshold", 0.49))
    grid = {"max_depth": [3, 6], "long_threshold": [0.51, 0.53]}
    features = ("ret_1", "ret_4", "ret_16", "vol_16", "vol_ratio_16_96", "volume_z_16",
                "ma_dist_16", "ma_dist_64")
    target = "direction"
    horizon = 1

    def make_estimator(self):
        return RandomForestClassifier(n_estimators=30, max_depth=self.p.max_depth,
                                      min_samples_leaf=100, max_samples=0.4,
                                      random_state=0, n_jobs=1)
