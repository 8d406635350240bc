"""Calibration set: logistic regressions on the next candle's direction (scikit-learn).

Two model strategies trading the probability that the next candle closes up:

- ``LogisticDirection``: ``sklearn.linear_model.LogisticRegression`` on the features
  distillbt standardises (its ``C`` is scikit-learn's: the inverse penalty against a *sum* of
  log losses over the rows);
- ``ScaledLogistic``: ``make_pipeline(StandardScaler(), LogisticRegression(C))`` on other
  features: a pipeline whose scaler is refitted on whatever rows the model is trained on.

Part of ``benchmarks/estimator_strategies/calibration``: configurations the screen's trust
in scikit-learn estimators is calibrated on (``check/`` holds the strategies it is then
checked on). Measured cost of one fit on 100k rows × these features, one core
(``OMP_NUM_THREADS=1``): LogisticRegression 0.02–0.04 s, the pipeline 0.03–0.04 s (0.25–0.3 s
with BLAS threads competing for two busy cores).
"""

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from distillbt.strategy import ModelStrategy


class LogisticDirection(ModelStrategy):
    """LogisticRegression on returns, MA distances and a volatility ratio; C × threshold ×
    long-only/long-short grid (8 configurations)."""

    params = (("C", 1.0), ("long_threshold", 0.505), ("short_threshold", 0.495),
              ("allow_short", True))
    grid = {"C": [1e-4, 1.0], "long_threshold": [0.505, 0.52], "allow_short": [False, True]}
    features = ("ret_1", "ret_2", "ret_4", "ret_16", "ma_dist_16", "ma_dist_64",
                "vol_ratio_16_96")
    target = "direction"
    horizon = 1

    def make_estimator(self):
        return LogisticRegression(C=self.p.C, max_iter=200)


class ScaledLogistic(ModelStrategy):
    """StandardScaler + LogisticRegression pipeline on returns, volume and candle shape;
    C × threshold grid, long-short (4 configurations)."""

    params = (("C", 0.05), ("long_threshold", 0.51), ("short_threshold", 0.49))
    grid = {"C": [2e-4, 5.0], "long_threshold": [0.51, 0.53]}
    features = ("ret_1", "ret_8", "volume_z_16", "body", "hl_range", "ma_dist_256")
    target = "direction"
    horizon = 1

    def make_estimator(self):
        return make_pipeline(StandardScaler(), LogisticRegression(C=self.p.C, max_iter=200))
