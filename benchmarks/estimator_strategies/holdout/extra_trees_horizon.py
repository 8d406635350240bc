"""Extra-trees regression of the 4-candle return from trend and volatility features.

An ExtraTreesRegressor (30 randomised trees, 60 % of the features per split) on slower
features: 4-, 16- and 32-bar returns, distances to the 64- and 256-bar averages, the long
volatility and the short/long volatility ratio. The target is the log return over the next
``horizon = 4`` candles (scaled). Depth and minimum leaf size set how finely the trees may
carve the feature space. Long above +0.05, short below -0.05 (standard deviations).

Fit cost: 0.24–0.29 s (max_depth 4) to 0.35–0.65 s (max_depth 8) for one fit, measured with
``fit_model(sample_market(bars=200000, seed=3), end=100000)``, ~100,000 training rows, one
core.
"""

from sklearn.ensemble import ExtraTreesRegressor

from distillbt.strategy import ModelStrategy


class ExtraTreesHorizon(ModelStrategy):
    """ExtraTreesRegressor on the 4-candle return; max_depth × min_leaf grid."""

    params = (("max_depth", 6), ("min_leaf", 300), ("long_threshold", 0.05),
              ("short_threshold", -0.05))
    grid = {"max_depth": [4, 8], "min_leaf": [100, 1000]}
    features = ("ret_4", "ret_16", "ret_32", "ma_dist_64", "ma_dist_256", "vol_96",
                "vol_ratio_16_96")
    target = "return"
    horizon = 4

    def make_estimator(self):
        return ExtraTreesRegressor(
            n_estimators=30,
            max_depth=self.p.max_depth,
            min_samples_leaf=self.p.min_leaf,
            max_features=0.6,
            n_jobs=1,
            random_state=0,
        )
