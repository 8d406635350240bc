"""k-nearest neighbours on the 3-candle direction in a small feature space.

``KNeighborsClassifier(n_neighbors, weights)`` on five standardised features (1-, 4- and
16-candle returns, the 64-candle moving-average distance, the volatility ratio): the share of
the k most similar past situations whose next 3 candles went up. Long above 0.53, short
below 0.47.

Grid: n_neighbors [25, 100, 200] × weights ["uniform", "distance"] = 6 configurations.
Measured fit cost (``fit_model`` on the first 100,000 candles of
``sample_market(bars=200000, seed=3)``, one thread, features included, on a shared 2-core
machine): 0.12–0.13 s (the fit builds a tree). Prediction is the cost here:
``predict_proba`` of 5-D points against 100,000 stored rows took ~0.7 s per 20,000 queries
(k=25, uniform) to ~2.7 s (k=200, distance), i.e. ~3.5–13 s per 100,000 backtested bars.
"""

from sklearn.neighbors import KNeighborsClassifier

from distillbt.strategy import ModelStrategy


class KNNDirection(ModelStrategy):
    """KNeighborsClassifier on the 3-candle direction; n_neighbors × weights grid."""

    params = (("n_neighbors", 100), ("weights", "uniform"),
              ("long_threshold", 0.53), ("short_threshold", 0.47))
    grid = {"n_neighbors": [25, 100, 200], "weights": ["uniform", "distance"]}
    features = ("ret_1", "ret_4", "ret_16", "ma_dist_64", "vol_ratio_16_96")
    target = "direction"
    horizon = 3

    def make_estimator(self):
        return KNeighborsClassifier(n_neighbors=self.p.n_neighbors, weights=self.p.weights)
