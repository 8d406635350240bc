"""LightGBM on the next 2 candles' direction (calibrates where histogram boosting is fitted).

``LGBMClassifier`` bins its rows once and grows leaf-wise trees from histograms, as
scikit-learn's histogram boosting does. Written to decide how the screen fits such
estimators, not to trade well. One thread (``n_jobs=1``), so the full backtests' workers do
not oversubscribe the cores.

Grid: num_leaves [15, 63] × learning_rate [0.03, 0.1] × long_threshold [0.51, 0.53] = 8
configurations, 4 fits.
"""

from lightgbm import LGBMClassifier

from distillbt.strategy import ModelStrategy


class LGBMDirection(ModelStrategy):
    """LGBMClassifier on direction; leaves × learning rate × threshold grid."""

    params = (("num_leaves", 31), ("learning_rate", 0.05), ("long_threshold", 0.52), ("short_threshold", 0.48))
    grid = {"num_leaves": [15, 63], "learning_rate": [0.03, 0.1], "long_threshold": [0.51, 0.53]}
    features = ("ret_1", "ret_2", "ret_8", "ret_32", "ma_dist_16", "ma_dist_64", "vol_ratio_16_96",
                "volume_z_16", "body", "lower_wick")
    target = "direction"
    horizon = 2

    def make_estimator(self):
        return LGBMClassifier(n_estimators=150, num_leaves=self.p.num_leaves, learning_rate=self.p.learning_rate,
                              min_child_samples=200, subsample=1.0, n_jobs=1, random_state=0, verbose=-1)
