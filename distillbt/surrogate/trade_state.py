"""The state of the trade in progress, which exits depend on, as surrogate columns.

A strategy's exit often reads the trade it is in, not only its indicators: "out after 10
bars", "stop 2 % under the entry price", "trail 3 ATR under the highest high since entry".
:func:`trade_columns` turns a path of positions into those quantities, bar by bar, for the bars
a position is held at the close (0 when flat):

- ``trade:bars`` — bars held, the entry bar counting 1 (``len(self) - entered`` of a strategy
  that stored ``len(self)`` when it ordered);
- ``trade:ret`` — close / entry price − 1 (the entry price is the open of the entry bar: the
  market order's fill); ``trade:peak`` / ``trade:trough`` — the highest / lowest close since
  the signal (the close of the bar that ordered the entry included: a strategy that starts
  its trailing high when it calls ``buy()`` starts it there), the same way;
- ``trade:from_peak`` / ``trade:from_trough`` — close / that highest (lowest) close − 1;
  ``trade:from_high`` / ``trade:from_low`` — close / highest high (lowest low) since entry − 1;
- per own line in price units ``U`` (ATR, a standard deviation): ``trade:ret/U``,
  ``trade:from_peak/U``, ``trade:from_trough/U``, ``trade:from_high/U``, ``trade:from_low/U``
  — the same distances in multiples of ``U`` (``(close − entry) / U``…): ATR stops and
  chandelier exits.

Training rows get them from the positions the real strategy held; the walk
(:meth:`~.model.PositionSurrogate.walk`) from the positions it carries itself, trade by trade.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["TradeInputs", "TradeContext", "trade_names", "trade_columns", "held_columns", "BASE"]

BASE = ("bars", "ret", "peak", "trough", "from_peak", "from_trough", "from_high", "from_low")
_PER_UNIT = ("ret", "from_peak", "from_trough", "from_high", "from_low")


def trade_names(unit_columns=()) -> list[str]:
    """The trade columns of a configuration whose own price-unit lines are ``unit_columns``
    (their own-line column names, each the line divided by the close)."""
    return [f"trade:{k}" for k in BASE] + [f"trade:{k}/{u}" for u in unit_columns for k in _PER_UNIT]


@dataclass
class TradeInputs:
    """What a period's trade columns are computed from: its prices and, for ``trade:…/U``,
    the own-line columns ``U`` (line / close) over the same bars."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    units: dict = field(default_factory=dict)

    def rows(self, sl: slice) -> TradeInputs:
        return TradeInputs(self.open[sl], self.high[sl], self.low[sl], self.close[sl],
                           {k: v[sl] for k, v in self.units.items()})


@dataclass
class TradeContext:
    """The trade in progress at the close of the bar before a stretch: its position sign,
    bars held, entry price, and the highest / lowest close, high and low since entry."""

    state: float
    bars: int
    price: float
    peak: float
    trough: float
    high: float
    low: float

    @classmethod
    def entered(cls, state: float, price: float, signal_close: float) -> TradeContext:
        """A trade entered at the open of the next bar, at ``price``, ordered at a bar that
        closed at ``signal_close``: nothing held yet."""
        return cls(state, 0, price, signal_close, signal_close, -np.inf, np.inf)


def _raw(state, inputs: TradeInputs, context: TradeContext | None):
    """Per bar: bars held, entry price, highest / lowest close, highest high, lowest low since
    entry (NaN where flat)."""
    s = np.asarray(state, dtype=np.float64)
    n = len(s)
    before = np.concatenate(([context.state if context else 0.0], s[:-1]))
    held = s != 0
    new = held & (s != before)
    t = np.arange(n)
    start = np.maximum.accumulate(np.where(new, t, -1))  # -1: the run the context describes
    carried = held & (start < 0)
    if carried.any() and context is None:
        raise ValueError("a position held at the first bar needs its TradeContext")
    run = np.cumsum(new)  # 0: the carried run
    price = np.where(start >= 0, inputs.open[np.maximum(start, 0)], context.price if context else np.nan)
    bars = np.where(start >= 0, t - start + 1, (context.bars if context else 0) + t + 1).astype(np.float64)
    extremes = []
    close = np.asarray(inputs.close, dtype=np.float64)
    signal = np.concatenate(([np.nan], close[:-1]))  # the close of the bar before each entry
    for values, ufunc, seed in ((close, np.maximum, "peak"), (close, np.minimum, "trough"),
                                (inputs.high, np.maximum, "high"), (inputs.low, np.minimum, "low")):
        v = np.asarray(values, dtype=np.float64).copy()
        if seed in ("peak", "trough"):  # closes count from the bar that ordered the entry
            first = new & (t > 0)
            v[first] = ufunc(v[first], signal[first])
        if carried.any():
            v[0] = ufunc(v[0], getattr(context, seed))
        extremes.append(_running(v, run, ufunc))
    out = [bars, price, *extremes]
    return [np.where(held, x, np.nan) for x in out]


def _running(values, run, ufunc):
    """Cumulative ``ufunc`` (maximum or minimum) of ``values`` restarting at each new run."""
    order_break = np.flatnonzero(np.diff(run)) + 1
    if not len(order_break):
        return ufunc.accumulate(values)
    out = np.empty_like(values)
    for a, b in zip(np.concatenate(([0], order_break)), np.concatenate((order_break, [len(values)]))):
        out[a:b] = ufunc.accumulate(values[a:b])
    return out


def trade_columns(state, inputs: TradeInputs, names, context: TradeContext | None = None) -> np.ndarray:
    """``(bars, len(names))`` float32 trade columns (module docstring) of the path ``state``
    (the position's sign held at each bar's close), 0 where flat. ``context``: the trade in
    progress before the first bar, when a position is held there."""
    bars, price, peak, trough, high, low = _raw(state, inputs, context)
    close = np.asarray(inputs.close, dtype=np.float64)
    with np.errstate(all="ignore"):
        base = {"bars": bars, "ret": close / price - 1.0, "peak": peak / price - 1.0, "trough": trough / price - 1.0,
                "from_peak": close / peak - 1.0, "from_trough": close / trough - 1.0,
                "from_high": close / high - 1.0, "from_low": close / low - 1.0}
        distance = {"ret": close - price, "from_peak": close - peak, "from_trough": close - trough,
                    "from_high": close - high, "from_low": close - low}
        out = np.zeros((len(close), len(names)), dtype=np.float32)
        for j, name in enumerate(names):
            kind, _, unit = name[len("trade:"):].partition("/")
            if unit:
                v = distance[kind] / (inputs.units[unit] * close)
            else:
                v = base[kind]
            out[:, j] = np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0)
    return out


def context_at(state, inputs: TradeInputs, row: int, context: TradeContext | None = None) -> TradeContext | None:
    """The trade in progress at the close of bar ``row`` of the path ``state`` (None if flat)."""
    if row < 0 or state[row] == 0:
        return None
    bars, price, peak, trough, high, low = (x[row] for x in _raw(state[:row + 1], inputs.rows(slice(0, row + 1)),
                                                                  context))
    return TradeContext(float(state[row]), int(bars), float(price), float(peak), float(trough), float(high),
                        float(low))


def held_columns(context: TradeContext, inputs: TradeInputs, start: int, stop: int, names,
                 out: np.ndarray | None = None) -> tuple[np.ndarray, TradeContext]:
    """The trade columns ``names`` over rows ``[start, stop)`` of ``inputs`` while the trade
    ``context`` (the state before ``start``) stays held — what :func:`trade_columns` gives
    for a constant path, without its bookkeeping of runs: the walk calls this once per
    stretch of every trade — and the context at the close of ``stop - 1``."""
    close = inputs.close[start:stop]
    n = len(close)
    price = context.price
    extremes = {}

    def extreme(kind):  # the running extremes since entry, computed when a column needs them
        if kind not in extremes:
            values, ufunc = {"peak": (close, np.maximum), "trough": (close, np.minimum),
                             "high": (inputs.high[start:stop], np.maximum),
                             "low": (inputs.low[start:stop], np.minimum)}[kind]
            extremes[kind] = ufunc.accumulate(ufunc(values, getattr(context, kind)))
        return extremes[kind]

    out = np.empty((n, len(names)), dtype=np.float32) if out is None else out
    with np.errstate(all="ignore"):
        for j, name in enumerate(names):
            kind, _, unit = name[len("trade:"):].partition("/")
            if kind == "bars":
                out[:, j] = np.arange(context.bars + 1.0, context.bars + 1.0 + n)
                continue
            if kind in ("peak", "trough"):
                level, reference = extreme(kind), price
            elif kind == "ret":
                level, reference = close, price
            else:  # from_peak, from_trough, from_high, from_low
                level, reference = close, extreme(kind[5:])
            out[:, j] = (level - reference) / (inputs.units[unit][start:stop] * close) if unit \
                else level / reference - 1.0
    np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    if not n:
        return out, context
    last = {k: float(extreme(k)[-1]) for k in ("peak", "trough", "high", "low")}
    return out, TradeContext(context.state, context.bars + n, price, last["peak"], last["trough"], last["high"],
                             last["low"])
