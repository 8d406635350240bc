"""A model strategy, written the way you would write your own (used by examples/model_strategy.py).

Why it lives in a file of its own: ``distillbt screen FOLDER`` discovers strategies by reading
the ``.py`` files of a folder, and the processes that run full Backtrader backtests import the
class again from this file. A class defined in a script's ``__main__`` cannot be found that way.
Screen this folder with:

    python -m distillbt screen examples/strategies_demo --validate

A model strategy declares four things; distillbt does the rest (features, fitting on distilled
points or on real candles, the vectorised screen and the Backtrader run):

1. **features** — names of columns of ``distillbt.features.make_features`` (see its docstring
   for the list: ``ret_<lag>``, ``vol_<w>``, ``vol_ratio_16_96``, ``volume_z_<w>``,
   ``hl_range``, ``body``, ``ma_dist_<w>``...). They are standardised for the estimator.
2. **an estimator** — any object with ``fit(X, y)`` and ``predict(X)``: a distillbt learner
   (``distillbt.models``: Ridge, LogisticRegression, MLP), a scikit-learn estimator or
   pipeline, LightGBM, XGBoost. Distilled points are weighted: the weights go to
   ``sample_weight`` when ``fit`` takes it, else the points are resampled by weight (README,
   "Using scikit-learn estimators").
3. **a target and a horizon** — ``target = "return"`` (the model learns the next log return in
   units of its standard deviation) or ``"direction"`` (1 if up, else 0; predictions are
   probabilities); ``horizon`` = candles ahead. The screen distils a set with targets at each
   strategy's horizon; a distilled set you pass yourself holds its own (``meta["horizon"]``),
   and a strategy with another horizon trains on those, its fitted model's ``notes`` say so.
4. **a position rule** — predictions (one per candle) → targets ``+1`` long, ``0`` flat,
   ``-1`` short, decided at each close and filled at the next open. The default rule reads
   the params ``long_threshold``/``short_threshold``/``allow_short``; override
   ``position_rule`` for anything else. It must be causal: the target at candle t may use
   predictions up to t only.

And ``grid``: the param values the screen combines into configurations.
"""

import numpy as np
from sklearn.linear_model import HuberRegressor

from distillbt.models import Ridge
from distillbt.strategy import RULE_PARAMS, ModelStrategy


class TrendRidge(ModelStrategy):
    """Next-candle return from trend and volatility features; enter outside a band, exit on a
    sign change (a rule with memory)."""

    # Params, Backtrader-style. ``allow_short`` is a param of ModelStrategy: overriding its
    # default here makes this strategy long/flat unless a configuration says otherwise.
    params = (
        ("model", "ridge"),     # which estimator: "ridge" (distillbt) or "huber" (scikit-learn)
        ("alpha", 0.1),         # its penalty
        ("band", 0.1),          # enter when |prediction| > band (in std of the next return)
        ("allow_short", False),
    )
    # 2 models × 2 penalties × 2 bands = 8 configurations.
    grid = {"model": ["ridge", "huber"], "alpha": [0.01, 1.0], "band": [0.05, 0.15]}
    # Params that change only the rule, not the fit: configurations differing only in them
    # share one fitted model (4 fits for these 8 configurations).
    rule_params = RULE_PARAMS + ("band",)

    # 1. What the model sees.
    features = ("ret_1", "ret_4", "ret_16", "vol_ratio_16_96", "ma_dist_16", "ma_dist_64")
    # 3. What it learns: the next candle's return (in standard deviations).
    target = "return"
    horizon = 1

    # 2. The estimator, built fresh for every fit (``self.p`` holds the configuration's params).
    def make_estimator(self):
        if self.p.model == "ridge":
            # distillbt's Ridge: a weighted *mean* loss, so alpha means the same shrinkage on
            # 100 distilled points as on 100k candles.
            return Ridge(alpha=self.p.alpha)
        if self.p.model == "huber":
            # Any scikit-learn-style object works: fit(X, y, sample_weight) + predict(X).
            # (scikit-learn's losses are sums; distillbt rescales point weights to mean 1.)
            return HuberRegressor(alpha=self.p.alpha, max_iter=500)
        raise ValueError(f"model must be 'ridge' or 'huber', not {self.p.model!r}")

    # 4. Predictions → positions. Called once with every candle's prediction (NaN during the
    # features' warm-up), both by the vectorised screen and inside Backtrader, so the two
    # agree trade for trade.
    def position_rule(self, prediction):
        band, short_ok = self.p.band, bool(self.p.allow_short)
        targets = np.zeros(len(prediction))
        position = 0.0
        for t, p in enumerate(np.asarray(prediction, dtype="float64")):
            if np.isnan(p):
                position = 0.0                       # warm-up: stay flat
            elif p > band:
                position = 1.0                       # strong up forecast: long
            elif p < -band:
                position = -1.0 if short_ok else 0.0  # strong down forecast: short (or flat)
            elif position * p < 0:
                position = 0.0                       # forecast changed sign: exit
            targets[t] = position                    # otherwise: keep what we hold
        return targets
