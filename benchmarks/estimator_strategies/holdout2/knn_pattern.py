"""k-nearest-neighbours classifier (scikit-learn): bars that looked like this one.

Four features only (distances need few dimensions): 1- and 4-bar returns, distance from the
16-bar average, volatility ratio. The up-probability is the (weighted) share of up moves among
the ``n_neighbors`` closest training bars; long above 0.56, short below 0.44.
Cost of one fit on 100,000 rows (features included, one core): 0.09-0.11 s (the fit only
builds the tree; predicting is the expensive part).
"""

from sklearn.neighbors import KNeighborsClassifier

from distillbt.strategy import ModelStrategy


class KnnPattern(ModelStrategy):
    """KNeighborsClassifier on next-candle direction; k × weights grid, long-short."""

    params = (("n_neighbors", 100), ("weights", "uniform"), ("long_threshold", 0.56),
              ("short_threshold", 0.44))
    grid = {"n_neighbors": [50, 200], "weights": ["uniform", "distance"]}
    features = ("ret_1", "ret_4", "ma_dist_16", "vol_ratio_16_96")
    target = "direction"

    def make_estimator(self):
        return KNeighborsClassifier(n_neighbors=self.p.n_neighbors, weights=self.p.weights,
                                    n_jobs=1)
