"""The state of the trade in progress, which exits depend on, as surrogate columns.

A strategy's exit often reads the trade it is in, not only its indicators: "out after 10
bars", "stop 2 % under the entry price", "trail 3 ATR under the highest high since entry".
:func:`trade_columns` turns a path of positions into those quantities, bar by bar, for the bars
a position is held at the close (0 when flat):

- ``trade:bars`` — bars held, the entry bar counting 1 (``len(self) - entered`` of a strategy
  that stored ``len(self)`` when it ordered);
- ``trade:ret`` — close / entry price − 1 (the entry price is the open of the entry bar: the
  market order's fill; an entry order's own fill price); ``trade:peak`` / ``trade:trough`` — the highest / lowest close since
  the signal (the close of the bar that ordered the entry included: a strategy that starts
  its trailing high when it calls ``buy()`` starts it there), the same way;
- ``trade:from_peak`` / ``trade:from_trough`` — close / that highest (lowest) close − 1;
  ``trade:from_high`` / ``trade:from_low`` — close / highest high (lowest low) since the
  signal − 1, the signal bar's high (low) included as its close is in the peak (trough): a
  trailing stop started at ``self.data.high[0]`` where ``buy()`` is called;
- per own line in price units ``U`` (ATR, a standard deviation): ``trade:ret/U``,
  ``trade:from_peak/U``, ``trade:from_trough/U``, ``trade:from_high/U``, ``trade:from_low/U``
  — the same distances in multiples of ``U`` (``(close − entry) / U``…): ATR stops and
  chandelier exits;
- for a strategy that reads the feed's past highs or lows (:func:`~.own_features.
  past_prices`), per such price ``p``: ``trade:from_signal_p`` and
  ``trade:from_signal_p(-1)`` — close / ``p`` of the bar that ordered the entry (of the bar
  before it) − 1: a stop the strategy stored when it ordered (``self.stop =
  self.data.low[0]``, an inside bar's mother low ``self.data.low[-1]``) and exits beyond. (A
  close stored there is about the entry price, ``trade:ret``'s; each column more costs every
  search for the fewest trade columns a fit more.)

Training rows get them from the positions the real strategy held; the walk
(:meth:`~.model.PositionSurrogate.walk`) from the positions it carries itself, trade by trade.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .own_features import DATA_LINES

__all__ = ["TradeInputs", "TradeContext", "trade_names", "trade_columns", "held_columns", "entered_columns",
           "held_runs", "BASE", "protective_levels"]

BASE = ("bars", "ret", "peak", "trough", "from_peak", "from_trough", "from_high", "from_low")
_PER_UNIT = ("ret", "from_peak", "from_trough", "from_high", "from_low")
#: The prices a stop stored at the signal is taken from.
STOP_PRICES = ("high", "low")
#: ``trade:from_signal_p`` and ``trade:from_signal_p(-1)``: (which bar, which price) of :attr:`TradeContext.signal`
_SIGNAL_PRICE = {f"from_signal_{p}{suffix}": (bar, DATA_LINES.index(p)) for p in STOP_PRICES
                 for bar, suffix in ((1, ""), (0, "(-1)"))}


def trade_names(unit_columns=(), past_prices=()) -> list[str]:
    """The trade columns of a configuration whose own price-unit lines are ``unit_columns``
    (their own-line column names, each the line divided by the close) and whose strategy reads
    the feed's ``past_prices`` (of :data:`~.own_features.DATA_LINES`) bars back: the stops it
    may have stored at the signal from those of :data:`STOP_PRICES`."""
    return [f"trade:{k}" for k in BASE] + [f"trade:{k}/{u}" for u in unit_columns for k in _PER_UNIT] + \
        [f"trade:from_signal_{p}{suffix}" for suffix in ("", "(-1)") for p in STOP_PRICES if p in past_prices]


@dataclass
class TradeInputs:
    """What a period's trade columns are computed from: its prices and, for ``trade:…/U``,
    the own-line columns ``U`` (line / close) over the same bars; for protective and entry
    orders priced from the strategy's lines, those lines (float64, by name: ``lines``); for a
    recorded run whose entries were made by entry orders, the price each filled at, on its
    bar (``fills``, NaN elsewhere: a market entry fills at the open), and the bars since the
    close that sent it (``lags``, 0 elsewhere); ``previous``: open, high, low and close of the
    bar before the first (NaN: unknown), which a trade signalled at the first bar stored;
    ``parts``: for inputs that join several periods end to end, ``(first row, previous)`` of
    each period after the first — a bar before a period's first is that period's, never the
    one before in the joined arrays."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    units: dict = field(default_factory=dict)
    lines: dict = field(default_factory=dict)
    fills: np.ndarray | None = None
    lags: np.ndarray | None = None
    previous: tuple = (np.nan,) * 4
    parts: tuple = ()

    def rows(self, sl: slice) -> TradeInputs:
        first, stop = sl.start or 0, len(self.close) if sl.stop is None else sl.stop
        return TradeInputs(self.open[sl], self.high[sl], self.low[sl], self.close[sl],
                           {k: v[sl] for k, v in self.units.items()}, {k: v[sl] for k, v in self.lines.items()},
                           None if self.fills is None else self.fills[sl], None if self.lags is None else self.lags[sl],
                           self.bar_before(first, 1), tuple((s - first, p) for s, p in self.parts if first < s < stop))

    def bars_before(self, rows, back: int) -> np.ndarray:
        """:meth:`bar_before` of each of ``rows``: ``(len(rows), 4)``."""
        rows = np.asarray(rows, dtype=np.int64)
        firsts = np.array([0] + [first for first, _ in self.parts], dtype=np.int64)
        previous = np.array([self.previous] + [before for _, before in self.parts], dtype=np.float64)
        period = np.searchsorted(firsts, rows, side="right") - 1
        at = rows - back
        inside = at >= firsts[period]
        out = np.full((len(rows), len(DATA_LINES)), np.nan)
        for k, p in enumerate(DATA_LINES):
            out[inside, k] = getattr(self, p)[at[inside]]
        just = at == firsts[period] - 1
        out[just] = previous[period[just]]
        return out

    def bar_before(self, row: int, back: int) -> tuple:
        """Open, high, low and close of the bar ``back`` bars before bar ``row``, in ``row``'s
        period (NaN before the bar before its first)."""
        start, previous = 0, self.previous
        for first, before in self.parts:
            if first > row:
                break
            start, previous = first, before
        at = row - back
        if at >= start:
            return tuple(float(getattr(self, p)[at]) for p in DATA_LINES)
        return previous if at == start - 1 else (np.nan,) * 4

    def entry_lag(self, row: int) -> int:
        """Bars from the close that ordered the entry made in bar ``row`` to that bar (1: a
        market order; more: an entry order that waited)."""
        if self.lags is not None and self.lags[row] > 0:
            return int(self.lags[row])
        return 1

    def entry_price(self, row: int) -> float:
        """The price a position entered in bar ``row`` was bought or sold at."""
        if self.fills is not None and np.isfinite(self.fills[row]):
            return float(self.fills[row])
        return float(self.open[row])


@dataclass
class TradeContext:
    """The trade in progress at the close of the bar before a stretch: its position sign,
    bars held, entry price, and the highest / lowest close, high and low since entry; with
    protective orders (:mod:`distillbt.protective`), their prices at the next bar they are
    tried (``levels``; None until they are sent)."""

    state: float
    bars: int
    price: float
    peak: float
    trough: float
    high: float
    low: float
    levels: np.ndarray | None = None
    lag: int = 1  # bars from the close that ordered it to its entry bar (an entry order's wait)
    #: the prices (:data:`DATA_LINES`) of the bar before the one that ordered it and of that
    #: one (NaN: not in the inputs)
    signal: tuple = ((np.nan,) * 4,) * 2

    @classmethod
    def signalled(cls, state: float, price: float, inputs: TradeInputs, entry: int, lag: int = 1) -> TradeContext:
        """A trade entered in ``inputs``' bar ``entry``, at ``price``, ordered ``lag`` bars
        before (1: a market order at the close before; more: an entry order that waited):
        nothing held yet; its highest and lowest close, high and low start at the bar before
        the entry's (the entry bar's own at the first bar, whose bar before is not in the
        inputs); the prices it stored are those of the bar that ordered it and the one before
        (:meth:`TradeInputs.bar_before`: NaN outside the entry's period)."""
        row = max(entry - 1, 0)
        close = float(inputs.close[row])
        signal = (inputs.bar_before(entry, lag + 1), inputs.bar_before(entry, lag))
        return cls(state, 0, price, close, close, float(inputs.high[row]), float(inputs.low[row]), lag=lag,
                   signal=signal)


def held_runs(state) -> np.ndarray:
    """``(first bar, bars)`` of every run of one non-zero position in ``state`` (per bar; a
    reversal starts a new run)."""
    state = np.asarray(state, dtype=np.float64)
    if not len(state):
        return np.zeros((0, 2), dtype=np.int64)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(state) != 0) + 1))
    lengths = np.diff(np.concatenate((starts, [len(state)])))
    held = state[starts] != 0
    return np.column_stack([starts[held], lengths[held]]).astype(np.int64)


def _runs(state, inputs: TradeInputs, context: TradeContext | None):
    """``(start, stop, context before start)`` of every stretch of the path ``state`` held in
    one position (:func:`held_runs`); one at the first bar continues ``context`` when it holds
    the same position."""
    s = np.asarray(state, dtype=np.float64)
    for a, n in held_runs(s).tolist():
        if a == 0 and context is not None and context.state == s[0]:
            yield a, a + n, context
        else:  # entered at this bar's open, ordered at the close before (none before bar 0)
            yield a, a + n, TradeContext.signalled(float(s[a]), inputs.entry_price(a), inputs, a,
                                                   lag=inputs.entry_lag(a))


def trade_columns(state, inputs: TradeInputs, names, context: TradeContext | None = None) -> np.ndarray:
    """``(bars, len(names))`` float32 trade columns (module docstring) of the path ``state``
    (the position's sign held at each bar's close), 0 where flat. ``context``: the trade in
    progress before the first bar, when a position is held there."""
    out = np.zeros((len(state), len(names)), dtype=np.float32)
    for a, b, held in _runs(state, inputs, context):
        held_columns(held, inputs, a, b, names, out=out[a:b])
    return out


def context_at(state, inputs: TradeInputs, row: int, context: TradeContext | None = None,
               protection=None) -> TradeContext | None:
    """The trade in progress at the close of bar ``row`` of the path ``state`` (None if flat);
    with ``protection``, a trade entered on this path carries its orders' prices."""
    for a, b, held in _runs(state[:row + 1], inputs, context):
        if b == row + 1:
            after = held_columns(held, inputs, a, b, [])[1]
            if protection is not None and held is not context:
                after.levels = protection.after(held.state, protective_levels(protection, held, inputs, a),
                                                inputs.close[a + 1:b])
            return after
    return None


def protective_levels(protection, context: TradeContext, inputs: TradeInputs, entry: int) -> np.ndarray:
    """The prices of ``protection``'s orders (:class:`distillbt.protective.Protection`) when
    first tried, for the trade ``context`` entered in row ``entry`` (ordered at the row
    ``context.lag`` before: a bracket's children are sent there): lines they read come from
    ``inputs.lines`` at the row that sent them."""
    ordered = entry - context.lag

    def line(name, sent):
        row = ordered if sent == "with_entry" else entry
        return float(inputs.lines[name][row]) if row >= 0 else np.nan

    signal_close = np.nan
    if context.bars == 0:
        signal_close = float(inputs.close[ordered]) if context.lag > 1 and ordered >= 0 else context.peak
    return protection.levels(context.state, signal_close=signal_close,
                             entry_close=float(inputs.close[entry]), fill=context.price, line=line)


def held_columns(context: TradeContext, inputs: TradeInputs, start: int, stop: int, names,
                 out: np.ndarray | None = None) -> tuple[np.ndarray, TradeContext]:
    """The trade columns ``names`` over rows ``[start, stop)`` of ``inputs`` while the trade
    ``context`` (the state before ``start``) stays held — what :func:`trade_columns` gives
    for a constant path, without its bookkeeping of runs: the walk calls this once per
    stretch of every trade — and the context at the close of ``stop - 1``."""
    rows = slice(start, stop)
    n = stop - start
    out = np.empty((n, len(names)), dtype=np.float32) if out is None else out
    extremes = _fill_columns(out, names, inputs.close[rows], lambda p: getattr(inputs, p)[rows],
                             lambda unit: inputs.units[unit][rows], context.bars, context.price,
                             {k: getattr(context, k) for k in ("peak", "trough", "high", "low")},
                             lambda bar, k: context.signal[bar][k])
    if not n:
        return out, context
    return out, TradeContext(context.state, context.bars + n, context.price, float(extremes("peak")[-1]),
                             float(extremes("trough")[-1]), float(extremes("high")[-1]), float(extremes("low")[-1]),
                             signal=context.signal)


def entered_columns(inputs: TradeInputs, entries, length: int, names) -> np.ndarray:
    """``(len(entries), length, len(names))`` float32: the trade columns ``names`` of trades
    entered by market orders at the open of each of the rows ``entries`` (ordered at the close
    before: :meth:`TradeContext.signalled` with ``lag`` 1), over their first ``length`` rows
    as :func:`held_columns` gives them one trade at a time — many candidate entries in one
    pass. Rows past the inputs' end repeat the last row: the caller masks them."""
    entries = np.asarray(entries, dtype=np.int64)
    n = len(inputs.close)
    rows = np.minimum(entries[:, None] + np.arange(length), n - 1)
    signalled = np.maximum(entries - 1, 0)[:, None]  # the bar whose close ordered it
    price = np.where(entries < n, inputs.open[np.minimum(entries, n - 1)], np.nan)[:, None]
    start = {"peak": inputs.close[signalled], "trough": inputs.close[signalled], "high": inputs.high[signalled],
             "low": inputs.low[signalled]}
    signal = {}

    def signal_price(bar, k):
        if bar not in signal:  # bar 1: the bar that ordered it; 0: the one before
            signal[bar] = inputs.bars_before(entries, 2 - bar)
        return signal[bar][:, k:k + 1]

    out = np.empty((len(entries), length, len(names)), dtype=np.float32)
    _fill_columns(out, names, inputs.close[rows], lambda p: getattr(inputs, p)[rows],
                  lambda unit: inputs.units[unit][rows], 0, price, start, signal_price)
    return out


def _fill_columns(out, names, close, prices, units, bars, price, start: dict, signal):
    """The trade columns ``names`` into ``out`` (``(..., bars, len(names))``) over the bars
    ``close`` (``(..., bars)``) of trades held throughout: ``prices(name)`` and
    ``units(unit)`` give the bars' highs or lows and unit lines, ``bars`` and ``price`` the
    bars held before the first and the entry price, ``start`` the highest / lowest close, high
    and low before the first (``peak``, ``trough``, ``high``, ``low``), ``signal(bar, k)`` the
    price ``k`` of :attr:`TradeContext.signal`'s ``bar``; scalars for one trade, ``(k, 1)``
    columns for ``k`` trades. Returns ``extremes(kind)``: the running extremes since entry."""
    found = {}

    def extremes(kind):  # computed when a column needs them
        if kind not in found:
            values = close if kind in ("peak", "trough") else prices(kind)
            ufunc = np.maximum if kind in ("peak", "high") else np.minimum
            found[kind] = ufunc.accumulate(ufunc(values, start[kind]), axis=-1)
        return found[kind]

    held = np.arange(close.shape[-1])
    with np.errstate(all="ignore"):
        for j, (kind, unit) in enumerate(_parsed(names)):
            if kind == "bars":
                out[..., j] = bars + 1.0 + held
                continue
            if kind in ("peak", "trough"):
                level, reference = extremes(kind), price
            elif kind == "ret":
                level, reference = close, price
            elif kind in _SIGNAL_PRICE:
                level, reference = close, signal(*_SIGNAL_PRICE[kind])
            else:  # from_peak, from_trough, from_high, from_low
                level, reference = close, extremes(kind[5:])
            out[..., j] = (level - reference) / (units(unit) * close) if unit else level / reference - 1.0
    bad = ~np.isfinite(out)  # a zero unit or reference: 0, as np.nan_to_num(…, 0, 0, 0) would give
    if bad.any():
        out[bad] = 0.0
    return extremes


_PARSED: dict = {}


def _parsed(names) -> list[tuple[str, str]]:
    """``(kind, unit)`` of each trade column name (``trade:from_peak/own:atr/c`` →
    ``("from_peak", "own:atr/c")``), parsed once per list of names."""
    key = tuple(names)
    found = _PARSED.get(key)
    if found is None:
        found = _PARSED[key] = [(kind, unit) for kind, _, unit in (n[len("trade:"):].partition("/") for n in names)]
    return found
