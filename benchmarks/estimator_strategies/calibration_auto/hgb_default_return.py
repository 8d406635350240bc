"""Row-dependent defaults calibration set: histogram boosting regression as people write it.

``sklearn.ensemble.HistGradientBoostingRegressor`` with scikit-learn's defaults but the learning
rate: ``early_stopping="auto"``, which turns early stopping on above 10,000 rows — on in the
full fit's ~100,000 training rows, off on fewer points. Written, with the other files of
``benchmarks/estimator_strategies/calibration_auto``, to calibrate how the screen resolves an
estimator's choices that depend on how many rows it is given. Measured cost of one fit on 100k
rows × 6 features, one core: 0.3–1.0 s.
"""

from sklearn.ensemble import HistGradientBoostingRegressor

from distillbt.strategy import ModelStrategy


class HGBDefaultReturn(ModelStrategy):
    """Default histogram boosting on 2-candle returns; learning rate × threshold
    (4 configurations), long-short."""

    params = (("learning_rate", 0.1), ("long_threshold", 0.03), ("short_threshold", -0.03),
              ("allow_short", True))
    grid = {"learning_rate": [0.05, 0.2], "long_threshold": [0.0, 0.05]}
    features = ("ret_1", "ret_4", "ret_16", "vol_16", "ma_dist_16", "volume_z_16")
    target = "return"
    horizon = 2

    def make_estimator(self):
        return HistGradientBoostingRegressor(learning_rate=self.p.learning_rate, random_state=0)
