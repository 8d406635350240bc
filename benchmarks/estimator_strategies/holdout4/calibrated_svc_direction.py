"""Linear support vector classifier, calibrated to probabilities, on candle direction.

``LinearSVC`` finds a maximum-margin hyperplane between up and down moves over the next
``horizon`` candles (1 or 4, a param here); it has no probabilities of its own, so it is
wrapped in ``CalibratedClassifierCV`` (Platt sigmoid over 3 folds) and the thresholds read
as probabilities of an up move. Features: return lags, moving-average distances, the
high-low range and the wick shares. Long above 0.52, short below 0.48.

Grid: ``C`` in {0.01, 1.0} × ``horizon`` in {1, 4} — 4 configurations, 4 fits.
"""

from sklearn.calibration import CalibratedClassifierCV
from sklearn.svm import LinearSVC

from distillbt.strategy import ModelStrategy


class CalibratedSVCDirection(ModelStrategy):
    """CalibratedClassifierCV(LinearSVC) on 1/4-candle direction; C × horizon grid."""

    params = (("C", 0.1), ("horizon", 1),
              ("long_threshold", 0.52), ("short_threshold", 0.48))
    grid = {"C": [0.01, 1.0], "horizon": [1, 4]}
    features = ("ret_1", "ret_2", "ret_4", "ret_16", "ma_dist_16", "ma_dist_64",
                "hl_range", "upper_wick", "lower_wick")
    target = "direction"

    def make_estimator(self):
        svc = LinearSVC(C=self.p.C, dual=False, max_iter=2000)
        return CalibratedClassifierCV(svc, method="sigmoid", cv=3)
