"""Full Backtrader backtests, one at a time or many in parallel, with plain-dict results.

::

    result = run_backtest(SmaCross, candles, params={"fast": 10, "slow": 50},
                          start="2024-01-01", warmup_bars=500)
    result["score"], result["sharpe"], result["max_drawdown_pct"], result["trades"][:3]

    jobs = [BacktestJob(config, candles, start="2024-01-01") for config in found.configurations()]
    results = run_many(jobs, n_jobs=4)          # same order as jobs; failures as error records

Execution (shared with the vectorised screen; change both or neither)
--------------------------------------------------------------------
- One data feed, :class:`NumpyFeed`, preloaded straight from the candles' numpy arrays.
- Signals at bar ``t``'s close; market orders fill at bar ``t+1``'s open (Backtrader's default,
  no cheat-on-open). An open position at the end is marked to the last close, not closed.
- Starting cash ``cash``; a proportional commission ``commission`` of the traded value
  (``broker.setcommission(commission=c)``, stock-like); ``set_checksubmit(False)``, so orders
  are never refused for cash or margin; ``PercentSizer(percents=95)`` for strategies that call
  ``self.buy()`` without a size (Backtrader's default of 1 unit is useless at BTC prices).
- ``Cerebro(stdstats=False, runonce=True, preload=True)``: observers cost ~10 % and the
  non-vectorised modes 30–70 % (docs/design.md §8).
- The score of a run is ``log(final value / cash)`` (``-inf`` when the account is wiped out).
- Backtrader's vectorised indicators raise ``IndexError`` on a feed shorter than their period;
  such a run is repeated bar by bar (``runonce=False``), which gives the same results.

Start, end and warm-up
----------------------
``start`` and ``end`` (anything ``pandas.Timestamp`` accepts; naive times are UTC) select the
candles ``start <= time <= end`` that are *scored*. The ``warmup_bars`` candles before
``start`` (as many as exist) are fed first, so indicators are warm at ``start``, but the
broker drops every order submitted on a bar before ``start``: ``buy()``/``sell()`` (and so
``buy_bracket``/``sell_bracket``/``close``) return a Backtrader order already *Rejected*,
which ``notify_order`` receives before the next bar as Backtrader delivers any rejection; it
never fills, its bracket children are rejected with it, and ``cancel()`` on it does nothing
(a :class:`~distillbt.strategy.ModelStrategy` retries a rejected order at the next close). Each
run is flat with exactly ``cash`` at the close of the first scored bar, and the first fill
can happen at the open of the second. A run on ``start..end`` therefore scores
exactly like a run on those candles alone, except that indicators need no warm-up inside it
(an event-driven strategy such as SmaCross enters at the first cross after ``start``, not at
``start`` because its averages are already crossed: no position is carried in).
Strategies that want to know can read ``self.distillbt_trade_from`` (a UTC
``pandas.Timestamp``, set before ``start()`` is called). The equity curve, positions and
every statistic cover the scored bars only.

Results
-------
A plain dict (no Backtrader objects, so it crosses process boundaries): ``strategy``,
``name``, ``params``, ``score``, ``final_value``, ``cash``, ``commission``, ``start``,
``end``, ``bars`` (scored), ``warmup_bars`` (fed before start), ``seconds`` (wall time of the
whole call), the statistics of :func:`distillbt.stats.performance_stats`, ``trades`` (closed
trades: ``entry_time``, ``exit_time``, ``entry_price``, ``exit_price``, ``size`` — the
largest signed size reached —, ``pnl`` net of commission, ``bars`` held), and
``equity``/``times``/``positions`` (value and position size at each scored bar's close;
None when ``record_equity=False``), plus ``error`` (None; :func:`run_many` returns error
records with the message there).
"""

from __future__ import annotations

import array
import functools
import logging
import math
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import backtrader as bt
import numpy as np
import pandas as pd

from .data.candles import COLUMNS, Candles
from .data.timeframes import timeframe_ms
from .discovery import Configuration, configuration_name, strategy_params
from .errors import DistillbtError, EngineUnsupported, InputError, first_line
from .executor import using
from .objectives import DEFAULT_OBJECTIVE, bars_per_year, objective_score
from .stats import performance_stats

__all__ = [
    "StrategyRunError",
    "NumpyFeed",
    "BacktestJob",
    "run_backtest",
    "run_many",
    "DEFAULT_CASH",
    "DEFAULT_COMMISSION",
    "SIZER_PERCENTS",
    "check_fills",
    "own_sizer",
]

log = logging.getLogger(__name__)

DEFAULT_CASH = 10_000.0
DEFAULT_COMMISSION = 0.001
SIZER_PERCENTS = 95

_DAY_NS = 86_400_000_000_000
_MINUTE_NS = 60_000_000_000
_UNIX_EPOCH_ORDINAL = 719_163  # datetime.date(1970, 1, 1).toordinal()


class StrategyRunError(DistillbtError):
    """A strategy raised while Backtrader ran it (the message names the configuration)."""


# --------------------------------------------------------------------------------------------
# The data feed


class NumpyFeed(bt.feed.DataBase):
    """A Backtrader data feed preloaded in one go from numpy arrays.

    ``bt.feeds.PandasData`` builds every bar through Python (``iloc`` and ``date2num`` per
    row); this feed copies each whole column into the line buffers at once, which roughly
    halves a full backtest's time on minute data (docs/design.md §8; ``benchmarks/
    bench_backtest.py``). Bar times are converted to Backtrader's float day numbers with
    exactly the values ``date2num`` would give, so strategies that read
    ``self.data.datetime`` see what they would see with ``PandasData``.

    Build it with :meth:`from_candles`. ``fromdate``/``todate`` are honoured; with
    ``preload=False`` (or ``exactbars``) it falls back to loading bar by bar.
    """

    params = (("arrays", None),)

    @classmethod
    def from_candles(cls, candles, *, name: str | None = None) -> NumpyFeed:
        """A feed over a :class:`~distillbt.data.candles.Candles` (or a frame in its format)."""
        frame = candles.frame if isinstance(candles, Candles) else candles
        timeframe = candles.timeframe if isinstance(candles, Candles) else None
        ns = pd.DatetimeIndex(frame.index).as_unit("ns").asi8
        arrays = feed_arrays(ns, *(frame[col].to_numpy() for col in COLUMNS))
        kwargs = dict(arrays=arrays, name=name or getattr(candles, "symbol", "") or "data")
        if timeframe is not None:
            kwargs["timeframe"], kwargs["compression"] = _bt_timeframe(timeframe)
        return cls(**kwargs)

    # Nothing ever sets tick values on this feed (see advance), so the broker prices orders
    # from the bar itself, exactly as it would from ticks filled from the bar.
    tick_open = tick_high = tick_low = tick_close = tick_volume = tick_openinterest = None
    tick_last = None

    def start(self):
        super().start()
        self._next_row = 0
        self._bulk = False

    def preload(self):
        arrays = self._selected()
        lines = [getattr(self.lines, alias) for alias in arrays]
        if not all(isinstance(line.array, array.array) and not line.extension for line in lines):
            # Bounded buffers (exactbars) or lookahead: let Backtrader load bar by bar.
            return super().preload()
        for line, values in zip(lines, arrays.values()):
            line.array.frombytes(values.tobytes())
        # As Backtrader's own preload loop leaves it: all bars stored, pointer before the first.
        self.home()
        self._bulk = True
        self._next_row = len(arrays["datetime"])  # _load has nothing more to give

    def advance(self, size=1, datamaster=None, ticks=True):
        # Backtrader copies every value of the bar into tick_* attributes and clears them again
        # at each bar (~15 % of a simple strategy's run); for plain bars they equal the bar's
        # values, which is what the broker reads when they are None.
        if not self._bulk or datamaster is not None:
            return super().advance(size, datamaster, ticks)
        if self.tick_last is not None:  # something filled ticks (e.g. a runnext path): clear
            self._tick_nullify()
        self.lines.advance(size)

    def advance_peek(self):
        if not self._bulk:
            return super().advance_peek()
        line = self.lines.datetime
        nxt = line.idx + 1
        return line.array[nxt] if nxt < len(line.array) else math.inf

    def _load(self):
        arrays = self._selected()
        row = self._next_row
        if row >= len(arrays["datetime"]):
            return False
        for alias, values in arrays.items():
            getattr(self.lines, alias)[0] = values[row]
        self._next_row = row + 1
        return True

    def _selected(self) -> dict:
        arrays = self.p.arrays
        dt = arrays["datetime"]
        if self.fromdate > -math.inf or self.todate < math.inf:
            keep = (dt >= self.fromdate) & (dt <= self.todate)
            arrays = {alias: values[keep] for alias, values in arrays.items()}
        return arrays


def feed_arrays(ns, open_, high, low, close, volume) -> dict:
    n = len(ns)
    as_float = lambda values: np.ascontiguousarray(values, dtype=np.float64)  # noqa: E731
    return {
        "datetime": _bt_datenums(np.asarray(ns, dtype=np.int64)),
        "open": as_float(open_),
        "high": as_float(high),
        "low": as_float(low),
        "close": as_float(close),
        "volume": as_float(volume),
        "openinterest": np.zeros(n),
    }


def _bt_datenums(ns: np.ndarray) -> np.ndarray:
    """Backtrader's ``date2num`` of UTC nanosecond timestamps, vectorised and bit-identical.

    ``date2num`` is ``fsum(ordinal, h/24, m/1440, s/86400, us/86400e6)``. For ordinals in one
    binade (years 1436–2871, so every pandas timestamp) the fractional part of the correctly
    rounded sum depends on the time of day only, so it is computed once per distinct time of
    day with ``math.fsum`` and added to the integer day exactly; for bars on whole minutes
    (every timeframe from 1m up) once per process (:func:`_minute_fractions`).
    """
    if len(ns) == 0:
        return np.zeros(0)
    days = ns // _DAY_NS
    tods = ns - days * _DAY_NS
    base = float(days[0] + _UNIX_EPOCH_ORDINAL)
    minutes, off_minute = np.divmod(tods, _MINUTE_NS)
    if not off_minute.any():
        # a recording converts one short window per run: ~600 fsums a window on 1m bars
        fractions = _minute_fractions(math.frexp(base)[1])[minutes]
    else:
        codes, unique = pd.factorize(tods)
        fractions = np.array([_day_fraction(tod, base) for tod in np.asarray(unique, dtype=np.int64).tolist()],
                             dtype=np.float64)[codes]
    return (days + _UNIX_EPOCH_ORDINAL).astype(np.float64) + fractions


def _day_fraction(tod: int, base: float) -> float:
    """The fractional part of ``date2num`` at ``tod`` nanoseconds into a day whose ordinal is
    in ``base``'s binade."""
    us = tod // 1000  # datetime keeps microseconds, as PandasData's conversion does
    hour, rest = divmod(us, 3_600_000_000)
    minute, rest = divmod(rest, 60_000_000)
    second, micro = divmod(rest, 1_000_000)
    return math.fsum((base, hour / 24.0, minute / 1440.0, second / 86400.0, micro / 86400000000.0)) - base


@functools.cache
def _minute_fractions(binade: int) -> np.ndarray:
    """:func:`_day_fraction` of each minute of the day, for ordinals of ``binade``
    (``math.frexp``'s exponent): the same for every day there."""
    base = math.ldexp(0.5, binade)  # the binade's first number, an integer ordinal
    fractions = np.array([_day_fraction(m * _MINUTE_NS, base) for m in range(_DAY_NS // _MINUTE_NS)])
    fractions.flags.writeable = False  # shared by every call
    return fractions


def _bt_timeframe(timeframe: str) -> tuple[int, int]:
    ms = timeframe_ms(timeframe)
    for unit_ms, frame in ((7 * 86_400_000, bt.TimeFrame.Weeks), (86_400_000, bt.TimeFrame.Days),
                           (60_000, bt.TimeFrame.Minutes), (1_000, bt.TimeFrame.Seconds)):
        if ms % unit_ms == 0:
            return frame, ms // unit_ms
    return bt.TimeFrame.MicroSeconds, ms * 1000


# --------------------------------------------------------------------------------------------
# Broker and recorder


class _Broker(bt.brokers.BackBroker):
    """Backtrader's broker, rejecting orders submitted on bars before the scored period.

    Such an order is built by BackBroker exactly as any other (``BuyOrder``/``SellOrder``,
    its info and OCO group), then rejected at submission the way BackBroker rejects a bracket
    child whose parent is gone: ``order.reject()`` and one notification, which the strategy's
    ``notify_order`` (and its analyzers) receive before its next bar. It never reaches the
    pending queue, so it never fills and touches neither cash nor position; its bracket
    children are rejected too (submitted on the same warm-up bar, or later by BackBroker
    itself, their parent being unknown to it), and cancelling it is a no-op, as for any order
    no longer pending.
    """

    trade_from = -math.inf  # Backtrader day number of the first scored bar

    def submit(self, order, check=True):
        # BackBroker.buy/sell end here, once the order exists (data.datetime[0] is the bar
        # buy/sell were called on).
        if order.data.datetime[0] < self.trade_from:
            order.reject()
            self.notify(order)
            return order
        return super().submit(order, check)


class _Recorder(bt.Analyzer):
    """Broker value and position size at every bar's close, and the closed trades.

    Analyzers run at every bar, warm-up included (``prenext`` defaults to ``next``). Entry
    times, prices and net P&L of trades come from Backtrader's own ``Trade`` objects; the exit
    price and the size, which a closed ``Trade`` no longer holds, from the fills.
    """

    params = (("trade_from", None),)
    #: The replay (:mod:`distillbt.surrogate.replay`) calls no analyzer's ``next``; it records
    #: the value and position at every bar itself and :func:`run_backtest` reads them there.
    replay_safe = True

    def __init__(self):
        self.values = []
        self.positions = []
        self.trades = []
        self._size = 0.0
        self._open = None  # the trade being built from fills
        self._closed = deque()  # (exit price, largest signed size) awaiting Backtrader's Trade

    def start(self):
        self.strategy.distillbt_trade_from = self.p.trade_from
        self._data = self.strategy.datas[0]
        # Bound once: this runs at every bar. The broker keeps one Position object per data
        # for the whole run and updates it in place.
        self._value = self.strategy.broker.getvalue
        self._position = self.strategy.broker.getposition(self._data)
        self._add_value, self._add_position = self.values.append, self.positions.append

    def next(self):
        self._add_value(self._value())
        self._add_position(self._position.size)

    def notify_order(self, order):
        if order.status != order.Completed or order.data is not self._data:
            return
        size, price = order.executed.size, order.executed.price
        before, after = self._size, order.executed.psize
        self._size = after
        if before == 0:
            self._start_trade(after)
            return
        if (size > 0) == (before > 0):  # adding to the position
            if abs(after) > abs(self._open["largest"]):
                self._open["largest"] = after
            return
        closing = size if abs(size) <= abs(before) else -before
        self._open["exit_value"] += closing * price
        self._open["exit_size"] += closing
        if after == 0 or (after > 0) != (before > 0):
            trade = self._open
            self._closed.append((trade["exit_value"] / trade["exit_size"], trade["largest"]))
            self._open = None
            if after != 0:  # reversed: the rest of the fill opens the next trade
                self._start_trade(after)

    def _start_trade(self, size):
        self._open = {"largest": size, "exit_value": 0.0, "exit_size": 0.0}

    def notify_trade(self, trade):
        if not trade.isclosed or trade.data is not self._data:
            return
        exit_price, largest = self._closed.popleft() if self._closed else (math.nan, math.nan)
        self.trades.append({
            "entry_dt": trade.dtopen,
            "exit_dt": trade.dtclose,
            "entry_price": float(trade.price),
            "exit_price": float(exit_price),
            "size": float(largest),
            "pnl": float(trade.pnlcomm),
            "bars": int(trade.barlen),
        })

    def get_analysis(self):
        return {"values": self.values, "positions": self.positions, "trades": self.trades}


# --------------------------------------------------------------------------------------------
# One backtest


def run_backtest(
    strategy_cls: type[bt.Strategy],
    candles: Candles,
    *,
    params: Mapping | None = None,
    cash: float = DEFAULT_CASH,
    commission: float = DEFAULT_COMMISSION,
    start=None,
    end=None,
    warmup_bars: int = 0,
    record_equity: bool = True,
    name: str | None = None,
    objective: str | None = None,
    slippage: float = 0.0,
    fraction: float | None = None,
    cerebro: type = bt.Cerebro,
) -> dict:
    """Run one full Backtrader backtest and return a plain dict of results.

    Parameters
    ----------
    strategy_cls : bt.Strategy subclass
        The strategy; ``params`` (a dict, default the class defaults) configure it.
    candles : Candles
        The market; only ``start <= time <= end`` is scored (both optional, inclusive).
    cash, commission : float
        Starting cash, and commission as a fraction of traded value (0.001 = 0.1 %).
    warmup_bars : int
        Candles before ``start`` fed to warm indicators up; no order is filled from them
        (see the module docstring). Fewer are fed when fewer exist (``result["warmup_bars"]``).
    record_equity : bool
        Return ``equity``, ``times`` and ``positions`` arrays (statistics are computed
        either way); False keeps results small when only scores are needed.
    name : str, optional
        Label of the run in the result and in errors; default ``Class(param=value, ...)``
        with the given params (a configuration's name, in :func:`run_many`).
    objective : str, optional
        What ``score`` measures (:mod:`distillbt.objectives`; default ``return``, the log of
        final value over cash, also in ``log_return``).
    slippage : float
        Market orders fill this fraction of the price worse (Backtrader's
        ``set_slippage_perc`` on the opening price, never beyond the bar's high or low).
    fraction : float, optional
        Share of the broker value a position takes (``PercentSizer``; default 0.95). A
        strategy's own sizer (``self.setsizer`` in ``__init__``) wins in the full backtest.
    cerebro : type
        The ``bt.Cerebro`` class that runs it (:class:`distillbt.surrogate.replay.ReplayCerebro`
        replays the strategy's ``next()`` without Backtrader's per-line bookkeeping; same
        result).

    Returns
    -------
    dict
        See the module docstring.

    Raises
    ------
    InputError
        Bad arguments: not a strategy class, unknown parameter, no candles in the period...
    StrategyRunError
        The strategy (or one of its indicators) raised: one line with the configuration
        and the error's first line; the original exception is chained.
    """
    began = time.perf_counter()
    params = _check_run_args(strategy_cls, candles, params, cash, commission, warmup_bars)
    check_fills(slippage=slippage, fraction=fraction)
    name = name or configuration_name(strategy_cls.__name__, params)
    first, stop, fed_from = _period(candles, start, end, warmup_bars)

    frame = candles.frame
    ns = frame.index.as_unit("ns").asi8[fed_from:stop]
    arrays = feed_arrays(ns, *(frame[col].to_numpy()[fed_from:stop] for col in COLUMNS))
    warm = first - fed_from
    times = frame.index[first:stop]
    setup = dict(arrays=arrays, strategy_cls=strategy_cls, params=params, cash=cash,
                 commission=commission, slippage=slippage, fraction=fraction,
                 timeframe=candles.timeframe, symbol=candles.symbol,
                 trade_from=arrays["datetime"][warm] if warm else -math.inf, cerebro_cls=cerebro)
    try:
        strategy = run_cerebro(analyzers={"distillbt": (_Recorder, {"trade_from": times[0]})}, **setup)
    except EngineUnsupported:
        raise
    except Exception as exc:
        raise StrategyRunError(f"{name}: {first_line(exc, with_type=True)}") from exc
    record = strategy.analyzers.distillbt
    own = strategy.analyzers.distillbt_sizer.own
    replayed = getattr(strategy, "distillbt_replay", None)  # a replay records both itself

    equity = np.asarray(record.values if replayed is None else replayed["value"], dtype=np.float64)
    positions = np.asarray(record.positions if replayed is None else replayed["size"], dtype=np.float64)
    if len(equity) != len(ns):
        raise DistillbtError(
            f"{name}: recorded {len(equity)} bars of {len(ns)} fed (more than one data feed?)"
        )
    equity, positions = equity[warm:], positions[warm:]
    trades = _trades(record.trades, arrays["datetime"], frame.index[fed_from:stop])
    final = float(equity[-1])
    result = {
        "strategy": strategy_cls.__name__,
        "name": name,
        "params": params,
        "score": objective_score(objective, equity, cash=cash, bars_per_year=bars_per_year(candles.timeframe, times)),
        "objective": objective or DEFAULT_OBJECTIVE,
        "log_return": math.log(final / cash) if final > 0 else -math.inf,
        "final_value": final,
        "cash": float(cash),
        "commission": float(commission),
        "start": times[0],
        "end": times[-1],
        "bars": len(times),
        "warmup_bars": warm,
        "slippage": float(slippage),
        "sizer": own or {"class": "PercentSizer", "params": {"percents": SIZER_PERCENTS if fraction is None
                                                                   else 100.0 * fraction}},
        "own_sizer": own is not None,
        "engine": getattr(cerebro, "engine", "backtrader"),
    }
    result.update(performance_stats(equity, times, positions=positions,
                                    trade_pnls=[t["pnl"] for t in trades]))
    result.update({
        "trades": trades,
        "equity": equity if record_equity else None,
        "times": times if record_equity else None,
        "positions": positions if record_equity else None,
        "error": None,
        "seconds": time.perf_counter() - began,
    })
    return result


class _DefaultSizer(bt.Analyzer):
    """Gives the strategy ``PercentSizer(percents)`` unless it set its own sizer in
    ``__init__`` (``self.setsizer(...)``), which is then used and named in :attr:`own`."""

    params = (("percents", SIZER_PERCENTS),)
    replay_safe = True  # works in start() only

    def start(self):
        sizer = self.strategy.getsizer()
        # Backtrader's own default is a FixedSize(stake=1) made before the strategy's __init__
        default = type(sizer) is bt.sizers.FixedSize and sizer.p.stake == 1 and sizer.p.tranches == 1
        self.own = None if default else own_sizer(sizer)
        if default:
            self.strategy.setsizer(bt.sizers.PercentSizer(percents=self.p.percents))

    def get_analysis(self):
        return {"own": self.own}


def own_sizer(sizer) -> dict:
    """``{"class", "params"}`` of a strategy's own sizer (numbers and strings only)."""
    params = {name: getattr(sizer.p, name) for name in sizer.params._getkeys()}
    return {"class": type(sizer).__name__,
            "params": {k: v for k, v in params.items() if isinstance(v, (int, float, str, bool))}}


def run_cerebro(*, analyzers: dict, **setup) -> bt.Strategy:
    """Run one strategy with the shared execution conventions (module docstring) and the
    ``analyzers`` (name → (class, kwargs)); returns the strategy instance. The full backtests
    and the surrogate's episode recordings both run through here, so their fills agree."""
    try:
        return _cerebro(runonce=True, analyzers=analyzers, **setup).run()[0]
    except IndexError as exc:
        if not _short_feed_bug(exc):
            raise
        # Backtrader's vectorised indicators index past the end when the feed is shorter
        # than their period; bar-by-bar mode handles it and gives the same results.
        log.info("%s: Backtrader's vectorised run failed on a short feed (%s: %s); running bar by bar",
                 getattr(setup.get("strategy_cls"), "__name__", "strategy"), type(exc).__name__, exc)
        return _cerebro(runonce=False, analyzers=analyzers, **setup).run()[0]


def _cerebro(*, arrays, strategy_cls, params, cash, commission, timeframe, symbol, trade_from,
             analyzers, runonce, slippage=0.0, fraction=None, cerebro_cls=bt.Cerebro) -> bt.Cerebro:
    """A Cerebro with the shared execution conventions (module docstring), ready to run."""
    cerebro = cerebro_cls(stdstats=False, runonce=runonce, preload=True, maxcpus=1)
    broker = _Broker()
    broker.trade_from = trade_from
    cerebro.setbroker(broker)
    broker.setcash(cash)
    broker.setcommission(commission=commission)
    broker.set_checksubmit(False)
    if slippage:
        # on the opening price too (market orders fill at the open), capped at the bar's range
        broker.set_slippage_perc(slippage, slip_open=True, slip_limit=True, slip_match=True, slip_out=False)
    # Not cerebro.addsizer: Cerebro would replace a sizer the strategy set in its __init__.
    cerebro.addanalyzer(_DefaultSizer, _name="distillbt_sizer",
                        percents=SIZER_PERCENTS if fraction is None else 100.0 * fraction)
    interval = {}
    if timeframe:
        interval["timeframe"], interval["compression"] = _bt_timeframe(timeframe)
    cerebro.adddata(NumpyFeed(arrays=arrays, name=symbol or "data", **interval))
    cerebro.addstrategy(strategy_cls, **params)
    for name, (analyzer, kwargs) in analyzers.items():
        cerebro.addanalyzer(analyzer, _name=name, **kwargs)
    return cerebro


def _short_feed_bug(exc: IndexError) -> bool:
    """Whether an IndexError was raised inside one of Backtrader's own ``once`` methods."""
    tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    return "backtrader" in code.co_filename and code.co_name in ("once", "oncestart")


def _check_run_args(strategy_cls, candles, params, cash, commission, warmup_bars) -> dict:
    if not (isinstance(strategy_cls, type) and issubclass(strategy_cls, bt.Strategy)):
        raise InputError(f"strategy_cls must be a bt.Strategy subclass, not {strategy_cls!r}")
    if not isinstance(candles, Candles):
        raise InputError(f"candles must be Candles (see validate_candles), not "
                         f"{type(candles).__name__}")
    params = dict(params or {})
    known = strategy_params(strategy_cls)
    for key in params:
        if key not in known:
            raise InputError(f"{strategy_cls.__name__} has no parameter {key!r} "
                             f"(its parameters: {', '.join(known) or 'none'})")
    if not (_is_number(cash) and cash > 0):
        raise InputError(f"cash must be a positive number, not {cash!r}")
    if not (_is_number(commission) and commission >= 0):
        raise InputError(f"commission must be a number >= 0, not {commission!r}")
    if (isinstance(warmup_bars, bool) or not isinstance(warmup_bars, (int, np.integer))
            or warmup_bars < 0):
        raise InputError(f"warmup_bars must be an integer >= 0, not {warmup_bars!r}")
    return params


def check_fills(*, slippage: float = 0.0, fraction: float | None = None) -> None:
    """One-line :class:`InputError` for a slippage outside [0, 0.5) or a fraction outside (0, 1]."""
    if not (_is_number(slippage) and 0 <= slippage < 0.5):
        raise InputError(f"slippage must be a fraction of the price in [0, 0.5), not {slippage!r}")
    if fraction is not None and not (_is_number(fraction) and 0 < fraction <= 1):
        raise InputError(f"fraction must be a share of equity in (0, 1], not {fraction!r}")


def _is_number(value) -> bool:
    return (not isinstance(value, bool) and isinstance(value, (int, float, np.number))
            and math.isfinite(value))


def _period(candles: Candles, start, end, warmup_bars: int) -> tuple[int, int, int]:
    """Row of the first scored candle, row after the last, and row of the first one fed."""
    index = candles.frame.index
    first = 0 if start is None else int(index.searchsorted(_utc(start, "start"), side="left"))
    stop = len(index) if end is None else int(index.searchsorted(_utc(end, "end"), side="right"))
    if stop <= first:
        raise InputError(
            f"no candles between start={start} and end={end} "
            f"(the candles cover {index[0]} .. {index[-1]})"
        )
    return first, stop, max(0, first - warmup_bars)


def _utc(value, what: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} is not a timestamp: {value!r} ({exc})") from None
    if stamp is pd.NaT:
        raise InputError(f"{what} is not a timestamp: {value!r}")
    return stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")


def _trades(raw: list[dict], datenums: np.ndarray, index: pd.DatetimeIndex) -> list[dict]:
    # Map Backtrader's float day numbers back to the exact candle times they came from
    # (all of them at once: a strategy that trades every other bar has tens of thousands).
    if not raw:
        return []
    last = len(index) - 1
    at = np.minimum(np.searchsorted(datenums, [[t["entry_dt"], t["exit_dt"]] for t in raw]), last)
    entries, exits = list(index[at[:, 0]]), list(index[at[:, 1]])
    return [{"entry_time": entry, "exit_time": exit_, "entry_price": trade["entry_price"],
             "exit_price": trade["exit_price"], "size": trade["size"], "pnl": trade["pnl"], "bars": trade["bars"]}
            for trade, entry, exit_ in zip(raw, entries, exits)]


# --------------------------------------------------------------------------------------------
# Many backtests


@dataclass(frozen=True)
class BacktestJob:
    """One full backtest for :func:`run_many`: a configuration, the candles and the options
    of :func:`run_backtest`.

    The configuration's strategy is imported in the worker from its module and file (a
    :class:`~distillbt.discovery.StrategySpec`), never pickled by value (docs/design.md §9). Use
    :meth:`StrategySpec.from_class <distillbt.discovery.StrategySpec.from_class>` for a class
    from an importable module.
    """

    configuration: Configuration
    candles: Candles
    cash: float = DEFAULT_CASH
    commission: float = DEFAULT_COMMISSION
    start: object = None
    end: object = None
    warmup_bars: int = 0
    record_equity: bool = True
    #: The score's objective (:mod:`distillbt.objectives`; None: ``return``), the slippage
    #: (fraction of the fill price) and the share of equity per position (None: 95 %).
    objective: str | None = None
    slippage: float = 0.0
    fraction: float | None = None
    #: Model strategies only: fit the model in the worker, outside Backtrader, on the candles
    #: before this position (:meth:`~distillbt.strategy.ModelStrategy.fit_model`'s ``end``)
    #: and pass it as ``fitted``; the result's ``fit_seconds`` says what the fit cost.
    fit_until: int | None = None
    #: Model strategies only: a model fitted elsewhere (e.g. on a pooled basket), used as is.
    fitted: object = None
    #: The ``bt.Cerebro`` class that runs it; when it cannot run the strategy
    #: (:class:`~distillbt.errors.EngineUnsupported`), Backtrader's own does, and the result's
    #: ``engine_fallback`` says why.
    cerebro: type = bt.Cerebro


def run_many(
    jobs: Iterable[BacktestJob],
    *,
    n_jobs: int = 1,
    backend: str = "loky",
    progress: bool = True,
    scheduler: str | None = None,
    executor=None,
) -> list[dict]:
    """Run many full backtests, in parallel, and return their results in order.

    Each result is :func:`run_backtest`'s dict; a job that fails (its strategy raises, cannot
    be imported, bad options) gives an error record instead — ``strategy``, ``name``,
    ``params``, ``error`` (one line), ``error_type``, ``seconds`` — and the batch goes on.

    They run on ``executor``, else on the active :class:`~distillbt.executor.Executor`, else on
    one made from ``n_jobs`` (``-1``: every core), ``backend`` (``loky``, ``threading``,
    ``dask``) and ``scheduler`` (Dask: a running cluster; default a LocalCluster) for this
    call. ``n_jobs=1`` runs in this process. ``progress`` shows a tqdm bar on stderr.
    """
    jobs = list(jobs)
    for job in jobs:
        if not isinstance(job, BacktestJob):
            raise InputError(f"jobs must be BacktestJob objects, not {type(job).__name__}")
    with using(executor, n_jobs=n_jobs, backend=backend, scheduler=scheduler) as ex:
        ex.require_strategy_files(jobs)
        return ex.map(_run_job, [(job,) for job in jobs], desc="backtests", unit="run", progress=progress)


def _run_job(job: BacktestJob) -> dict:
    """The worker side of :func:`run_many`: import the strategy here, return a plain dict."""
    config = job.configuration
    began = time.perf_counter()
    try:
        params, fit_seconds = dict(config.params), 0.0
        if job.fitted is not None:
            params["fitted"] = job.fitted
        elif job.fit_until is not None:
            params["fitted"], fit_seconds = _fitted_model(config, job.candles, job.fit_until)
        options = dict(params=params, cash=job.cash, commission=job.commission, start=job.start, end=job.end,
                       warmup_bars=job.warmup_bars, record_equity=job.record_equity, name=config.name,
                       objective=job.objective, slippage=job.slippage, fraction=job.fraction)
        try:
            result = run_backtest(config.strategy.cls, job.candles, cerebro=job.cerebro, **options)
        except (EngineUnsupported, StrategyRunError) as unsupported:
            if job.cerebro is bt.Cerebro:
                raise
            # Backtrader's own loop decides: it runs what the faster one refused, and an
            # error it raises too is the strategy's
            result = run_backtest(config.strategy.cls, job.candles, **options)
            result["engine_fallback"] = first_line(unsupported)
        result["params"] = dict(config.params)
        result["fit_seconds"] = fit_seconds
        result["seconds"] = time.perf_counter() - began
        return result
    except Exception as exc:  # every failure becomes a record; the batch goes on
        if isinstance(exc, StrategyRunError):
            message = str(exc)  # already names the configuration
        elif isinstance(exc, DistillbtError):
            message = f"{config.name}: {first_line(exc)}"
        else:
            message = f"{config.name}: {first_line(exc, with_type=True)}"
        return {
            "strategy": config.strategy.name,
            "name": config.name,
            "params": dict(config.params),
            "error": message,
            "error_type": type(exc).__name__,
            "seconds": time.perf_counter() - began,
        }


#: Models fitted in this process, by what shaped the fit: rule variants of one model (a
#: threshold grid) share it, as the fastest exact baseline would. Bounded: a worker keeps few.
_FITTED: dict = {}
_FITTED_KEEP = 8


def _fitted_model(config: Configuration, candles: Candles, until: int):
    """``(model, seconds spent fitting)``; 0 seconds when this process fitted it already."""
    cls = config.strategy.cls
    frame = candles.frame
    key = (config.strategy.module, config.strategy.file, cls.__name__, repr(cls.fit_key(config.params)), int(until),
           len(frame), frame.index[0].value, frame.index[min(until, len(frame) - 1)].value)
    if key in _FITTED:
        return _FITTED[key], 0.0
    began = time.perf_counter()
    model = cls.fit_model(frame, params=config.params, end=int(until))
    if len(_FITTED) >= _FITTED_KEEP:
        _FITTED.pop(next(iter(_FITTED)))
    _FITTED[key] = model
    return model, time.perf_counter() - began
