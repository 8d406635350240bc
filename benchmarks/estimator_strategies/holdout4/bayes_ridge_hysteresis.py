"""Bayesian ridge on multi-candle returns, traded through a smoothed hysteresis rule.

``BayesianRidge`` estimates its own regularisation from the data and predicts the return
over the next ``horizon`` candles (2 or 5, a param) in standard deviations, from return
lags, moving-average distances, volatility and volume. The strategy replaces the default
threshold rule with its own ``position_rule``: the predictions are smoothed by an
exponential moving average of span ``smooth`` (causal: each bar reads its own and earlier
predictions); a position opens when the smoothed prediction crosses ``entry`` (long) or
``-entry`` (short) and is held until it falls back inside ``±entry / 2`` on its own side —
fewer round trips than a plain threshold. ``smooth`` and ``entry`` act on the rule only, so
configurations differing only in them share one fitted model.

Grid: ``horizon`` in {2, 5} × ``entry`` in {0.04, 0.1} × ``smooth`` in {4, 16} —
8 configurations, 2 fits.
"""

import numpy as np
import pandas as pd
from sklearn.linear_model import BayesianRidge

from distillbt.strategy import RULE_PARAMS, ModelStrategy


class BayesRidgeHysteresis(ModelStrategy):
    """BayesianRidge on 2/5-candle returns with an EMA + hysteresis rule; horizon × rule grid."""

    params = (("horizon", 2), ("entry", 0.05), ("smooth", 8))
    grid = {"horizon": [2, 5], "entry": [0.04, 0.1], "smooth": [4, 16]}
    rule_params = RULE_PARAMS + ("entry", "smooth")
    features = ("ret_1", "ret_2", "ret_8", "ret_32", "ma_dist_16", "ma_dist_256",
                "vol_16", "volume_ratio_96")
    target = "return"

    def make_estimator(self):
        return BayesianRidge(max_iter=300)

    def position_rule(self, prediction):
        pred = np.asarray(prediction, dtype="float64")
        # NaN (feature warm-up) is skipped by the average and leaves the position flat.
        smoothed = pd.Series(pred).ewm(span=self.p.smooth, adjust=False,
                                       ignore_na=True).mean().to_numpy()
        entry, exit_ = float(self.p.entry), float(self.p.entry) / 2.0
        out = np.zeros(len(smoothed))
        state = 0.0
        for i, s in enumerate(smoothed):
            if np.isnan(s):
                state = 0.0
            elif s > entry:
                state = 1.0
            elif s < -entry:
                state = -1.0
            elif (state > 0 and s < exit_) or (state < 0 and s > -exit_):
                state = 0.0
            out[i] = state
        return out
