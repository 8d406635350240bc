"""Row-dependent defaults calibration set: histogram boosting classification with defaults.

``sklearn.ensemble.HistGradientBoostingClassifier`` with scikit-learn's defaults but the depth
(``early_stopping="auto"``, see ``hgb_default_return.py``), on the 4-candle direction. Measured
cost of one fit on 100k rows × 6 features, one core: 0.3–1.0 s.
"""

from sklearn.ensemble import HistGradientBoostingClassifier

from distillbt.strategy import ModelStrategy


class HGBDefaultDirection(ModelStrategy):
    """Default histogram boosting on the 4-candle direction; depth × threshold
    (4 configurations), long-only."""

    params = (("max_depth", 3), ("long_threshold", 0.52), ("allow_short", False))
    grid = {"max_depth": [3, 6], "long_threshold": [0.51, 0.54]}
    features = ("ret_1", "ret_2", "ret_8", "vol_ratio_16_96", "ma_dist_64", "volume_ratio_16")
    target = "direction"
    horizon = 4

    def make_estimator(self):
        return HistGradientBoostingClassifier(max_depth=self.p.max_depth, random_state=0)
