"""Calibration set: k nearest neighbours on the next candle's direction (scikit-learn).

``sklearn.neighbors.KNeighborsClassifier`` with 50 or 200 neighbours on four standardised
features: the probability of an up move is the share of up moves among the neighbours, so
predictions are multiples of 1/k. A fit only builds a search tree; the cost is in predicting.

Part of ``benchmarks/estimator_strategies/calibration``. Measured cost on 100k training rows
× 4 features, one core: fit 0.05–0.08 s; predicting 100k candles 2.7–4 s with 50
neighbours and 9.6–10.5 s with 200 (a model fitted on a coreset of a few thousand rows
predicts far faster).
"""

from sklearn.neighbors import KNeighborsClassifier

from distillbt.strategy import ModelStrategy


class NeighboursDirection(ModelStrategy):
    """k-NN on short returns, a volatility ratio and an MA distance; k × threshold grid,
    long-only and long-short (4 configurations)."""

    params = (("n_neighbors", 50), ("long_threshold", 0.52), ("short_threshold", 0.46),
              ("allow_short", True))
    grid = {"n_neighbors": [50, 200], "allow_short": [False, True]}
    features = ("ret_1", "ret_4", "vol_ratio_16_96", "ma_dist_16")
    target = "direction"
    horizon = 1

    def make_estimator(self):
        return KNeighborsClassifier(n_neighbors=self.p.n_neighbors)
