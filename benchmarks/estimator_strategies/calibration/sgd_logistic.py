"""Calibration set: logistic regression by stochastic gradient descent (scikit-learn).

``sklearn.linear_model.SGDClassifier(loss="log_loss")`` on the next candle's direction. Its
``alpha`` multiplies the penalty of a *mean* loss (unlike ``LogisticRegression``'s ``C``), and
its solution depends on the order of the rows and on ``random_state`` (fixed here), so it is a
linear model whose fit is not a pure function of the rows' moments.

Part of ``benchmarks/estimator_strategies/calibration``. Measured cost of one fit on 100k
rows × 7 features, one core: 0.12–0.2 s (stops after ~10 epochs at ``tol=1e-3``).
"""

from sklearn.linear_model import SGDClassifier

from distillbt.strategy import ModelStrategy


class SGDLogistic(ModelStrategy):
    """SGD logistic regression on returns, a volume ratio and MA distances; alpha ×
    threshold grid, long-short (4 configurations)."""

    params = (("alpha", 1e-3), ("long_threshold", 0.51), ("short_threshold", 0.49))
    grid = {"alpha": [1e-3, 1e-2], "long_threshold": [0.51, 0.53]}
    features = ("ret_1", "ret_2", "ret_8", "ret_32", "volume_ratio_16", "ma_dist_16",
                "ma_dist_64")
    target = "direction"
    horizon = 1

    def make_estimator(self):
        return SGDClassifier(loss="log_loss", alpha=self.p.alpha, max_iter=200, tol=1e-3,
                             random_state=0)
