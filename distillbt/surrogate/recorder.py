"""Run the real, unmodified strategy in Backtrader on episodes and record what it decides.

:class:`PositionRecorder` is a Backtrader analyzer: it reads the broker's position and value at
every bar's close and never touches the strategy. :func:`record_episodes` runs one
configuration on each chosen episode — a short run per episode with the ``warmup`` bars this
configuration needs before it (orders on them dropped, so it starts flat as a full backtest
does) and the conventions of :mod:`distillbt.backtest`: NumpyFeed, ``PercentSizer(95)``,
commission, ``set_checksubmit(False)``, market orders filled at the next open.

The label of bar ``t`` is the sign of the position the strategy *decided* at ``t``'s close:
the position held plus the market orders it has pending (they fill at the next open) — the
target :func:`distillbt.vectorised.simulate` takes. It is the next close's position unless
the broker drops an opening for cash; the strategy then holds nothing, and the state at the
next bar says so: the state at ``t`` is the sign of the position at ``t``'s own close.
Strategies have memory, and that state is what carries it.

Protective orders — a bracket's stop-loss and take-profit sent with a market entry, a stop,
limit or trailing stop sent on the bar the entry fills — are read off the broker's orders
after the run (:mod:`.order_log`): the record's ``protection`` is the rule that prices them
on every trade recorded (:class:`distillbt.protective.Protection`), which the surrogate's walk
fills by Backtrader's rules; a label is never the protective order's doing (the position it
closes is flat at that close, and the strategy decides from there).

Entry orders — a Stop, Limit or StopLimit order (or an OCO pair of them) sent while flat,
which opens the position when the prices reach it — are read the same way (:func:`~.order_log.entry_orders`): the record's
``entry`` is their rule (:class:`distillbt.entry_orders.EntryOrder`: price and bars
worked). The label of the bar that sends one is its side (the walk sends it there); the bars
it works on decide nothing (the strategy waits) and are labelled ``NO_LABEL``; the trade it
opens is entered at its fill price (``entry_fills``). One the broker refuses for cash when
it reaches its price (``Margin``: sized at the sending close, it may cost more than the
cash there) leaves the strategy flat on that bar (``entry_refused``), as a refused market
order does.

A flip from long to short (or back) is sized one of two ways, recorded as ``flips``:
``"units"`` when it keeps the units held (``close()`` then ``sell()`` under ``PercentSizer``,
which sizes an order placed while a position is held by that position's size), ``"value"``
when it takes the sizer's share of equity again (``order_target_percent``).
"""

from __future__ import annotations

import functools
import math
import time

import backtrader as bt
import numpy as np

from ..backtest import SIZER_PERCENTS, StrategyRunError, feed_arrays, run_cerebro
from ..errors import DistillbtError, InputError, first_line
from ..executor import using
from ..protective import feed_prices
from .order_log import entry_orders, identify, identify_entry, protective_trades
from .own_lines import graph_lines
from .replay import NotReplayable, ReadTracingCerebro, pending_market_size

__all__ = ["PositionRecorder", "record_episodes", "record_many", "record_job", "episode_windows", "NO_LABEL",
           "merged_flips", "merged_units", "merged_reads", "rules_of"]

NO_LABEL = -9  # the last fed bar: its decision is never scored (nothing after it shows its effect)
_BOTH_WAYS = "flips sized both ways: some keep the units held, some take the sizer's share of equity"


class PositionRecorder(bt.Analyzer):
    """Position size, decided position (size plus pending market orders) and broker value at
    every bar's close (warm-up included).

    Under :class:`~.replay.ReplayCerebro`, which calls no analyzer's ``next``, the replay's
    own record of the cash and position at every close gives the same (``replay_safe``)."""

    replay_safe = True

    def __init__(self):
        self.positions = []
        self.decided = []
        self.values = []
        self.unmodelled_orders: dict = {}  # order kind -> count
        self.orders: dict = {}  # ref -> the non-market order as last notified (order_log reads them)
        self.entry_shares: list = []  # |position value| / equity at the close of each entry from flat
        self.opened_units: list = []  # |position size| of each position opened (from flat or by a flip)
        self.flips: list = []  # per flip: (kept the units held, new position's share of equity)
        self.resized = 0  # size changes of a position held
        self._orders_seen: set = set()

    def start(self):
        data = self.strategy.datas[0]
        # Bound once: this runs at every bar; the broker updates one Position object in place.
        self._position = self.strategy.broker.getposition(data)
        self._value = self.strategy.broker.getvalue
        self._add_p, self._add_v, self._add_d = self.positions.append, self.values.append, self.decided.append
        self._pending = self.strategy.broker.pending  # BackBroker keeps this deque for the run
        self._close, self._last_size = data.close, 0.0

    def next(self):
        size = self._position.size
        self._add_p(size)
        self._add_v(self._value())
        pending = self._pending
        self._add_d(size + pending_market_size(pending) if pending else size)
        last = self._last_size
        if size != last:
            # The share of equity each new position takes, and changes of size while held:
            # the fast path sizes an entry as the sizer's share of equity, a flip either way.
            if size and last and (size > 0) != (last > 0):
                self.flips.append((abs(size) == abs(last), abs(size) * self._close[0] / self._value()))
                self.opened_units.append(abs(size))
            elif size and not last:
                self.entry_shares.append(abs(size) * self._close[0] / self._value())
                self.opened_units.append(abs(size))
            elif size:
                self.resized += 1
            self._last_size = size

    def notify_order(self, order):
        # The fast path fills market orders at the next open and protective orders by the
        # broker's rules (order_log tells which those are, from the orders kept here).
        if order.ref in self.orders:
            self.orders[order.ref] = order  # the broker notifies a copy at every change of status
        elif order.ref not in self._orders_seen:  # its first notification (Submitted or Accepted)
            self._orders_seen.add(order.ref)
            if order.status == order.Rejected:
                return  # dropped in the warm-up (distillbt.backtest): it never traded
            if order.exectype not in (bt.Order.Market, None):
                self.orders[order.ref] = order
            elif getattr(order, "parent", None) is not None or getattr(order, "oco", None) is not None:
                self.unmodelled_orders["bracket/OCO"] = self.unmodelled_orders.get("bracket/OCO", 0) + 1

    def _own_lines(self) -> dict:
        """The lines the strategy holds as attributes, by their own-line names, and the feed's
        prices (:data:`~distillbt.protective.FEED_PRICES`), as arrays over the run (the walk
        computes those, :attr:`~.own_features.OwnFeatures.line_names`, and reads these)."""
        data = self.strategy.datas[0]
        lines = feed_prices({alias: getattr(data, alias).array for alias in ("open", "high", "low")})
        lines.update((name, line.array) for name, line in graph_lines(self.strategy) if "/" not in name)
        return {name: np.asarray(values, dtype=np.float64) for name, values in lines.items()
                if len(values) >= len(self.positions)}

    def _from_replay(self, replay) -> None:
        """:meth:`next`'s record, from the replay's sizes, decisions and values at every close."""
        size, value = replay["size"], replay["value"]
        close = np.asarray(self.strategy.datas[0].close.array[:len(size)], dtype=np.float64)
        before = np.concatenate(([0.0], size[:-1]))
        changed = size != before
        entered = changed & (size != 0) & (before == 0)
        flipped = changed & (size != 0) & (before != 0) & ((size > 0) != (before > 0))
        self.positions, self.values, self.decided = size.tolist(), value.tolist(), replay["decided"].tolist()
        self.entry_shares = (np.abs(size[entered]) * close[entered] / value[entered]).tolist()
        self.opened_units = np.abs(size[entered | flipped]).tolist()
        self.flips = list(zip((np.abs(size[flipped]) == np.abs(before[flipped])).tolist(),
                              (np.abs(size[flipped]) * close[flipped] / value[flipped]).tolist()))
        self.resized = int(np.sum(changed & (size != 0) & ~entered & ~flipped))

    def get_analysis(self):
        replay = getattr(self.strategy, "distillbt_replay", None)
        if replay is not None and not self.positions:
            self._from_replay(replay)
            record = (replay["size"], replay["decided"], replay["value"])  # the lists' values, as arrays already
        else:
            record = (self.positions, self.decided, self.values)
        held, decided, values = (np.array(x, dtype=np.float64) for x in record)
        positions = np.sign(held)
        change = np.flatnonzero(np.diff(positions) != 0) + 1
        data, n = self.strategy.datas[0], len(held)
        dates, open_, close = (np.asarray(line.array[:n], dtype=np.float64)
                               for line in (data.datetime, data.open, data.close))
        orders = list(self.orders.values())
        lines = functools.cache(self._own_lines)  # read by both, only when there are orders
        entry_orders_, entry_why = entry_orders(orders, held, decided, dates, close, lines=lines)
        trades, why = protective_trades(orders, held, dates, open_, close, lines=lines,
                                        fills={o["fill"]: o["fill_price"] for o in entry_orders_ if o["fill"] >= 0})
        return {
            "positions": held.copy(),
            "decided": decided.copy(),
            "values": values,
            "entries": change[positions[change] != 0],
            "exits": change[positions[change - 1] != 0],
            "unmodelled_orders": dict(self.unmodelled_orders),
            "protective_trades": trades, "protective_unmodelled": why,
            "entry_orders": entry_orders_, "entry_unmodelled": entry_why,
            "entry_shares": np.asarray(self.entry_shares), "opened_units": np.asarray(self.opened_units),
            "resized": self.resized,
            "flips": list(self.flips),
        }


def record_episodes(configuration, episodes, which, *, warmup: int, cash: float = 10_000.0,
                    commission: float = 0.001, timeframe: str | None = None) -> dict:
    """Run ``configuration`` on each episode of ``which`` and return per-episode labels.

    Each episode is one short run with exactly the full backtest's conventions: the
    ``warmup`` bars before it are fed and every order submitted on them is dropped, so the
    strategy is flat with ``cash`` at its first scored bar, as it is at the start of the
    screening period. (Feeding episodes back to back in one run was cheaper by a few
    milliseconds per episode, but the strategy then arrived in each one already in the state
    its warm-up had put it in, and the surrogate never saw what "flat while the averages are
    already crossed" means for an event-driven strategy: it entered at once where the real one
    waits for the next cross.)

    Returns a dict: ``name``, ``episodes`` (the indices, as given), ``state`` and ``target``
    (lists of int8 arrays, one per episode, over its scored bars: the position held at each
    close and the one decided there, module docstring; ``NO_LABEL`` at the last bar, whose
    decision nothing after it shows), ``log_return`` (per episode, over its scored bars:
    for the multi-fidelity baseline), ``bars_fed``, ``seconds``, ``error`` (None),
    ``unmodelled`` (None, or one line naming what the fast path does not model: entry or
    protective orders no rule prices or times, bracket children that expire, resized positions,
    other sizes — the positions are still recorded), ``flips`` (how flips are sized: ``"units"``,
    ``"value"``, None without flips), ``protection`` and ``entry`` (the protective and entry
    orders' rules, None without them: module docstring), ``protective_trades`` and
    ``entry_orders`` (what they were read from), ``entry_fills`` (per episode, over its
    scored bars: the price an entry order filled at, NaN elsewhere) and ``entry_refused``
    (per episode, the scored bars where the broker refused one for cash), ``reads`` (the lines
    the strategy's own code read and how many bars back, ``{line: agos}``:
    :class:`~.replay.ReadTracingCerebro`; None when a run was not replayed).
    Raises :class:`StrategyRunError` naming the configuration when the strategy raises.
    """
    return _record_windows(configuration, [int(i) for i in which], episode_windows(episodes, which, warmup), cash=cash,
                           commission=commission, timeframe=timeframe)


def episode_windows(episodes, which, warmup) -> list[tuple]:
    """``(time_ns, ohlcv, warm-up bars, scored bars)`` of each episode in ``which``, with at
    most ``warmup`` of its stored warm-up bars: plain arrays, so a worker process recording
    them need not import the episode module (and scipy behind it)."""
    out = []
    for i in which:
        r = episodes.rows(int(i))
        stored_warm, length = int(episodes.warmup[i]), int(episodes.length[i])
        w = min(int(warmup), stored_warm)
        rows = slice(r.start + stored_warm - w, r.stop)
        out.append((episodes.time_ns[rows], episodes.ohlcv[rows], w, length))
    return out


def _record_windows(configuration, which, windows, *, cash, commission, timeframe, slippage=0.0,
                    fraction=None, units=None) -> dict:
    if not windows:
        raise InputError("no episodes to record")
    began = time.perf_counter()
    strategy_cls = configuration.strategy.cls
    states, targets, rets, fed, own, unmodelled, flips, protected = [], [], [], 0, None, None, None, []
    held_units, shares, size_why = [], [], None  # units of each position opened, entries' shares of equity, why not modelled
    entries, entry_fills, entry_refused, entry_lags = [], [], [], []
    reads: dict | None = {}
    engine = ReadTracingCerebro  # bt.Cerebro from the first window the replay refuses on
    for time_ns, ohlcv, w, length in windows:
        arrays = feed_arrays(time_ns, *ohlcv.T)
        trade_from = arrays["datetime"][w] if w else -math.inf
        pos, decided, values, own, why, sized, trades, sent, engine, read, sizes = _run(
            strategy_cls, configuration, arrays, trade_from, cash, commission, timeframe, slippage, fraction,
            engine=engine)
        reads = merged_reads(reads, read)
        protected += trades
        entries += sent
        held_units += sizes["units"]
        shares += sizes["shares"]
        size_why = size_why or sizes["why"]
        flips, clash = merged_flips(flips, sized)
        unmodelled = unmodelled or why or (clash and f"{configuration.name}: {clash}")
        fed += len(time_ns)
        at = w + np.arange(length)
        states.append(pos[at].astype(np.int8))
        decided, fills, refused, lags = _entry_labels(decided, sent)
        target = decided[at].astype(np.int8)
        target[-1] = NO_LABEL
        targets.append(target)
        entry_fills.append(fills[at])
        entry_refused.append(np.flatnonzero(refused[at]))
        entry_lags.append(lags[at])
        v_end = values[at[-1]]
        rets.append(math.log(v_end / cash) if v_end > 0 else -math.inf)
    rules = rules_of(configuration.name, protected, entries, slippage)
    why = rules.pop("unmodelled")
    if units is None:
        units = fixed_units(held_units, flips, own)
        size_why = size_why if units is None else None
    elif any(abs(u - units) > 1e-9 * units for u in held_units):  # sized as the caller's surrogate is?
        size_why = f"{configuration.name}: positions of other sizes than {units:g} units"
    else:
        size_why = None
    return {"name": configuration.name, "episodes": list(which), "state": states, "target": targets,
            "log_return": np.asarray(rets), "bars_fed": int(fed),
            "seconds": time.perf_counter() - began, "error": None, "own_sizer": own,
            "unmodelled": unmodelled or why or size_why, **rules,
            "flips": flips, "units": units, "entry_share": float(np.median(shares)) if shares else None,
            "protective_trades": protected, "entry_orders": entries, "entry_fills": entry_fills,
            "entry_refused": entry_refused, "entry_lags": entry_lags, "reads": reads}


def merged_reads(a: dict | None, b: dict | None) -> dict | None:
    """The lines two recorded runs' strategy code read (``{line: agos}``,
    :class:`~.replay.ReadTracingCerebro`), or None when either run was not traced (Backtrader's
    own loop: what it read is unknown)."""
    if a is None or b is None:
        return None
    out = {name: set(agos) for name, agos in a.items()}
    for name, agos in b.items():
        out.setdefault(name, set()).update(agos)
    return {name: sorted(agos) for name, agos in out.items()}


def rules_of(name, protected, entries, slippage=0.0) -> dict:
    """``protection`` and ``entry`` — the rules of a configuration's protective and entry
    orders, from all its recorded runs — and ``unmodelled``, why the fast path does not
    fill them (None)."""
    protection, why = identify(protected)
    entry, entry_why = identify_entry(entries)
    why = why or entry_why
    if why:
        why = f"{name}: orders the fast path does not model: {why}"
    elif (protection is not None or entry is not None) and slippage:
        why = f"{name}: stop or limit orders with slippage (filled without it here)"
    return {"protection": protection, "entry": entry, "unmodelled": why}


def _entry_labels(decided, sent) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(decided, fills, refused, lags)``: the positions decided at each close of a run with
    entry orders ``sent`` (:func:`~.order_log.entry_orders`) — the order's side at the close
    that sends it, ``NO_LABEL`` while it works (the strategy waits: nothing is decided) — the
    price each entry order filled at, on its bar (NaN elsewhere: market fills), the bars
    where the broker refused one for cash (the strategy decides from flat there) and, on
    each fill's bar, the bars since the close that sent it (0 elsewhere)."""
    fills = np.full(len(decided), np.nan)
    refused = np.zeros(len(decided), dtype=bool)
    lags = np.zeros(len(decided), dtype=np.int64)
    if not sent:
        return decided, fills, refused, lags
    decided = decided.copy()
    for o in sent:
        decided[o["sent"]] = o["side"]
        # the bar it filled or was refused on decides; a withdrawn one's the bar after
        stop = o["sent"] + o["tried"] + (o["end"] in ("cancelled", "expired", "working"))
        decided[o["sent"] + 1:stop] = NO_LABEL
        if o["fill"] >= 0:
            fills[o["fill"]] = o["fill_price"]
            lags[o["fill"]] = o["fill"] - o["sent"]
        if o["end"] == "refused":
            refused[stop] = True
    return decided, fills, refused, lags


def merged_flips(a: str | None, b: str | None) -> tuple[str | None, str | None]:
    """How the flips of two recordings are sized (``"units"``, ``"value"`` or None when
    neither flips), and a reason when they are sized both ways (the fast path sizes every
    flip of a configuration one way)."""
    if a is None or b is None or a == b:
        return a or b, None
    return a, _BOTH_WAYS


def merged_units(a: float | None, b: float | None) -> tuple[float | None, str | None]:
    """The fixed units the positions of two recordings hold (None: sized as the sizer's share
    of equity, or no entry), and a reason when they hold different numbers."""
    if a is None or b is None or abs(a - b) <= 1e-9 * max(abs(a), abs(b)):
        return a if a is not None else b, None
    return a, f"positions of {a:g} units in some runs and {b:g} in others"


def _run(strategy_cls, configuration, arrays, trade_from, cash, commission, timeframe, slippage=0.0, fraction=None,
         engine=ReadTracingCerebro):
    """One recorded run under ``engine``: the replay (the strategy's own ``next()`` over its
    precomputed lines, the same decisions at less cost, and the lines that code reads), else
    ``bt.Cerebro``, also when the replay refuses the strategy; returns the engine the next
    window should use, what the strategy read (None under ``bt.Cerebro``) and its entries'
    ``sizes``: their ``units`` and ``shares`` of equity and ``why`` the fast path does not
    size them as the sizer's share (:func:`_unmodelled`)."""
    setup = dict(arrays=arrays, strategy_cls=strategy_cls, params=configuration.params, cash=cash,
                 commission=commission, timeframe=timeframe, symbol=None, trade_from=trade_from,
                 slippage=slippage, fraction=fraction, analyzers={"distillbt_positions": (PositionRecorder, {})})
    try:
        try:
            strat = run_cerebro(cerebro_cls=engine, **setup)
        except NotReplayable:
            engine = bt.Cerebro
            strat = run_cerebro(cerebro_cls=engine, **setup)
    except Exception as exc:
        raise StrategyRunError(
            f"{configuration.name}: {first_line(exc, with_type=True)}".rstrip(": ")) from exc
    rec = strat.analyzers.distillbt_positions.get_analysis()
    if len(rec["positions"]) != len(arrays["datetime"]):
        raise DistillbtError(f"{configuration.name}: recorded {len(rec['positions'])} bars of "
                             f"{len(arrays['datetime'])} fed")
    own = strat.analyzers.distillbt_sizer.own
    why, flips, size_why = _unmodelled(configuration.name, rec, own, fraction)
    return (np.sign(rec["positions"]), np.sign(rec["decided"]), rec["values"], own, why, flips,
            rec["protective_trades"], rec["entry_orders"], engine, getattr(strat, "distillbt_reads", None),
            {"units": rec["opened_units"].tolist(), "shares": rec["entry_shares"].tolist(), "why": size_why})


#: An entry's share of equity may differ from the sizer's by the bar's move between the close
#: it was sized at and the close after its fill; beyond this factor it was sized otherwise.
SIZE_TOLERANCE = 1.25


def _unmodelled(name, rec, own, fraction) -> tuple[str | None, str | None, str | None]:
    """What in one recorded run the fast path does not model, in one line, or None: orders
    other than market and protective ones (:mod:`.order_log`), positions that change size while
    held (scaling in or out), flips sized both ways; how its flips are sized (``"units"``,
    ``"value"``, None without flips: module docstring); and, apart, entries that do not take
    the sizer's share of equity (None when they do) — which the fast path still models when
    every entry of the configuration holds one number of units (:func:`fixed_units`)."""
    kept = [k for k, _ in rec["flips"]]
    flips = None if not kept else "units" if all(kept) else "value" if not any(kept) else "both"
    if rec["unmodelled_orders"]:
        kinds = ", ".join(f"{k} ({n})" for k, n in sorted(rec["unmodelled_orders"].items()))
        return f"{name}: orders the fast path does not model: {kinds}", flips, None
    if rec["entry_unmodelled"]:
        return f"{name}: orders the fast path does not model: {rec['entry_unmodelled']}", flips, None
    if rec["protective_unmodelled"]:
        return f"{name}: orders the fast path does not model: {rec['protective_unmodelled']}", flips, None
    if rec["resized"]:
        return (f"{name}: positions change size while held ({rec['resized']} times): "
                "the fast path does not model scaling in or out"), flips, None
    if flips == "both":
        return f"{name}: {_BOTH_WAYS}", flips, None
    if own is None:
        expected = SIZER_PERCENTS / 100.0 if fraction is None else float(fraction)
    elif own["class"] in ("PercentSizer", "AllInSizer"):
        expected = float(own["params"].get("percents", 100)) / 100.0
    else:  # another sizer of its own: mirrored when its positions hold fixed units, else backtested in full
        return None, flips, None
    # a flip that keeps its units holds whatever share the price moves gave them
    shares = np.concatenate((rec["entry_shares"], [] if flips == "units" else [s for _, s in rec["flips"]]))
    off = shares[(shares > expected * SIZE_TOLERANCE) | (shares < expected / SIZE_TOLERANCE)]
    if len(off):
        return None, flips, (f"{name}: {len(off)} of {len(shares)} positions hold {np.median(off):.0%} of equity "
                             f"where the sizer gives {expected:.0%}: sizes the fast path does not model")
    return None, flips, None


def fixed_units(held, flips: str | None, own_sizer: dict | None = None) -> float | None:
    """The units every position of a configuration holds when they are fixed — ``held``, the
    units of each position opened (from flat or by a flip) over all its recorded runs, two or
    more and all the same: ``buy(size=…)``, ``order_target_size``, a ``FixedSize`` sizer —,
    else None. (A sizer's share of equity gives other units at every other price.) Never for
    a sizer of the strategy's own that rounds to whole units (``retint``: ``PercentSizerInt``,
    ``AllInSizerInt``): its positions may all hold the same units by chance of the prices
    recorded, and others where the value differs."""
    held = np.asarray(held, dtype=np.float64)
    if len(held) < 2 or flips == "value" or np.ptp(held) > 1e-9 * held[0]:
        return None
    if own_sizer is not None and own_sizer["params"].get("retint"):
        return None
    return float(held[0])


def record_job(configuration, which, windows, cash, commission, timeframe, slippage=0.0, fraction=None,
               units=None) -> dict:
    """One configuration's recording of ``windows`` (:func:`episode_windows`), as
    :func:`record_episodes`'s; a failure is its ``{"name", "error", "error_type"}`` record.
    ``units``: the fixed units its positions are known to hold (a spot check of a surrogate
    sized so): every entry must hold them, one entry or none is enough."""
    try:
        return _record_windows(configuration, which, windows, cash=cash, commission=commission,
                               timeframe=timeframe, slippage=slippage, fraction=fraction, units=units)
    except Exception as exc:  # noqa: BLE001 - one failing configuration must not stop the batch
        message = first_line(exc)
        if not message.startswith(configuration.name):
            message = f"{configuration.name}: {type(exc).__name__}: {message}"
        return {"name": configuration.name, "error": message, "error_type": type(exc).__name__}


def record_many(jobs, episodes, *, cash=10_000.0, commission=0.001, timeframe=None, n_jobs=1,
                backend="loky", progress=True, desc="episodes", scheduler=None, executor=None,
                slippage=0.0, fraction=None) -> list[dict]:
    """Record many ``(configuration, which, warmup)`` jobs (same order); failures become
    ``{"name", "error"}`` records and the batch goes on. They run on ``executor``, else the
    active one, else one made from ``n_jobs``, ``backend`` and ``scheduler``
    (:func:`distillbt.executor.using`); a single job runs in this process."""
    # The episodes travel as plain arrays (see episode_windows).
    arguments = [(c, [int(i) for i in w], episode_windows(episodes, w, wu), cash, commission, timeframe, slippage,
                  fraction) for c, w, wu in jobs]
    with using(executor, n_jobs=n_jobs, backend=backend, scheduler=scheduler) as ex:
        ex.require_strategy_files(c for c, _, _ in jobs)
        return ex.map(record_job, arguments, desc=desc, unit="config", progress=progress, leave=False)
