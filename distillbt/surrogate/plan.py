"""What the surrogate of one plain configuration needs: its periods, bank columns, warm-up.

:func:`plan_configuration` reads the windows a configuration's indicators use from its
parameters (int parameters not named like levels) and from ``period=N`` literals in the
strategy's source; the indicator bank columns at those periods (their moving-average pairs,
lagged and crossover columns) are its features; its warm-up is its longest window + 10 bars.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from ..indicators import ZERO_CENTRED, bank_warmup, feature_names_for, periods_of, thresholds_of

__all__ = ["ConfigPlan", "plan_configuration", "full_warmup", "snap_candidates", "DEFAULT_PERIODS"]

DEFAULT_PERIODS = (5, 10, 14, 20, 50, 100, 200)


@dataclass
@dataclass
class ConfigPlan:
    """What the surrogate of one configuration needs: periods, bank columns, warm-up."""

    configuration: object
    periods: list
    features: list
    thresholds: list
    warmup: int


def _all_params(cls, params) -> dict:
    merged = dict(cls.params._getitems()) if hasattr(cls.params, "_getitems") else {}
    merged.update(params)
    return merged


def plan_configuration(configuration) -> ConfigPlan:
    """Periods (parameters + source literals), bank columns and warm-up of one configuration."""
    cls = configuration.strategy.cls
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        source = None
    params = _all_params(cls, configuration.params)
    periods = periods_of(params, source) or list(DEFAULT_PERIODS)
    # The longest window + 10 bars: every indicator is defined at the first scored bar. EMA-type
    # ones (RSI, EMA) are still converging there, but the episode's bank columns are computed
    # from the same first bar as the strategy's feed, so what it saw is what the tree learns
    # from; the thresholds transfer to the converged columns of the screening period.
    warmup = max(periods) + 10
    return ConfigPlan(configuration, periods, feature_names_for(periods), thresholds_of(params), warmup)


def full_warmup(plans, start: int) -> int:
    """Warm-up bars for full backtests: every column converged (10x the longest window, at
    least 200), never more than exist. The screen's default feeds the whole training period;
    the result is the same once indicators have converged, and this is the faster baseline."""
    names = [n for p in plans for n in p.features]
    return min(start, bank_warmup(names))


def snap_candidates(names, thresholds) -> dict:
    """Per bank column (by position in ``names``), the natural split values a tree threshold
    is snapped to: 0 for zero-centred columns (and the ±levels of a Bollinger z), the levels
    of an RSI."""
    out = {}
    levels = sorted(set(thresholds) | set(float(x) for x in range(5, 100, 5)))
    for j, name in enumerate(names):
        base = name[5:-1] if name.startswith("lag1(") else name[6:-1] if name.startswith("cross(") else name
        kind = base.split(":")[0]
        if kind in ZERO_CENTRED:
            cands = [0.0]
            if kind == "bb_z":
                cands += [v for t in thresholds if 0 < abs(t) <= 5 for v in (t, -t)]
            out[j] = cands
        elif kind == "rsi":
            out[j] = [v for v in levels if 0 < v < 100]
    return out
