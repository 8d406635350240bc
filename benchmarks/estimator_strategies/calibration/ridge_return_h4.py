"""Calibration set: ridge regression on the return over the next 4 candles (scikit-learn).

``sklearn.linear_model.Ridge`` learns the 4-candle log return divided by its standard
deviation over the training rows (distillbt's ``target = "return"`` convention), so the
thresholds are in those standard deviations. ``alpha`` is scikit-learn's: a penalty weighed
against the *sum* of squared errors, so 10 barely shrinks on 100k rows and 10⁵ shrinks a lot.
The only calibration strategy with ``horizon = 4`` (the screen distils a set with 4-candle
targets for it).

Part of ``benchmarks/estimator_strategies/calibration``. Measured cost of one fit on 100k
rows × 6 features, one core: ≤ 0.01 s.
"""

from sklearn.linear_model import Ridge

from distillbt.strategy import ModelStrategy


class RidgeReturnH4(ModelStrategy):
    """Ridge on 4-candle returns; alpha × long threshold × long-only/long-short grid
    (8 configurations)."""

    params = (("alpha", 10.0), ("long_threshold", 0.02), ("short_threshold", -0.02),
              ("allow_short", True))
    grid = {"alpha": [10.0, 1e5], "long_threshold": [0.0, 0.04], "allow_short": [False, True]}
    features = ("ret_1", "ret_4", "ret_16", "ma_dist_16", "ma_dist_64", "vol_16")
    target = "return"
    horizon = 4

    def make_estimator(self):
        return Ridge(alpha=self.p.alpha)
