"""Histogram gradient boosting regressor (scikit-learn) of the 8-candle return.

Target: log return over the next ``horizon = 8`` candles. Slow features: 8/32-bar returns,
distances from the 64/256-bar averages, 96-bar volatility and volume z-score. 100 boosting
rounds, no early stopping; long above 0.12, short below -0.12 (or long-only).
Cost of one fit on 100,000 rows (features included, one core, OMP_NUM_THREADS=1): 0.27-0.45 s.
"""

from sklearn.ensemble import HistGradientBoostingRegressor

from distillbt.strategy import ModelStrategy


class HgbSwing(ModelStrategy):
    """HistGradientBoostingRegressor, horizon 8; learning rate × leaves × long/short grid."""

    params = (("learning_rate", 0.05), ("max_leaf_nodes", 15), ("long_threshold", 0.12),
              ("short_threshold", -0.12))
    grid = {"learning_rate": [0.03, 0.1], "max_leaf_nodes": [7, 31],
            "allow_short": [True, False]}
    features = ("ret_8", "ret_32", "ma_dist_64", "ma_dist_256", "vol_96", "volume_z_96")
    target = "return"
    horizon = 8

    def make_estimator(self):
        return HistGradientBoostingRegressor(learning_rate=self.p.learning_rate,
                                             max_iter=100,
                                             max_leaf_nodes=self.p.max_leaf_nodes,
                                             min_samples_leaf=200, l2_regularization=1.0,
                                             early_stopping=False, random_state=0)
