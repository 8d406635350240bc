"""Nearest-neighbour swing model: KNeighborsRegressor on the 8-candle return.

Averages the scaled 8-candle returns that followed the ``n_neighbors`` most similar past
states (8- and 32-bar returns, distance to the 64-bar average, volatility ratio, long volume
z-score). Many neighbours smooth the noisy target; few react to local patterns. Long above
+0.1 standard deviations, short below -0.1, or long-only.

Fit cost: 0.10–0.17 s for one fit (building the tree; predicting costs more), measured with
``fit_model(sample_market(bars=200000, seed=3), end=100000)``, ~100,000 training rows, one
core.
"""

from sklearn.neighbors import KNeighborsRegressor

from distillbt.strategy import ModelStrategy


class KNNSwing(ModelStrategy):
    """KNeighborsRegressor on the 8-candle return; n_neighbors × long-only grid."""

    params = (("n_neighbors", 200), ("long_threshold", 0.1), ("short_threshold", -0.1))
    grid = {"n_neighbors": [50, 300], "allow_short": [True, False]}
    features = ("ret_8", "ret_32", "ma_dist_64", "vol_ratio_16_96", "volume_z_96")
    target = "return"
    horizon = 8

    def make_estimator(self):
        return KNeighborsRegressor(n_neighbors=self.p.n_neighbors, weights="uniform",
                                   n_jobs=1)
