"""Long-only ridge regression of the multi-candle return, on custom feature windows.

scikit-learn's ``Ridge(alpha)`` (penalty against the *sum* of squared errors, so alpha 1–100
is light shrinkage on ~100k rows) of the log return over the next ``horizon`` candles
(standardised, as the base class does) on returns over 1, 3, 6, 12 and 24 candles and the
distances to 12-, 48- and 192-candle moving averages (``feature_options`` change the
windows). Long when the predicted return is above ``long_threshold`` = 0.1 standard
deviations, flat otherwise.

Grid: alpha [1.0, 100.0] × horizon [3, 8] = 4 configurations.
Measured fit cost (``fit_model`` on the first 100,000 candles of
``sample_market(bars=200000, seed=3)``, one thread, features included, on a shared 2-core
machine): 0.08–0.10 s.
"""

from sklearn.linear_model import Ridge

from distillbt.strategy import ModelStrategy


class RidgeMultiHorizon(ModelStrategy):
    """sklearn Ridge on multi-candle returns, long-only; alpha × horizon grid."""

    params = (("alpha", 1.0), ("horizon", 3), ("long_threshold", 0.1), ("allow_short", False))
    grid = {"alpha": [1.0, 100.0], "horizon": [3, 8]}
    feature_options = {"return_lags": (1, 3, 6, 12, 24), "ma_windows": (12, 48, 192)}
    features = ("ret_1", "ret_3", "ret_6", "ret_12", "ret_24",
                "ma_dist_12", "ma_dist_48", "ma_dist_192", "vol_ratio_16_96")
    target = "return"

    def make_estimator(self):
        return Ridge(alpha=self.p.alpha)
