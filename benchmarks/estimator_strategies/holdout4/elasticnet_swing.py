"""Elastic net regression of the 6-candle return on its own, slower set of windows.

The strategy computes its features with its own ``make_features`` windows: return lags of
1, 3, 6, 12 and 24 candles, volatilities over 24 and 96 candles (hence ``vol_ratio_24_96``)
and moving averages over 24 and 96 candles. An ``ElasticNet`` (mix of L1 and L2 penalties)
predicts the return over the next ``horizon = 6`` candles, in standard deviations; the L1
part can zero out lags that carry nothing. Long above ``long_threshold`` (0.03), short below
``short_threshold`` (-0.03).

Grid: ``alpha`` in {0.0005, 0.005} × ``l1_ratio`` in {0.15, 0.7} — 4 configurations, 4 fits.
"""

from sklearn.linear_model import ElasticNet

from distillbt.strategy import ModelStrategy


class ElasticNetSwing(ModelStrategy):
    """ElasticNet on 6-candle returns with custom windows; alpha × l1_ratio grid."""

    params = (("alpha", 0.001), ("l1_ratio", 0.5),
              ("long_threshold", 0.03), ("short_threshold", -0.03))
    grid = {"alpha": [0.0005, 0.005], "l1_ratio": [0.15, 0.7]}
    feature_options = {
        "return_lags": (1, 3, 6, 12, 24),
        "vol_windows": (24, 96),
        "ma_windows": (24, 96),
    }
    features = ("ret_1", "ret_3", "ret_6", "ret_12", "ret_24", "vol_ratio_24_96",
                "ma_dist_24", "ma_dist_96", "volume_ratio_16")
    target = "return"
    horizon = 6

    def make_estimator(self):
        return ElasticNet(alpha=self.p.alpha, l1_ratio=self.p.l1_ratio, max_iter=5000)
