"""Nearest-neighbour regression of the next candle's return on four features.

``KNeighborsRegressor`` averages the next-candle returns (in standard deviations) of the
``n_neighbors`` past candles that looked most alike in the standardised space of four
features: the last return, the 8-candle return, the 16-candle moving-average distance and
the volatility ratio. Few features keep the neighbour search affordable and the distances
meaningful. Long above ``long_threshold``, short below ``short_threshold`` (fixed at -0.04).

Grid: ``n_neighbors`` in {25, 100} × ``long_threshold`` in {0.02, 0.06} — 4 configurations,
2 fits.
"""

from sklearn.neighbors import KNeighborsRegressor

from distillbt.strategy import ModelStrategy


class KNNReturns(ModelStrategy):
    """KNeighborsRegressor on next-candle returns; neighbours × long threshold grid."""

    params = (("n_neighbors", 50), ("long_threshold", 0.04), ("short_threshold", -0.04))
    grid = {"n_neighbors": [25, 100], "long_threshold": [0.02, 0.06]}
    features = ("ret_1", "ret_8", "ma_dist_16", "vol_ratio_16_96")
    target = "return"
    horizon = 1

    def make_estimator(self):
        return KNeighborsRegressor(n_neighbors=self.p.n_neighbors, weights="uniform",
                                   algorithm="kd_tree", leaf_size=40)
