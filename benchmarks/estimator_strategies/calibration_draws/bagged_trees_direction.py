"""Row-draw calibration set: bagged decision trees on the 2-candle direction (scikit-learn).

``sklearn.ensemble.BaggingClassifier`` of 12 trees, each fitted on a 25 % bootstrap draw of the
rows, at least 300 rows per leaf. Written, with the other files of
``benchmarks/estimator_strategies/calibration_draws``, to calibrate how the screen fits
ensembles that draw rows for each tree (how many draws, how large a leaf) — not a set any
rule was checked on. Measured cost of one fit on 100k rows × 6 features, one core: 0.3–0.6 s.
"""

from sklearn.ensemble import BaggingClassifier
from sklearn.tree import DecisionTreeClassifier

from distillbt.strategy import ModelStrategy


class BaggedTreesDirection(ModelStrategy):
    """Bagged trees on returns, volatility, volume and an MA distance; depth × threshold
    (4 configurations), long-short."""

    params = (("max_depth", 4), ("long_threshold", 0.52), ("short_threshold", 0.48))
    grid = {"max_depth": [3, 6], "long_threshold": [0.52, 0.55]}
    features = ("ret_1", "ret_4", "ret_16", "vol_16", "volume_z_16", "ma_dist_16")
    target = "direction"
    horizon = 2

    def make_estimator(self):
        tree = DecisionTreeClassifier(max_depth=self.p.max_depth, min_samples_leaf=300, random_state=0)
        return BaggingClassifier(estimator=tree, n_estimators=12, max_samples=0.25, random_state=0, n_jobs=1)
