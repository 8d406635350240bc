"""Histogram gradient boosting on the 2-candle return.

A HistGradientBoostingRegressor (150 rounds, no early stopping, L2 leaf penalty 1.0, at least
200 rows per leaf) on returns, moving-average distances, short volatility, long-window volume
z-score and the lower wick. The target is the scaled log return over the next ``horizon = 2``
candles. Learning rate and leaf count trade off how much of the noise the boosting chases.
Long above +0.1, short below -0.1 (standard deviations).

Fit cost: 0.43–0.70 s (7 or 15 leaves) to 0.74–1.00 s (31 leaves) for one fit, measured with
``fit_model(sample_market(bars=200000, seed=3), end=100000)``, ~100,000 training rows, one
core.
"""

from sklearn.ensemble import HistGradientBoostingRegressor

from distillbt.strategy import ModelStrategy


class HistGBReturn(ModelStrategy):
    """HistGradientBoostingRegressor on the 2-candle return; learning rate × leaves grid."""

    params = (("learning_rate", 0.05), ("max_leaf_nodes", 15), ("long_threshold", 0.1),
              ("short_threshold", -0.1))
    grid = {"learning_rate": [0.03, 0.1], "max_leaf_nodes": [7, 15, 31]}
    features = ("ret_1", "ret_2", "ret_8", "ma_dist_16", "ma_dist_64", "vol_16", "volume_z_96",
                "lower_wick")
    target = "return"
    horizon = 2

    def make_estimator(self):
        return HistGradientBoostingRegressor(
            learning_rate=self.p.learning_rate,
            max_iter=150,
            max_leaf_nodes=self.p.max_leaf_nodes,
            min_samples_leaf=200,
            l2_regularization=1.0,
            early_stopping=False,
            random_state=0,
        )
