"""Histogram gradient boosting (near-default) on the direction over 2 or 12 candles.

``HistGradientBoostingClassifier(learning_rate, random_state=0)``, everything else at
scikit-learn's defaults (100 iterations, 31 leaves, early stopping on for > 10,000 rows), on
every default feature of ``make_features``. Long above 0.52, short below 0.48.

Grid: learning_rate [0.05, 0.1] × horizon [2, 12] = 4 configurations.
Measured fit cost (``fit_model`` on the first 100,000 candles of
``sample_market(bars=200000, seed=3)``, one thread, features included, on a shared 2-core
machine): 0.7 s (learning_rate=0.1, horizon 2) / 1.4 s (learning_rate=0.05, horizon 12);
early stopping decides the number of iterations.
"""

from sklearn.ensemble import HistGradientBoostingClassifier

from distillbt.strategy import ModelStrategy


class HistBoostingDirection(ModelStrategy):
    """HistGradientBoostingClassifier on all features; learning_rate × horizon grid."""

    params = (("learning_rate", 0.1), ("horizon", 2),
              ("long_threshold", 0.52), ("short_threshold", 0.48))
    grid = {"learning_rate": [0.05, 0.1], "horizon": [2, 12]}
    features = (
        "ret_1", "ret_2", "ret_4", "ret_8", "ret_16", "ret_32",
        "vol_16", "vol_96", "vol_ratio_16_96",
        "volume_ratio_16", "volume_z_16", "volume_ratio_96", "volume_z_96",
        "hl_range", "body", "upper_wick", "lower_wick",
        "ma_dist_16", "ma_dist_64", "ma_dist_256",
    )
    target = "direction"

    def make_estimator(self):
        return HistGradientBoostingClassifier(learning_rate=self.p.learning_rate,
                                              random_state=0)
