"""What a screen ranks on: one number per equity curve, higher is better.

Every score the screen reports — screen (vectorised, surrogate or full fallback), full
backtest and holdout — is the same objective of an equity curve, so fidelity (Spearman, top-k
recall) is measured on what the user ranks by::

    objective = resolve("sharpe")                      # or "mymodule:my_loss"
    objective(equity, cash=10_000.0, bars_per_year=35_064.0)

``equity`` is the account value at the close of every scored bar; the run starts from
``cash`` before the first bar, so the per-bar returns are those of ``[cash, *equity]``. An
account that is wiped out (final value ≤ 0) scores ``-inf`` under every objective.

Built in (:data:`OBJECTIVES`; ``P`` = bars per year of the candles' interval):

==================  ===========================================================================
``return``          ``log(final value / cash)`` (the default)
``sharpe``          mean / standard deviation of the per-bar returns × √P (0 when flat)
``sortino``         mean / root-mean-square of the negative per-bar returns × √P (0 when flat)
``calmar``          annualised return / maximum drawdown (the drawdown floored at 1 basis point)
``max-drawdown``    minus the maximum drawdown as a fraction of the peak (0 is best)
``profit-factor``   sum of the gains / sum of the losses of the per-bar P&L (1 when flat;
                    the losses floored at 1e-9 of the starting cash)
==================  ===========================================================================

A custom objective is ``MODULE:FUNCTION``, importable where the screen runs (and on Dask
workers), called as ``FUNCTION(returns, equity)`` with numpy arrays (``returns`` per bar,
``equity`` starting with the cash) — or with ``bars_per_year=`` too when it accepts that
keyword — returning a float, higher is better. It is resolved by name in every worker, so
only the name travels.
"""

from __future__ import annotations

import importlib
import inspect
import math
from functools import lru_cache
from typing import Callable

import numpy as np

from .errors import InputError

__all__ = ["OBJECTIVES", "DEFAULT_OBJECTIVE", "Objective", "resolve", "objective_score", "describe",
           "bars_per_year"]

DEFAULT_OBJECTIVE = "return"
_DRAWDOWN_FLOOR = 1e-4
_LOSS_FLOOR = 1e-9


def _log_return(returns, equity, *, bars_per_year):
    return math.log(equity[-1] / equity[0])


def _sharpe(returns, equity, *, bars_per_year):
    if len(returns) < 2:
        return 0.0
    std = float(returns.std(ddof=1))
    return float(returns.mean()) / std * math.sqrt(bars_per_year) if std > 0 else 0.0


def _sortino(returns, equity, *, bars_per_year):
    if len(returns) < 2:
        return 0.0
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    return float(returns.mean()) / downside * math.sqrt(bars_per_year) if downside > 0 else 0.0


def _max_drawdown_fraction(equity) -> float:
    peaks = np.maximum.accumulate(equity)
    return float(np.max(1.0 - equity / peaks))


def _max_drawdown(returns, equity, *, bars_per_year):
    return -_max_drawdown_fraction(equity)


def _calmar(returns, equity, *, bars_per_year):
    bars = max(len(returns), 1)
    annual = math.expm1(math.log(equity[-1] / equity[0]) * bars_per_year / bars) if equity[-1] != equity[0] else 0.0
    return annual / max(_max_drawdown_fraction(equity), _DRAWDOWN_FLOOR)


def _profit_factor(returns, equity, *, bars_per_year):
    pnl = np.diff(equity)
    gains, losses = float(pnl[pnl > 0].sum()), float(-pnl[pnl < 0].sum())
    if gains == 0.0 and losses == 0.0:
        return 1.0
    return gains / max(losses, _LOSS_FLOOR * float(equity[0]))


#: The built-in objectives by name (module docstring).
OBJECTIVES: dict[str, Callable] = {
    "return": _log_return,
    "sharpe": _sharpe,
    "sortino": _sortino,
    "calmar": _calmar,
    "max-drawdown": _max_drawdown,
    "profit-factor": _profit_factor,
}

_DESCRIPTIONS = {
    "return": "log(final value / initial cash)",
    "sharpe": "annualised Sharpe ratio of the per-bar returns",
    "sortino": "annualised Sortino ratio of the per-bar returns",
    "calmar": "annualised return / maximum drawdown",
    "max-drawdown": "minus the maximum drawdown (fraction of the peak)",
    "profit-factor": "gains / losses of the per-bar P&L",
}


class Objective:
    """A resolved objective: ``objective(equity, cash=…, bars_per_year=…) -> float``."""

    def __init__(self, name: str, function: Callable, *, takes_bars_per_year: bool):
        self.name = name
        self.function = function
        self.takes_bars_per_year = takes_bars_per_year

    def __call__(self, equity, *, cash: float, bars_per_year: float) -> float:
        values = np.concatenate(([float(cash)], np.asarray(equity, dtype="float64")))
        if not values[-1] > 0:
            return -math.inf
        with np.errstate(divide="ignore", invalid="ignore"):
            returns = values[1:] / values[:-1] - 1.0
        if self.takes_bars_per_year:
            value = self.function(returns, values, bars_per_year=float(bars_per_year))
        else:
            value = self.function(returns, values)
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise InputError(f"objective {self.name} returned {type(value).__name__}, not a number") from None
        if math.isnan(value):
            raise InputError(f"objective {self.name} returned NaN")
        return value

    def __repr__(self) -> str:
        return f"Objective({self.name!r})"


@lru_cache(maxsize=32)
def resolve(spec: str | None = None) -> Objective:
    """The objective named ``spec`` (a built-in name or ``MODULE:FUNCTION``; None → the default).

    Raises :class:`~distillbt.errors.InputError` with one line for an unknown name, a module
    that does not import or a missing function."""
    spec = DEFAULT_OBJECTIVE if spec is None else str(spec).strip()
    if spec in OBJECTIVES:
        return Objective(spec, OBJECTIVES[spec], takes_bars_per_year=True)
    if ":" not in spec:
        raise InputError(f"unknown objective {spec!r}: one of {', '.join(OBJECTIVES)} or MODULE:FUNCTION")
    module_name, _, function_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # noqa: BLE001 - any import failure is the user's module
        raise InputError(f"objective {spec}: cannot import {module_name} ({type(error).__name__}: {error})") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise InputError(f"objective {spec}: {module_name} has no function {function_name}")
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        parameters = {}
    takes = "bars_per_year" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    return Objective(spec, function, takes_bars_per_year=takes)


def objective_score(spec: str | None, equity, *, cash: float, bars_per_year: float) -> float:
    """``resolve(spec)(equity, cash=cash, bars_per_year=bars_per_year)``: what workers call
    with the objective's name."""
    return resolve(spec)(equity, cash=cash, bars_per_year=bars_per_year)


def bars_per_year(timeframe: str | None, times=None) -> float:
    """Bars in 365.25 days: from the candles' interval, else from the median spacing of
    ``times`` (as :func:`distillbt.stats.performance_stats` annualises)."""
    year_ms = 365.25 * 86_400_000.0
    if timeframe:
        from .data.timeframes import timeframe_ms

        return year_ms / timeframe_ms(timeframe)
    if times is not None and len(times) > 1:
        import pandas as pd

        ns = pd.DatetimeIndex(times).as_unit("ns").asi8
        spacing = float(np.median(np.diff(ns)))
        if spacing > 0:
            return year_ms * 1e6 / spacing
    return year_ms / 86_400_000.0  # daily when nothing says otherwise


def describe(spec: str | None) -> str:
    """One line saying what the objective measures (for the summary and the report)."""
    name = resolve(spec).name
    return _DESCRIPTIONS.get(name, f"{name}(returns, equity), higher is better")
