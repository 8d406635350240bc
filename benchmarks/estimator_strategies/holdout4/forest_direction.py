"""Random forest classifier on the direction of the next few candles.

A ``RandomForestClassifier`` of 30 trees, each grown on a 25 % bootstrap sample with
``sqrt`` features per split and large leaves (``min_samples_leaf`` of 250 or 1000 rows, so a
leaf averages many candles instead of memorising noise). It learns whether the return over
the next ``horizon`` candles (3 or 8, a param here) is positive from return lags,
moving-average distances, volatility and candle shape. Long when the predicted probability
of an up move is above 0.53, short below 0.47.

Grid: ``min_samples_leaf`` in {250, 1000} × ``horizon`` in {3, 8} — 4 configurations, 4 fits.
"""

from sklearn.ensemble import RandomForestClassifier

from distillbt.strategy import ModelStrategy


class ForestDirection(ModelStrategy):
    """RandomForestClassifier on 3/8-candle direction; leaf size × horizon grid."""

    params = (("min_samples_leaf", 500), ("horizon", 3),
              ("long_threshold", 0.53), ("short_threshold", 0.47))
    grid = {"min_samples_leaf": [250, 1000], "horizon": [3, 8]}
    features = ("ret_1", "ret_4", "ret_16", "ma_dist_16", "ma_dist_64", "vol_16",
                "vol_ratio_16_96", "body")
    target = "direction"

    def make_estimator(self):
        return RandomForestClassifier(
            n_estimators=30,
            min_samples_leaf=self.p.min_samples_leaf,
            max_features="sqrt",
            max_samples=0.25,
            n_jobs=1,
            random_state=42,
        )
