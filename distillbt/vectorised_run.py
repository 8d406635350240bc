"""The vectorised execution of a model strategy: features → predictions → targets →
:func:`~distillbt.vectorised.simulate`, without Backtrader (the screen's fast path).

Authors call it as :meth:`ModelStrategy.vectorised <distillbt.strategy.ModelStrategy.vectorised>`,
whose docstring documents it; this module does not import :mod:`distillbt.strategy`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .errors import InputError
from .features import FeatureSet, make_features, ohlcv_frame
from .fitting import FittedModel, check_fitted, period_bounds
from .vectorised import simulate

__all__ = ["run_vectorised"]


def run_vectorised(cls, candles, fitted: FittedModel | None = None, *, rowwise: bool,
                   params: Mapping | None = None, cash: float = 10_000.0,
                   commission: float = 0.001, start=None, end=None,
                   feature_set: FeatureSet | pd.DataFrame | None = None, slippage: float = 0.0,
                   signals: dict | None = None) -> dict:
    """:meth:`ModelStrategy.vectorised <distillbt.strategy.ModelStrategy.vectorised>` for the
    strategy class ``cls``.

    ``rowwise``: whether ``cls`` keeps the default ``position_rule``, which reads each bar's
    prediction alone: then the bars before ``start`` get features (their warm-up) but no
    prediction. ``signals``: the caller's memo of predictions (see ``vectorised``).
    """
    cfg = cls.configure(params)
    frame = ohlcv_frame(candles)
    if start is None:
        start = cfg.p.trade_start
    first, stop = period_bounds(frame.index, start, end)
    if first >= stop:
        raise InputError(f"nothing to run: start {first} is not before end {stop}")
    if fitted is None:
        if first == 0:
            raise InputError(
                "give a fitted model, or a start: the candles before it train the model"
            )
        fitted = cls.fit_model(frame, params=params, end=first)
    else:
        check_fitted(cls, fitted, params)
    given = feature_set
    if feature_set is not None:
        table = feature_set.X if isinstance(feature_set, FeatureSet) else feature_set
        if len(table) != len(frame):
            raise InputError(
                f"the feature set has {len(table)} rows but there are {len(frame)} candles"
            )
        feature_set = table.iloc[:stop]
    memo_key = (id(fitted), id(candles), id(given), first, stop, rowwise)
    if signals is not None and memo_key in signals:
        signal = signals[memo_key][1].copy()  # a rule may write into its input
    else:
        signal = _signal(frame, fitted, feature_set, first=first, stop=stop, rowwise=rowwise)
        if signals is not None:  # the objects are kept with it, so their ids stay theirs
            signals[memo_key] = ((fitted, candles, given), signal.copy())
    targets = np.asarray(cfg.position_rule(signal), dtype="float64")
    result = simulate(frame.iloc[:stop], targets, cash=cash, commission=commission,
                      fraction=cfg.p.fraction, start_index=first, slippage=slippage)
    result["start"], result["end"] = first, stop
    return result


def _signal(frame, fitted, feature_set, *, first: int, stop: int, rowwise: bool) -> np.ndarray:
    """The fitted model's prediction at every bar up to ``stop`` (NaN before ``first`` when
    the rule is rowwise)."""
    frame = frame.iloc[:stop]
    if rowwise and isinstance(fitted, FittedModel):
        # The default rule reads each bar's prediction alone and the run starts flat at
        # ``first``: earlier bars need features (their warm-up) but no prediction.
        if feature_set is None:
            feature_set = make_features(frame, **fitted.feature_options).X
        signal = np.full(stop, np.nan)
        signal[first:] = fitted.signal(frame.iloc[first:], feature_set=feature_set.iloc[first:])
    else:
        signal = fitted.signal(frame, feature_set=feature_set)
    return signal
