"""What the surrogate of one plain configuration needs: its periods, columns, warm-up.

:func:`plan_configuration` reads the windows a configuration's indicators use from its
parameters (int parameters not named like levels) and from ``period=N`` literals in the
strategy's source; its features are the indicator bank columns at those periods (their
moving-average pairs, lagged and crossover columns) and the columns of its strategy's own
lines (:mod:`.own_features`: the lines its ``__init__`` builds and their differences, and the
one-bar changes of the feed's prices its ``next`` reads bars back); its
warm-up is its longest window (at least the generic columns' 33 bars; or its longest own line's
minimum period) + 10 bars.
"""

from __future__ import annotations

import functools
import inspect
import logging
from dataclasses import dataclass, field

from ..errors import InputError
from ..indicators import GENERIC_WARMUP, ZERO_CENTRED, bank_warmup, feature_names_for, periods_of, thresholds_of
from .own_features import OwnFeatures, factor_ratios, is_own, past_prices, past_windows
from .trade_state import trade_names

__all__ = ["ConfigPlan", "plan_configuration", "full_warmup", "snap_candidates", "code_levels", "DEFAULT_PERIODS"]

DEFAULT_PERIODS = (5, 10, 14, 20, 50, 100, 200)

log = logging.getLogger(__name__)


@dataclass
class ConfigPlan:
    """What the surrogate of one configuration needs: periods, columns (bank, then own
    lines), warm-up; ``own`` computes the own-line columns (None when the strategy builds
    none in ``__init__``, or building them failed: ``own_reason``)."""

    configuration: object
    periods: list
    features: list
    thresholds: list
    warmup: int
    own: OwnFeatures | None = None
    own_reason: str | None = None
    #: Trade-state columns (:mod:`.trade_state`), placed after the features.
    trade: list = field(default_factory=list)

    @property
    def bank_features(self) -> list:
        return [n for n in self.features if not is_own(n)]


def _all_params(cls, params) -> dict:
    merged = dict(cls.params._getitems()) if hasattr(cls.params, "_getitems") else {}
    merged.update(params)
    return merged


def plan_configuration(configuration, *, own_lines: bool = True, trade_state: bool = True) -> ConfigPlan:
    """Periods (parameters + source literals), columns and warm-up of one configuration
    (``own_lines=False``: the bank's columns only; ``trade_state=False``: no trade columns)."""
    cls = configuration.strategy.cls
    source = _source_of(cls)
    params = _all_params(cls, configuration.params)
    periods = sorted(set(periods_of(params, source)) | set(past_windows(source))) or list(DEFAULT_PERIODS)
    # The longest window + 10 bars: every indicator is defined at the first scored bar. EMA-type
    # ones (RSI, EMA) are still converging there, but the episode's bank columns are computed
    # from the same first bar as the strategy's feed, so what it saw is what the tree learns
    # from; the thresholds transfer to the converged columns of the screening period. The
    # generic columns (MACD) count too: a bar where any column is undefined is no training
    # row, and an always-in strategy's first decision, from flat, would never be seen.
    warmup = max(max(periods), GENERIC_WARMUP) + 10
    features, own, reason = feature_names_for(periods), None, None
    if own_lines:
        try:
            own = OwnFeatures(cls, configuration.params, past=past_prices(source))
        except InputError as error:  # its bank columns still serve
            reason = str(error)
            log.info("%s: no own-line columns: %s", configuration.name, reason)
        else:
            # The strategy's own lines carry its rule; of the bank, the columns at its periods
            # stay (a rule on raw prices read in ``next``), not their pairs and lags (proxies
            # for the lines it holds, which would only widen every fit)
            features = feature_names_for(periods, pairs=False, lags=False) + own.names
            warmup = max(warmup, own.minperiod + 10)
    trade = trade_names(own.unit_columns if own is not None else (), own.past if own is not None else ()) \
        if trade_state else []
    return ConfigPlan(configuration, periods, features, thresholds_of(params, source), warmup, own, reason, trade)


@functools.lru_cache(maxsize=256)
def _source_of(cls) -> str | None:
    """The strategy class's source (read and tokenised once per class: every configuration
    of a grid, in every worker that plans one, asks for it)."""
    try:
        return inspect.getsource(cls)
    except (OSError, TypeError):
        return None


def full_warmup(plans, start: int) -> int:
    """Warm-up bars for full backtests: every column converged (10x the longest window, at
    least 200), never more than exist. The screen's default feeds the whole training period;
    the result is the same once indicators have converged, and this is the faster baseline."""
    names = [n for p in plans for n in p.bank_features]
    own = [p.own.converge for p in plans if p.own is not None]
    return min(start, max([bank_warmup(names)] + own))


def snap_candidates(names, thresholds, own: OwnFeatures | None = None) -> dict:
    """Per column (by position in ``names``), the natural split values a tree threshold is
    snapped to: 0 for zero-centred bank columns (and the ±levels of a Bollinger z), the
    levels of an RSI; an own-line column's from ``own`` (:meth:`OwnFeatures.snap_candidates`)."""
    out = {}
    levels = sorted(set(thresholds) | set(float(x) for x in range(5, 100, 5)))
    for j, name in enumerate(names):
        if name.startswith("trade:"):
            # bars held: the integer parameters; returns and distances: ± the parameters
            out[j] = sorted({float(t) for t in thresholds} | {-float(t) for t in thresholds} | {0.0})
            continue
        if is_own(name):
            cands = own.snap_candidates(name, thresholds) if own is not None else []
            if cands:
                out[j] = cands
            continue
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


def code_levels(thresholds) -> tuple[float, ...]:
    """The split values the strategy's own numbers give (its parameters and the literals in
    its source, ``thresholds``): each with both signs, 0, and for a factor near 1 (``close <
    0.98 * sma``) the ratios it sets (``close/sma − 1 = −0.02``, ``sma/close − 1``). A split
    snaps to one of these before a generic level (an RSI's multiples of 5) in the same gap:
    where the recorded bars leave 25 and 30 both open, the ``25`` written in ``next`` wins."""
    out = {0.0} | set(factor_ratios(thresholds))
    for t in thresholds:
        out |= {float(t), -float(t)}
    return tuple(sorted(out))
