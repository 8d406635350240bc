"""LDA or Gaussian naive Bayes on candle shape and volume, long-only.

Two cheap probabilistic classifiers a user might try first: ``LinearDiscriminantAnalysis()``
or ``GaussianNB()`` (``model`` param), on the high–low range, body and wick shares, volume
ratios/z-scores and the last return. Target: whether the next candle closes up. Long while
the probability of an up candle is above ``long_threshold``, flat otherwise.

Grid: model ["lda", "gnb"] × long_threshold [0.52, 0.56] = 4 configurations.
Measured fit cost (``fit_model`` on the first 100,000 candles of
``sample_market(bars=200000, seed=3)``, one thread, features included, on a shared 2-core
machine): 0.10 s (LDA) / 0.13 s (GaussianNB).
"""

from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.naive_bayes import GaussianNB

from distillbt.strategy import ModelStrategy


class CandleShapeClassifier(ModelStrategy):
    """LDA / GaussianNB on candle shape + volume, long-only; model × threshold grid."""

    params = (("model", "lda"), ("long_threshold", 0.52), ("allow_short", False))
    grid = {"model": ["lda", "gnb"], "long_threshold": [0.52, 0.56]}
    features = ("ret_1", "hl_range", "body", "upper_wick", "lower_wick",
                "volume_ratio_16", "volume_z_16", "volume_z_96")
    target = "direction"
    horizon = 1

    def make_estimator(self):
        if self.p.model == "lda":
            return LinearDiscriminantAnalysis()
        if self.p.model == "gnb":
            return GaussianNB()
        raise ValueError(f"model must be 'lda' or 'gnb', not {self.p.model!r}")
