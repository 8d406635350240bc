"""Long-only histogram gradient boosting on the direction of the next 12 candles.

A ``HistGradientBoostingClassifier`` (shallow trees of at most 15 leaves, at least 200 rows
a leaf, L2 regularisation, early stopping on a 10 % validation split) learns whether the
return over the next ``horizon = 12`` candles is positive from trend features (longer return
lags and moving-average distances) and volatility. A slow target for a long-or-flat rule:
long while the probability of an up move is above ``long_threshold``, flat otherwise.

Grid: ``learning_rate`` in {0.03, 0.1} × ``long_threshold`` in {0.5, 0.53, 0.56} —
6 configurations, 2 fits.
"""

from sklearn.ensemble import HistGradientBoostingClassifier

from distillbt.strategy import ModelStrategy


class HGBTrendLong(ModelStrategy):
    """HistGradientBoostingClassifier on 12-candle direction, long only; lr × threshold grid."""

    params = (("learning_rate", 0.05), ("long_threshold", 0.53), ("allow_short", False))
    grid = {"learning_rate": [0.03, 0.1], "long_threshold": [0.5, 0.53, 0.56]}
    features = ("ret_4", "ret_16", "ret_32", "ma_dist_16", "ma_dist_64", "ma_dist_256",
                "vol_96", "vol_ratio_16_96")
    target = "direction"
    horizon = 12

    def make_estimator(self):
        return HistGradientBoostingClassifier(
            learning_rate=self.p.learning_rate,
            max_iter=120,
            max_leaf_nodes=15,
            min_samples_leaf=200,
            l2_regularization=1.0,
            early_stopping=True,
            validation_fraction=0.1,
            n_iter_no_change=15,
            random_state=0,
        )
