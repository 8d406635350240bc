"""Backtrader's execution, replayed in numpy: the screen's fast path for model strategies.

A model strategy decides one *target* per bar at that bar's close: ``+1`` long, ``0`` flat,
``-1`` short. :func:`positions_from_predictions` turns predictions into targets and
:func:`simulate` turns targets into the equity path a Backtrader run with the shared
conventions produces, to rounding:

- a target decided at bar ``t``'s close that differs from the target decided at ``t - 1``
  sends one market order (Backtrader's default: it fills at bar ``t + 1``'s open, no
  cheat-on-open); a signal on the last bar never fills;
- the order is the difference between the new exposure and the units held:
  ``target × fraction × value_t / close_t − units`` (fractional, never rounded), where
  ``value_t = cash + units × close_t`` is the broker value at ``t``'s close. A flip from long
  to short is that one order: it closes the old position and opens the new one at the same
  open;
- commission is ``commission × |units traded| × fill price`` on every fill
  (``broker.setcommission(commission=c)``, a percentage of traded value);
- like Backtrader's broker (``set_checksubmit(False)``, ``shortcash=True``), a fill first
  closes what it closes, then opens the rest only if cash stays non-negative after paying for
  it and its commission — otherwise the opening part is dropped (a long entry into an
  opening gap of more than ~5 % above the signal close at ``fraction=0.95``). The target is
  still remembered: no new order until the target changes again (``reissue=False``, a model
  strategy's ``order_target_percent`` on a change of its prediction) — or, with
  ``reissue=True``, the unchanged target is ordered again at the next close, from flat (a
  plain strategy that decides from the position it holds, ``if not self.position: buy()``);
- with ``reversal="units"`` a flip keeps the position's units instead of re-sizing it: what
  ``close()`` then ``buy()`` does under Backtrader's ``PercentSizer``, which sizes an order
  placed while a position is held by that position's size (only an entry from flat takes
  ``fraction`` of the cash). Such a flip is two orders filled one after the other at the same
  open (the close, then the opening, dropped for cash as above);
- the account is marked to market at every close; a position still open at the end is valued
  at the last close, not closed.

Between two fills the number of units is constant, so the equity is ``cash_k + units_k ×
close_t`` for the last fill ``k``: the per-bar path is one vectorised gather. Each fill maps
``(cash, units)`` linearly (it is sized from the value at its signal close), so the states
after the fills are a prefix product of 2×2 matrices, computed in ``log2(fills)`` numpy
steps; no Python loop runs per bar or per fill. Only when Backtrader would drop an opening
(above) does an exact loop over the remaining fills take over.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import pandas as pd

from .data.candles import Candles
from .errors import InputError

__all__ = ["positions_from_predictions", "simulate"]


def positions_from_predictions(
    pred, *, long_threshold: float, short_threshold: float, allow_short: bool
) -> np.ndarray:
    """Targets ``+1 / 0 / -1`` from predictions, one per bar (a stateless rule).

    Long where ``pred > long_threshold``; short where ``pred < short_threshold`` (only with
    ``allow_short``); flat otherwise and where the prediction is NaN (feature warm-up).
    Returns float64 (``+0.0`` for flat). ``short_threshold`` above ``long_threshold`` would
    make a bar both long and short and raises :class:`~distillbt.errors.InputError`.
    """
    values = np.asarray(pred, dtype="float64")
    if values.ndim != 1:
        raise InputError(f"predictions must be 1-D, got shape {values.shape}")
    lo, hi = _number("short_threshold", short_threshold), _number("long_threshold", long_threshold)
    if allow_short and lo > hi:
        raise InputError(f"short_threshold {lo:g} is above long_threshold {hi:g}")
    out = np.zeros(len(values))
    # NaN compares False both ways: warm-up rows stay flat.
    out[values > hi] = 1.0
    if allow_short:
        out[values < lo] = -1.0
    return out


def _number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, not {value!r}")
    return float(value)


def _open_close(candles_or_arrays) -> tuple[np.ndarray, np.ndarray]:
    source = candles_or_arrays
    if isinstance(source, Candles):
        source = source.frame
    if isinstance(source, pd.DataFrame):
        missing = [c for c in ("open", "close") if c not in source.columns]
        if missing:
            raise InputError(
                f"missing column(s) {', '.join(missing)}; found {list(source.columns)}"
            )
        opens, closes = source["open"], source["close"]
    elif isinstance(source, dict):
        if "open" not in source or "close" not in source:
            raise InputError("a dict of arrays needs keys 'open' and 'close'")
        opens, closes = source["open"], source["close"]
    elif isinstance(source, (tuple, list)) and len(source) == 2:
        opens, closes = source
    else:
        raise InputError(
            f"expected Candles, a DataFrame, a dict or an (open, close) pair, "
            f"not {type(source).__name__}"
        )
    try:
        o = np.asarray(opens, dtype="float64")
        c = np.asarray(closes, dtype="float64")
    except (TypeError, ValueError):
        raise InputError("open and close must be numeric") from None
    if o.ndim != 1 or o.shape != c.shape:
        raise InputError(f"open and close must be 1-D of one length, got {o.shape} and {c.shape}")
    if len(c) == 0:
        raise InputError("no candles: open and close are empty")
    if not (np.isfinite(o).all() and np.isfinite(c).all()) or min(o.min(), c.min()) <= 0:
        raise InputError("open and close must be finite and positive")
    return o, c


def simulate(
    candles_or_arrays,
    positions,
    *,
    cash: float = 10_000.0,
    commission: float = 0.001,
    fraction: float = 0.95,
    start_index: int = 0,
    slippage: float = 0.0,
    reversal: str = "value",
    reissue: bool = False,
    exits=None,
    entries=None,
    units: float | None = None,
) -> dict:
    """The equity path Backtrader produces for per-bar targets (conventions: module docstring).

    Parameters
    ----------
    candles_or_arrays : Candles, DataFrame, dict or (open, close)
        The bars; only ``open`` (fill prices) and ``close`` (sizing and marking) are used.
    positions : array of shape (n,)
        The target decided at each bar's close, in ``{-1, 0, +1}``. Targets before
        ``start_index`` are ignored: the run starts flat at ``start_index``.
    cash : float
        Starting cash (also the value before the first fill).
    commission : float
        Proportional commission on traded value, ``0.001`` = 0.1 %.
    fraction : float
        Share of the broker value a position takes, in (0, 1].
    start_index : int
        First bar of the run (earlier bars are warm-up for the features only).
    slippage : float
        Each fill this fraction of the opening price worse — a buy at
        ``min(open × (1 + slippage), high)``, a sell at ``max(open × (1 − slippage), low)``,
        as Backtrader's ``set_slippage_perc(slip_open=True)`` — which needs ``high`` and
        ``low`` in the bars.
    reversal : {"value", "units"}
        How a flip from long to short (or back) is sized: ``"value"``, the new position is
        ``fraction`` of the value at the signal close (``order_target_percent``);
        ``"units"``, it keeps the units held (``close()`` then ``buy()``/``sell()`` under
        ``PercentSizer``).
    reissue : bool
        After an opening dropped for cash, order the unchanged target again at the next
        close (from flat), as a strategy that decides from the position it holds does.
    exits : (bars, prices), optional
        Positions closed *inside* a bar by a protective order (a stop, a take-profit limit, a
        trailing stop: :mod:`distillbt.protective` finds where Backtrader fills them): at bar
        ``f`` the position held is closed at ``price``; the target decided at ``f``'s close is
        then ordered from flat. ``bars`` increasing, after ``start_index``.
    entries : (sent, filled, prices[, sides]), optional
        Positions opened by entry orders (Stop, Limit or StopLimit orders sent while flat:
        :mod:`distillbt.entry_orders`): the target at bar ``sent`` is no market order; the
        order was sized at ``sent``'s close and opens a position of sign ``side`` (default:
        that target; an OCO pair may fill the other way) inside bar ``filled`` at ``price``
        (``filled`` -1: it never filled). The target decided at ``filled``'s close is
        ordered from that position. ``sent`` increasing, from ``start_index``.
    units : float, optional
        Every position holds this many units, whatever the value (``buy(size=…)``,
        ``order_target_size``, a ``FixedSize`` sizer), instead of ``fraction`` of it; an
        opening the cash cannot pay is dropped as Backtrader drops it.

    Returns
    -------
    dict
        ``score`` (``log(final_value / cash)``; ``-inf`` if the value is not positive),
        ``final_value``, ``equity`` (value at each close from ``start_index``, float64),
        ``trades`` (positions opened, as Backtrader counts trades: a flip opens one),
        ``exposure`` (share of those bars ending with a position), ``entries`` and ``exits``
        (bar indices of the fills that opened / closed a position; a flip is in both),
        ``fills`` (dict of arrays ``bar``, ``size`` (signed units), ``price``,
        ``commission``), ``commission_paid``, ``positions`` (the targets used, from
        ``start_index``), ``refused`` (bars whose opening was dropped for cash: the position
        is flat at their close whatever the target).
    """
    o, c = _open_close(candles_or_arrays)
    n = len(c)
    slippage = _number("slippage", slippage)
    if not 0 <= slippage < 0.5:
        raise InputError(f"slippage must lie in [0, 0.5), not {slippage:g}")
    prices = _FillPrices(o, *(_high_low(candles_or_arrays) if slippage else (None, None)), slippage)
    cash = _number("cash", cash)
    commission = _number("commission", commission)
    fraction = _number("fraction", fraction)
    if cash <= 0:
        raise InputError(f"cash must be positive, not {cash:g}")
    if commission < 0:
        raise InputError(f"commission must not be negative, not {commission:g}")
    if not 0 < fraction <= 1:
        raise InputError(f"fraction must lie in (0, 1], not {fraction:g}")
    if reversal not in ("value", "units"):
        raise InputError(f"reversal must be 'value' or 'units', not {reversal!r}")
    if units is not None and not (_number("units", units) > 0 and math.isfinite(units)):
        raise InputError(f"units must be a positive number of units, not {units!r}")
    if isinstance(start_index, bool) or not isinstance(start_index, (int, np.integer)):
        raise InputError(f"start_index must be an integer, not {start_index!r}")
    start = int(start_index)
    if not 0 <= start < n:
        raise InputError(f"start_index {start} is outside the {n} bars")
    try:
        target = np.asarray(positions, dtype="float64")
    except (TypeError, ValueError):
        raise InputError("positions must be numeric") from None
    if target.shape != (n,):
        raise InputError(f"positions must have shape ({n},), got {target.shape}")
    target = target[start:]
    if not np.isin(target, (-1.0, 0.0, 1.0)).all():
        raise InputError("positions must hold only -1, 0 and +1")

    exit_bars, exit_prices = _exits(exits, start, n)
    sent, entry_bars, entry_prices, sides = _entries(entries, start, n)
    sides = target[sent - start] if sides is None else sides
    target = target.copy()
    target[sent - start] = 0.0  # an entry order's side: no market order
    filled = entry_bars >= 0
    sent, entry_bars, entry_prices, sides = sent[filled], entry_bars[filled], entry_prices[filled], sides[filled]

    # Orders: every change of target, decided at a close, filled at the next bar's open; the
    # position is flat at the close of a bar a protective order closed it in, and held at the
    # close of one an entry order opened it in.
    previous = np.concatenate(([0.0], target[:-1]))
    previous[exit_bars - start] = 0.0
    previous[entry_bars - start] = sides
    signal_bars = np.flatnonzero(target != previous) + start
    signal_bars = signal_bars[signal_bars < n - 1]
    goals = target[signal_bars - start]
    fixed = sized = None
    if len(exit_bars) or len(entry_bars):
        # An exit at bar f is an order to go flat, decided "at f - 1" (it fills in bar f) at
        # its own price; it never meets a market order (the walk stops a trade's exits where
        # the strategy orders anything else). An entry order is one to the side it was sent
        # for, sized at the close that sent it.
        fixed = np.concatenate((np.full(len(signal_bars), np.nan), exit_prices, entry_prices))
        sized = np.concatenate((signal_bars, exit_bars - 1, sent))
        signal_bars = np.concatenate((signal_bars, exit_bars - 1, entry_bars - 1))
        goals = np.concatenate((goals, np.zeros(len(exit_bars)), sides))
        order = np.argsort(signal_bars, kind="stable")
        signal_bars, goals, fixed, sized = signal_bars[order], goals[order], fixed[order], sized[order]
    chain = dict(commission=commission, fraction=fraction, keep_units=reversal == "units",
                 reissue=np.concatenate((np.zeros(start), target)) if reissue else None, fixed=fixed, sized=sized)
    if units is None:
        fills = _chain(c, prices, signal_bars, goals, cash=cash, **chain)
    else:  # no prefix product: the order does not scale with the value (an affine map), and fills are few
        fills = _loop(c, prices, signal_bars, goals, money=cash, units=0.0, size=float(units), **chain)
    fill_bars, cash_after, units_after = fills["bar"], fills["cash"], fills["units"]

    # Between fills the units are constant: each bar's value comes from the last fill's state.
    last = np.searchsorted(fill_bars, np.arange(start, n), side="right")
    held = np.concatenate(([0.0], units_after))[last]
    equity = np.concatenate(([cash], cash_after))[last] + held * c[start:]
    final = float(equity[-1])
    return {
        "score": math.log(final / cash) if final > 0 else -math.inf,
        "final_value": final,
        "equity": equity,
        "trades": len(fills["entries"]),
        "exposure": float(np.mean(held != 0.0)),
        "entries": fills["entries"],
        "exits": fills["exits"],
        "fills": {key: fills[key] for key in ("bar", "size", "price", "commission")},
        "commission_paid": float(fills["commission"].sum()),
        "positions": target,
        "refused": fills["refused"],
    }


class _FillPrices:
    """Where market orders filled at a bar's open execute: the open, or with ``slippage`` a
    buy at ``min(open × (1 + s), high)`` and a sell at ``max(open × (1 − s), low)``."""

    def __init__(self, open_, high, low, slippage):
        self.open, self.high, self.low, self.slippage = open_, high, low, slippage

    def at(self, bars, direction):
        q = self.open[bars]
        if not self.slippage:
            return q
        up = np.minimum(q * (1.0 + self.slippage), self.high[bars])
        down = np.maximum(q * (1.0 - self.slippage), self.low[bars])
        return np.where(direction > 0, up, np.where(direction < 0, down, q))

    def one(self, bar: int, direction: float) -> float:
        return float(self.at(np.array([bar]), np.array([direction]))[0])


def _exits(exits, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    if exits is None:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    try:
        bars, prices = (np.asarray(x) for x in exits)
        bars, prices = bars.astype(np.int64, casting="same_kind"), prices.astype(np.float64)
    except (TypeError, ValueError):
        raise InputError("exits must be (bars, prices): integer bars and numeric prices") from None
    if bars.ndim != 1 or bars.shape != prices.shape:
        raise InputError(f"exits' bars and prices must be 1-D of one length, got {bars.shape} and {prices.shape}")
    if len(bars) and (bars[0] <= start or bars[-1] >= n or np.any(np.diff(bars) <= 0)):
        raise InputError(f"exit bars must increase strictly, after start_index {start} and before {n}")
    if not (np.isfinite(prices).all() and (prices > 0).all()):
        raise InputError("exit prices must be finite and positive")
    return bars, prices


def _entries(entries, start: int, n: int):
    if entries is None:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0), None
    try:
        if len(entries) not in (3, 4):
            raise ValueError
        sent, filled, prices, *sides = (np.asarray(x) for x in entries)
        sent, filled = (x.astype(np.int64, casting="same_kind") for x in (sent, filled))
        prices = prices.astype(np.float64)
        sides = sides[0].astype(np.float64) if sides else None
    except (TypeError, ValueError):
        raise InputError("entries must be (sent, filled, prices[, sides]): integer bars, numeric prices "
                         "and sides") from None
    if sides is not None and (sides.shape != sent.shape or not np.isin(sides, (-1.0, 1.0)).all()):
        raise InputError("entries' sides must be -1 or +1, one per entry order")
    if sent.ndim != 1 or not sent.shape == filled.shape == prices.shape:
        raise InputError(f"entries' sent, filled and prices must be 1-D of one length, got {sent.shape}, "
                         f"{filled.shape} and {prices.shape}")
    if len(sent) and (sent[0] < start or sent[-1] >= n or np.any(np.diff(sent) <= 0)):
        raise InputError(f"entry orders' sent bars must increase strictly, from start_index {start} and before {n}")
    done = filled >= 0
    if np.any(done & ((filled <= sent) | (filled >= n))) or np.any(~done & (filled != -1)):
        raise InputError("an entry order fills after the bar that sent it and before the last bar (-1: never)")
    if not (np.isfinite(prices[done]).all() and (prices[done] > 0).all()):
        raise InputError("entry prices must be finite and positive")
    return sent, filled, prices, sides


def _high_low(source):
    if isinstance(source, Candles):
        source = source.frame
    if isinstance(source, (pd.DataFrame, dict)) and "high" in source and "low" in source:
        return np.asarray(source["high"], dtype="float64"), np.asarray(source["low"], dtype="float64")
    raise InputError("slippage needs the bars' high and low (give Candles, a DataFrame or a dict with them)")


def _chain(close, open_, signals, targets, *, cash, commission, fraction, keep_units=False, reissue=None,
           fixed=None, sized=None) -> dict:
    """Cash and units after every fill, for orders decided at ``signals`` (bar indices).

    Each fill maps the state ``(cash, units)`` linearly: with ``V = cash + units·p`` at the
    signal close ``p``, the order is ``δ = β·V − units`` (``β = target·fraction / p``) and
    costs ``δ·q·(1 ± commission)`` at the fill open ``q``, the sign being that of the order.
    A flip that keeps its units (``keep_units``) is ``δ = −2·units``: cash gains
    ``2·units·q·(1 − s·commission)`` (``s`` the sign held). While the value stays positive
    the order's sign is that of the change of target, so every fill is a known 2×2 matrix and
    the states are a prefix product, computed in ``log2(fills)`` vectorised steps.
    Backtrader drops the opening part of a fill that would leave cash negative (and a
    non-positive value breaks the sign rule): from the first fill where that happens, an
    exact loop takes over (``reissue``: the targets per bar, to order an unchanged target
    again after a dropped opening; ``fixed``: per order, the price it fills at, NaN for a
    market order filled at the open; ``sized``: per order, the bar whose close sizes it,
    when not its signal's).
    """
    m = len(signals)
    loop = dict(commission=commission, fraction=fraction, keep_units=keep_units, reissue=reissue)
    if m == 0:
        return _loop(close, open_, signals, targets, money=cash, units=0.0, **loop)
    before = np.concatenate(([0.0], targets[:-1]))
    p, q = close[signals if sized is None else sized], open_.at(signals + 1, np.sign(targets - before))
    if fixed is not None:
        q = np.where(np.isnan(fixed), q, fixed)
    beta = targets * fraction / p
    k = q * (1.0 + np.sign(targets - before) * commission)
    # [C', u'] = [[1 - kβ, k(1 - βp)], [β, βp]] · [C, u]
    a, b, cc, d = 1.0 - k * beta, k * (1.0 - beta * p), beta, beta * p
    if keep_units:
        flip = (before != 0) & (targets == -before)
        # [C', u'] = [[1, 2q(1 - s·c)], [0, -1]] · [C, u]
        a, b, cc, d = (np.where(flip, x, y) for x, y in
                       ((1.0, a), (2.0 * q * (1.0 - before * commission), b), (0.0, cc), (-1.0, d)))
    a, b, cc, d = _prefix_product(a, b, cc, d)
    money, units = a * cash, cc * cash  # the run starts with (cash, 0)
    money_before = np.concatenate(([cash], money[:-1]))
    units_before = np.concatenate(([0.0], units[:-1]))
    value = money_before + units_before * p
    bad = (value <= 0) | ((targets != 0) & (money < 0))
    first_bad = int(np.argmax(bad)) if bad.any() else m
    bars = signals[:first_bad] + 1
    size = (units - units_before)[:first_bad]
    out = {
        "bar": bars, "size": size, "price": q[:first_bad],
        "commission": np.abs(size) * q[:first_bad] * commission,
        "cash": money[:first_bad], "units": units[:first_bad],
        "entries": bars[targets[:first_bad] != 0], "exits": bars[before[:first_bad] != 0],
        "refused": np.zeros(0, dtype=np.int64),
    }
    if first_bad < m:
        tail = _loop(close, open_, signals[first_bad:], targets[first_bad:],
                     money=float(money_before[first_bad]), units=float(units_before[first_bad]),
                     fixed=None if fixed is None else fixed[first_bad:],
                     sized=None if sized is None else sized[first_bad:], **loop)
        out = {key: np.concatenate((out[key], tail[key])) for key in out}
    return out


def _prefix_product(a, b, c, d):
    """Inclusive prefix products ``M_i ⋯ M_0`` of 2×2 matrices ``[[a, b], [c, d]]``
    (Hillis–Steele scan: after the step with shift ``s`` entry ``i`` holds the product of
    the ``2s`` matrices ending at ``i``)."""
    a, b, c, d = (np.array(x, dtype="float64") for x in (a, b, c, d))
    shift = 1
    while shift < len(a):
        # later · earlier: entry i absorbs the product ending at i - shift
        a1, b1, c1, d1 = a[shift:], b[shift:], c[shift:], d[shift:]
        a0, b0, c0, d0 = a[:-shift], b[:-shift], c[:-shift], d[:-shift]
        a[shift:], b[shift:], c[shift:], d[shift:] = (
            a1 * a0 + b1 * c0, a1 * b0 + b1 * d0, c1 * a0 + d1 * c0, c1 * b0 + d1 * d0,
        )
        shift *= 2
    return a, b, c, d


def _loop(close, open_, signals, targets, *, money, units, commission, fraction, keep_units=False,
          reissue=None, fixed=None, sized=None, size=None) -> dict:
    """The fills one by one, as Backtrader's broker executes them (close first, then open
    the rest only if cash stays non-negative; ``keep_units``: a flip keeps its units;
    ``reissue``: the targets per bar, an unchanged one ordered again after a dropped
    opening; ``size``: every position that many units, not ``fraction`` of the value)."""
    rows = {key: [] for key in ("bar", "size", "price", "commission", "cash", "units",
                                "entries", "exits", "refused")}
    closes = close.tolist()
    last_signal = len(closes) - 2  # a signal on the last bar never fills
    prices = [math.nan] * len(signals) if fixed is None else fixed.tolist()
    sizing = signals.tolist() if sized is None else sized.tolist()
    queue = list(zip(signals.tolist(), targets.tolist(), prices, sizing))[::-1]  # popped from the end: in order
    while queue:
        s, goal, at, sized_at = queue.pop()
        price = closes[sized_at]
        if keep_units and units != 0.0 and goal != 0.0 and (goal > 0) != (units > 0):
            delta = -2.0 * units
        elif size is not None:
            delta = goal * size - units
        else:
            delta = goal * fraction * (money + units * price) / price - units
        if delta == 0.0:
            continue
        q = open_.one(s + 1, delta) if math.isnan(at) else at
        if units != 0.0 and (delta > 0) != (units > 0):
            closed = min(delta, -units) if delta > 0 else max(delta, -units)
        else:
            closed = 0.0
        opened = delta - closed
        fee = 0.0
        if closed:
            fee += abs(closed) * q * commission
            money -= closed * q + abs(closed) * q * commission
            units += closed
            rows["exits"].append(s + 1)
        if opened:
            after = money - opened * q - abs(opened) * q * commission
            if after >= 0.0:
                fee += abs(opened) * q * commission
                money = after
                units += opened
                rows["entries"].append(s + 1)
            else:
                opened = 0.0
                rows["refused"].append(s + 1)
                # Flat at that close; a target unchanged there is ordered again (a changed
                # one is a signal already).
                if reissue is not None and s + 1 <= last_signal and reissue[s + 1] == goal and units == 0.0:
                    queue.append((s + 1, goal, math.nan, s + 1))
        if closed == 0.0 and opened == 0.0:
            continue
        for key, value in (("bar", s + 1), ("size", closed + opened), ("price", q),
                           ("commission", fee), ("cash", money), ("units", units)):
            rows[key].append(value)
    return {key: np.asarray(values, dtype="int64" if key in ("bar", "entries", "exits", "refused")
                            else "float64") for key, values in rows.items()}
