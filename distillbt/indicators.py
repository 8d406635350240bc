"""A causal indicator bank, computed once per candle series for every configuration.

Each column is named ``kind:period`` (or ``kind:fast:slow`` for pairs; ``lag1(name)`` is the
column one bar earlier). Definitions follow Backtrader's indicators exactly, so a threshold a
strategy applies to a Backtrader indicator is a threshold on a column here (the tests compare
them numerically):

============== ===============================================================================
``sma_dist:p`` ``(close - SMA_p) / SMA_p``                       (``bt.ind.SMA``)
``ema_dist:p`` ``(close - EMA_p) / EMA_p``; EMA seeded with the SMA of the first ``p`` values,
               ``alpha = 2 / (p + 1)``                            (``bt.ind.EMA``)
``sma_pair:p:q`` ``(SMA_p - SMA_q) / SMA_q`` — a tree cannot compare two columns, so the
               moving-average crosses a strategy uses need their own column (docs/design.md §6)
``ema_pair:p:q`` the same with EMAs
``rsi:p``      Wilder's RSI: up/down moves smoothed by SMMA (``alpha = 1/p``, SMA seed);
               ``safediv`` semantics: 50 when nothing moved, 100 when nothing fell
``dc_up:p``    ``(close - max(high[t-p..t-1])) / that max``: > 0 is a breakout above the channel
               of the *previous* ``p`` bars (``bt.ind.Highest(data.high(-1), period=p)``)
``dc_lo:p``    ``(close - min(low[t-p..t-1])) / that min``: < 0 breaks below it
``bb_z:p``     ``(close - SMA_p) / std_p`` with the population std Backtrader's
               ``StandardDeviation`` (and ``BollingerBands``) uses; 0 when the std is 0
``mom:p``      ``(close - close[t-p]) / close[t-p]`` (``bt.ind.ROC``; ``Momentum`` scaled)
``vol:p``      population std of the 1-bar log returns over ``p`` bars
``macd``       ``(EMA12 - EMA26) / close``; ``macd_hist``: ``(macd - EMA9(macd)) / close``
``ret:1``      the 1-bar simple return
``cross(c)``   +1 on the bar column ``c`` turns positive from negative, -1 the other way, else 0
               (``bt.ind.CrossOver``): an event rule is one split on it, where a tree would
               need two on ``c`` and ``lag1(c)`` and may prefer a proxy on few episodes
============== ===============================================================================

Differences are taken before dividing (``(a - b) / b``, not ``a / b - 1``), so the sign of a
column is exactly the sign of ``a - b``: ``close > upper`` is ``dc_up > 0`` bit for bit.
Columns are NaN until their indicator has enough bars (Backtrader's ``minperiod``).
EMA-type columns (EMA, RSI, MACD) depend on where the series starts; they converge
geometrically, so compute the bank from enough bars before the rows you use
(:func:`bank_warmup`).
"""

from __future__ import annotations

import ast
import functools
import itertools
import math
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from .errors import InputError

__all__ = ["IndicatorBank", "feature_names_for", "bank_warmup", "periods_of", "thresholds_of", "literals_of",
           "GENERIC_WARMUP",
           "ZERO_CENTRED", "KINDS"]

# Kinds with one period; pairs; parameterless.
KINDS = ("sma_dist", "ema_dist", "rsi", "dc_up", "dc_lo", "bb_z", "mom", "vol")
PAIR_KINDS = ("sma_pair", "ema_pair")
GENERIC = ("ret:1", "macd", "macd_hist")
#: Bars before every generic column has a value: the MACD histogram (EMA 26, then its 9-bar
#: signal) is NaN for its first 33.
GENERIC_WARMUP = 26 + 9 - 2
# Columns whose natural decision boundary is 0 (a cross, a breakout): learned split
# thresholds are snapped to 0 when the training data allow it (see model.py).
ZERO_CENTRED = ("sma_dist", "ema_dist", "sma_pair", "ema_pair", "dc_up", "dc_lo", "bb_z", "mom",
                "macd", "macd_hist", "ret")
# Lagged copies let a tree tell a cross (yesterday below, today above) from a level.
LAGGED = ("sma_dist", "ema_dist", "sma_pair", "ema_pair")

# Parameter names that hold a level, not a window length (RSI 30/70, a percentage...).
_THRESHOLD_NAME = re.compile(r"(^|_)(low|high|level|threshold|thresh|oversold|overbought|upper|"
                             r"lower|pct|percent|dev|devfactor|mult|factor|stake|size|cash)($|_)",
                             re.IGNORECASE)
MIN_PERIOD, MAX_PERIOD = 2, 5000


def periods_of(params: Mapping, source: str | None = None) -> list[int]:
    """Window lengths a configuration uses: its int parameters that are not named like levels,
    plus ``period=N`` literals in the strategy's source (a hard-coded ``RSI(period=14)``) and
    the ``size=N`` of a line's ``get`` (``min(self.data.low.get(size=10))``: a 10-bar low)."""
    found = set()
    for name, value in params.items():
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            continue
        if _THRESHOLD_NAME.search(str(name)):
            continue
        if MIN_PERIOD <= int(value) <= MAX_PERIOD:
            found.add(int(value))
    if source:
        for match in re.finditer(r"period\s*=\s*(\d+)|\.get\([^)]*\bsize\s*=\s*(\d+)", source):
            value = int(match.group(1) or match.group(2))
            if MIN_PERIOD <= value <= MAX_PERIOD:
                found.add(value)
    return sorted(found)


def thresholds_of(params: Mapping, source: str | None = None) -> list[float]:
    """Numeric parameter values that may be levels (snap candidates for bounded columns), and
    the numbers written in the strategy's ``source`` (``self.rsi[0] < 30`` hard-coded:
    :func:`literals_of`)."""
    out = set(_literals(source)) if source else set()
    for value in params.values():
        if isinstance(value, (bool, np.bool_)):
            continue
        if isinstance(value, (int, float, np.integer, np.floating)) and np.isfinite(value):
            out.add(float(value))
    return sorted(out)


def literals_of(source: str) -> list[float]:
    """The numbers written in a strategy's source (negative ones with their sign), but not
    the bars back of a subscript (``line[0]``, ``line[-1]``); nothing when it does not parse."""
    return list(_literals(source))


@functools.lru_cache(maxsize=256)
def _literals(source: str) -> tuple[float, ...]:
    """:func:`literals_of`, parsed once per source (every configuration of a grid asks)."""
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return ()
    subscripts = {id(node.slice) for node in ast.walk(tree) if isinstance(node, ast.Subscript)}
    negated = {id(node.operand) for node in ast.walk(tree)
               if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in subscripts:
            continue
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            node, sign = node.operand, -1.0
        elif id(node) in negated:
            continue
        else:
            sign = 1.0
        if not isinstance(node, ast.Constant):
            continue
        value = node.value
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out.add(sign * float(value))
    return tuple(sorted(out))


def feature_names_for(periods: Iterable[int], *, pairs: bool = True, lags: bool = True) -> list[str]:
    """The bank columns one configuration needs: every kind at each of its periods, the
    moving-average pairs of its periods, lagged cross columns and the generic ones."""
    periods = sorted(set(int(p) for p in periods))
    names = list(GENERIC)
    for p in periods:
        names += [f"{kind}:{p}" for kind in KINDS]
    if pairs:
        for p, q in itertools.combinations(periods, 2):
            names += [f"{kind}:{p}:{q}" for kind in PAIR_KINDS]
    if lags:
        base = [n for n in list(names) if n.split(":")[0] in LAGGED]
        names += [f"lag1({n})" for n in base] + [f"cross({n})" for n in base]
    return names


def bank_warmup(names: Iterable[str], *, factor: int = 10) -> int:
    """Bars to compute before the first row used so every column has converged: ``factor``
    times the longest period (EMA-type columns decay like ``(1 - 1/p)^bars``), at least 200."""
    longest = 26 + 9  # MACD
    for name in names:
        for part in re.findall(r"\d+", name):
            longest = max(longest, int(part))
    return max(200, factor * longest)


def _strip(name: str) -> str:
    if name.startswith("lag1("):
        return name[5:-1]
    if name.startswith("cross("):
        return name[6:-1]
    return name


class IndicatorBank:
    """Compute named bank columns over one candle series (float32 matrix, NaN in warm-up).

    ::

        bank = IndicatorBank(["rsi:14", "sma_pair:10:50", "dc_up:20"])
        X = bank.transform(frame)          # (n, 3) float32, row t from candles <= t

    ``transform`` accepts a DataFrame (or dict) with ``high``, ``low``, ``close`` columns.
    Intermediate series (SMAs, EMAs) are computed once and shared between columns.
    """

    def __init__(self, names: Sequence[str]):
        self.names = list(dict.fromkeys(names))
        for name in self.names:
            self._check(name)

    @staticmethod
    def _check(name: str) -> None:
        base = _strip(name)
        parts = base.split(":")
        kind = parts[0]
        ok = ((base in GENERIC) or (kind in KINDS and len(parts) == 2)
              or (kind in PAIR_KINDS and len(parts) == 3))
        if ok and base not in GENERIC:
            ok = all(p.isdigit() and int(p) >= 1 for p in parts[1:])
        if not ok:
            raise InputError(f"unknown indicator bank column {name!r}")

    def transform(self, frame) -> np.ndarray:
        high, low, close = (np.ascontiguousarray(np.asarray(frame[c], dtype=np.float64))
                            for c in ("high", "low", "close"))
        cache: dict = {}
        # Column-major: each column is written whole here and read whole by the surrogates.
        out = np.empty((len(close), len(self.names)), dtype=np.float32, order="F")
        with np.errstate(divide="ignore", invalid="ignore"):
            for j, name in enumerate(self.names):
                out[:, j] = self._column(name, high, low, close, cache)
        return out

    # ------------------------------------------------------------------ columns

    def _column(self, name, high, low, close, cache) -> np.ndarray:
        if name.startswith("lag1("):
            base = self._column(name[5:-1], high, low, close, cache)
            return np.concatenate(([np.nan], base[:-1]))
        if name.startswith("cross("):
            base = self._column(name[6:-1], high, low, close, cache)
            prev = np.concatenate(([np.nan], base[:-1]))
            value = ((base > 0) & (prev < 0)).astype(np.float64) - ((base < 0) & (prev > 0))
            value[np.isnan(base) | np.isnan(prev)] = np.nan
            return value
        if name in cache:
            return cache[name]
        parts = name.split(":")
        kind, nums = parts[0], [int(p) for p in parts[1:] if p.isdigit()]
        if name == "ret:1":
            value = _rel(close[1:], close[:-1], pad=1)
        elif name == "macd":
            line, _ = _macd(close, cache)
            value = line / close
        elif name == "macd_hist":
            line, signal = _macd(close, cache)
            value = (line - signal) / close
        elif kind == "sma_dist":
            value = _rel(close, _sma(close, nums[0], cache))
        elif kind == "ema_dist":
            value = _rel(close, _ema(close, nums[0], cache))
        elif kind == "sma_pair":
            value = _rel(_sma(close, nums[0], cache), _sma(close, nums[1], cache))
        elif kind == "ema_pair":
            value = _rel(_ema(close, nums[0], cache), _ema(close, nums[1], cache))
        elif kind == "rsi":
            value = rsi(close, nums[0])
        elif kind == "dc_up":
            value = _rel(close, _shift(_rolling(high, nums[0], "max"), 1))
        elif kind == "dc_lo":
            value = _rel(close, _shift(_rolling(low, nums[0], "min"), 1))
        elif kind == "bb_z":
            p = nums[0]
            mean = _sma(close, p, cache)
            sd = _popstd(close, p)
            value = np.where(sd > 0, (close - mean) / np.where(sd > 0, sd, 1.0), 0.0)
            value[np.isnan(mean)] = np.nan
        elif kind == "mom":
            p = nums[0]
            value = _rel(close[p:], close[:-p], pad=p) if p < len(close) else np.full(len(close), np.nan)
        elif kind == "vol":
            p = nums[0]
            r = np.concatenate(([np.nan], np.diff(np.log(close))))
            value = _popstd(r, p)
        else:  # pragma: no cover - _check guards
            raise InputError(f"unknown indicator bank column {name!r}")
        cache[name] = value
        return value


def _rel(a, b, pad: int = 0) -> np.ndarray:
    # (a - b) / b: the sign is exactly sign(a - b), which a / b - 1 does not guarantee.
    value = (a - b) / b
    if pad:
        value = np.concatenate((np.full(pad, np.nan), value))
    return value


def _shift(x, k):
    return np.concatenate((np.full(k, np.nan), x[:-k])) if k < len(x) else np.full(len(x), np.nan)


def _rolling(x, p, how):
    s = pd.Series(x).rolling(p, min_periods=p)
    return (s.max() if how == "max" else s.min()).to_numpy()


def _sma(x, p, cache=None):
    key = ("sma", p)
    if cache is not None and key in cache:
        return cache[key]
    out = np.full(len(x), np.nan)
    if p <= len(x):
        # Windowed sums from a cumulative sum of the series minus its first value keep the
        # rounding error at ~1e-13 relative over a million bars.
        base = x[0]
        c = np.concatenate(([0.0], np.cumsum(x - base)))
        out[p - 1:] = (c[p:] - c[:-p]) / p + base
    if cache is not None:
        cache[key] = out
    return out


def _popstd(x, p):
    # Backtrader's StandardDeviation: sqrt(mean(x^2) - mean(x)^2) over the window (population).
    s = pd.Series(x).rolling(p, min_periods=p)
    var = s.var(ddof=0).to_numpy()
    return np.sqrt(np.maximum(var, 0.0))


def _smooth(x, p, alpha, start):
    """Exponential smoothing of ``x[start:]`` seeded with the SMA of its first ``p`` values
    (Backtrader's EMA and SMMA); NaN before the seed."""
    out = np.full(len(x), np.nan)
    seed_at = start + p - 1
    if seed_at >= len(x):
        return out
    seed = float(np.mean(x[start:seed_at + 1]))
    out[seed_at] = seed
    rest = x[seed_at + 1:]
    if len(rest):
        out[seed_at + 1:], _ = lfilter([alpha], [1.0, -(1.0 - alpha)], rest, zi=[(1.0 - alpha) * seed])
    return out


def _ema(x, p, cache=None, start=0):
    key = ("ema", p, start, id(x))
    if cache is not None and key in cache:
        return cache[key]
    out = _smooth(x, p, 2.0 / (p + 1.0), start)
    if cache is not None:
        cache[key] = out
    return out


def _macd(close, cache):
    if ("macd",) not in cache:
        line = _ema(close, 12, cache) - _ema(close, 26, cache)
        signal = _smooth(line, 9, 2.0 / 10.0, 25)
        cache[("macd",)] = (line, signal)
    return cache[("macd",)]


def rsi(close: np.ndarray, period: int) -> np.ndarray:
    """Backtrader's ``RSI(period, safediv=True)`` (Wilder): NaN for the first ``period`` bars."""
    close = np.asarray(close, dtype=np.float64)
    diff = np.concatenate(([np.nan], np.diff(close)))
    up, down = np.maximum(diff, 0.0), np.maximum(-diff, 0.0)
    up[0] = down[0] = np.nan
    a = 1.0 / period
    maup, madown = _smooth(up, period, a, 1), _smooth(down, period, a, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 100.0 - 100.0 / (1.0 + maup / madown)
    # safediv: x / 0 -> 100 (nothing fell), 0 / 0 -> 50 (nothing moved)
    zero = madown == 0
    out[zero & (maup > 0)] = 100.0
    out[zero & (maup == 0)] = 50.0
    return out
