"""A plain strategy's own ``next()`` replayed over lines computed in advance: Backtrader's
result without Backtrader's bar loop.

A full Backtrader run spends most of each bar on bookkeeping, not on the strategy: every
line of every indicator is advanced one by one (``LineBuffer.advance``), the broker walks its
empty queues and re-values the account, analyzers and notifications run. :class:`ReplayCerebro`
is a ``bt.Cerebro`` whose bar loop keeps only what a strategy can observe:

- every line of the strategy's graph is computed before the loop, in numpy
  (:class:`~.own_lines.GraphEvaluator`, Backtrader's definitions; Backtrader's own ``once()``
  when a node has no numpy definition), and all of them — the feed's, the indicators', the
  strategy's — read one shared clock: ``line[0]`` at bar ``i`` is ``array[i]``, ``len(line)``
  is ``i + 1``, as after ``i + 1`` advances, with no per-line work;
- the broker is Backtrader's own (fills, commission, Stop/Limit/StopLimit/StopTrail, brackets,
  OCO, sizers: its code, untouched); its per-bar pass runs on every bar it has something to
  do (a market or trailing order, a Stop, Limit or StopLimit that triggers or expires on the
  bar's prices, orders to activate, cash to add) and is skipped on the others, where it
  would only re-value the account — the value is computed when someone asks for it;
- orders are made and copied for notifications as Backtrader makes and copies them, with
  the same state, without its generic machinery (``MetaParams`` construction, ``copy.copy``,
  parameters read through ``Order.__getattr__``), which costs more than the strategy itself
  for a strategy that places an order every bar;
- a line read by name (``self.data.close``, ``self.bands.top``) is found once, not through
  ``LineSeries.__getattr__`` at every read, and the feed's ``datetime.datetime(ago)`` is
  converted once per bar, its ``date2num`` once per value (:func:`_pin_line_names`,
  :func:`_remember_datetimes`, :func:`_remember_date_numbers`);
- ``line[ago]``, ``indicator[ago]``, ``len(self)``, ``self.position`` and
  ``self.getposition()`` are answered from the clock and the broker's position object in one
  step, not through Backtrader's chain of calls (:func:`_serve_from_clock`; the strategy has
  its own class again once the loop ends);
- the strategy's ``notify_order``/``notify_trade``, ``prenext``/``nextstart``/``next`` are
  called exactly as Backtrader calls them, ``notify_cashvalue``/``notify_fund`` (and the
  value they carry) only when the strategy or an analyzer listens to them;
- the equity curve is the account's cash plus the position at each close (stock-like
  commission, no leverage), recorded from the two numbers at each bar, with the position
  decided there (the size plus the market orders pending).

What the loop does not reproduce is refused before the first bar with
:class:`NotReplayable` (the caller runs the full backtest): more than one data feed,
observers, timers, cheat-on-open, a futures-like or levered commission, interest, a fund
mode. Exactness is tested configuration by configuration against full backtests.
"""

from __future__ import annotations

import functools
import math

import backtrader as bt
import numpy as np
from backtrader import linebuffer as btlb
from backtrader import metabase as btmb

from ..errors import EngineUnsupported
from .own_lines import GraphEvaluator, NotVectorised, backtrader_pass, graph_nodes, node_lines, top_level_lines

__all__ = ["ReplayCerebro", "ReadTracingCerebro", "NotReplayable", "pending_market_size"]


class NotReplayable(EngineUnsupported):
    """The strategy uses something the replay's bar loop does not reproduce (named)."""


class _Clock:
    __slots__ = ("i", "tracing", "reads")

    def __init__(self):
        self.i = -1
        self.tracing = False  # True while the strategy's own code runs (a traced replay)
        self.reads: set = set()  # (id of a line buffer, ago) read while tracing


#: Per (class, traced): the subclass whose index and length are read from the replay's clock.
_CLOCKED_CLASSES: dict = {}


def _clocked_class(cls, traced: bool = False):
    """``cls`` with its index and length read from its ``_replay_clock`` (setters ignored);
    ``traced``: its ``line[ago]`` also notes ``(line, ago)`` in ``clock.reads`` while
    ``clock.tracing``. Made once per class: a run sets each line's clock (a class per run
    cost more to make than its lines' reads of the clock save)."""
    out = _CLOCKED_CLASSES.get((cls, traced))
    if out is None:
        namespace = {"idx": _CLOCK_INDEX, "lencount": _CLOCK_LENGTH,
                     "advance": _no_move, "forward": _no_move, "rewind": _no_move, "backwards": _no_move,
                     "home": _no_move, "__module__": __name__}
        # line[0] and len(line), a few reads a bar each: straight from the clock
        if cls.__getitem__ is btlb.LineBuffer.__getitem__:
            namespace["__getitem__"] = _traced_item if traced else _clocked_item
        if cls.__len__ is btlb.LineBuffer.__len__:
            namespace["__len__"] = _bars_so_far
        if not any("array" in vars(k) for k in cls.__mro__):
            namespace["array"] = _LIST_ON_READ
        # made without Backtrader's metaclass: its work (lines, params) is done for ``cls``
        # and the instances swapped to this class are built already
        out = _CLOCKED_CLASSES[(cls, traced)] = type.__new__(type(cls), f"Clocked{cls.__name__}", (cls,), namespace)
    return out


def _clocked_item(self, ago):
    return self.array[self._replay_clock.i + ago]


def _traced_item(self, ago):
    clock = self._replay_clock
    if clock.tracing:
        clock.reads.add((id(self), ago))
    return self.array[clock.i + ago]


def _ignore(self, value):
    pass


_CLOCK_INDEX = property(lambda self: self._replay_clock.i, _ignore)
_CLOCK_LENGTH = property(lambda self: self._replay_clock.i + 1, _ignore)


def _no_move(self, *args, **kwargs):
    pass


class _ListOnRead:
    """``line.array`` of a line :func:`_fill_lines` computed: its values as a list, made at the
    first read (the line's own attribute from then on, which hides this). A run reads few of
    its graph's lines; converting each costs ~10 µs on 600 bars."""

    __slots__ = ()

    def __get__(self, line, cls=None):
        if line is None:
            return self
        line.array = values = vars(line).pop("_replay_values").tolist()
        return values


_LIST_ON_READ = _ListOnRead()


class ReplayCerebro(bt.Cerebro):
    """``bt.Cerebro`` whose vectorised run replays the strategy's ``next()`` over lines
    computed in advance (module docstring). Use it exactly as ``bt.Cerebro`` with
    ``runonce=True, preload=True`` and one data feed."""

    engine = "replay"
    #: Whether the replay notes the lines the strategy's own code reads (:class:`ReadTracingCerebro`).
    traces_reads = False

    def stop_writers(self, runstrats):
        # Backtrader gathers every strategy's and analyzer's writer info at the end of a run
        # even with no writer to hand it to (~0.6 ms a run: a recording makes one per episode)
        if self.runwriters:
            super().stop_writers(runstrats)

    def _runonce(self, runstrats):
        if len(runstrats) != 1 or len(self.datas) != 1:
            raise NotReplayable("more than one strategy or data feed")
        strat = runstrats[0]
        _check_replayable(self, strat)
        data = self.datas[0]
        n = data.buflen()  # preloaded: every bar
        clock = _Clock()
        nodes = graph_nodes(strat)
        filled = _fill_lines(strat, nodes)
        clocked = set()
        for buf in _all_buffers(strat, nodes):
            buf.__class__ = kind = _clocked_class(type(buf), traced=self.traces_reads)
            vars(buf)["_replay_clock"] = clock
            clocked.add(kind)
        for line, values in filled:
            if getattr(type(line), "array", None) is _LIST_ON_READ:
                vars(line).pop("array", None)
                vars(line)["_replay_values"] = values
            else:
                line.array = values.tolist()  # a list: indexing gives floats without boxing each time
        # what the strategy's code reads (``self.sma[0]``, ``self.bands.top``): the feed, the
        # strategy, the indicators its __init__ made; one nested in those is read rarely, and
        # gives the same through Backtrader's own lookups (a deep graph has dozens)
        owners = [*strat.datas, strat, *(node for name, node in nodes if "/" not in name[1:])]
        for owner in owners:
            _pin_line_names(owner)
        _remember_datetimes(data.lines.datetime, clock)
        _remember_date_numbers(data)
        dt_line = strat.lines.datetime
        dt_line.array = list(data.lines.datetime.array)  # the strategy's clock is the feed's
        for line in strat.lines:
            if line is not dt_line and len(line.array) < n:
                line.array = [math.nan] * n
        served = [(owner, _serve_from_clock(owner, clock, clocked, strat.broker.getposition(data), data))
                  for owner in dict.fromkeys(owners)]
        try:
            _replay(self, strat, data, clock, n, traced=self.traces_reads)
            if self.traces_reads:
                strat.distillbt_reads = _named_reads(strat, clock.reads)
        finally:
            for owner, cls in served:
                if cls is not None:
                    owner.__class__ = cls
                    for name in _SERVED_ATTRIBUTES:
                        vars(owner).pop(name, None)



class ReadTracingCerebro(ReplayCerebro):
    """:class:`ReplayCerebro` that also notes which lines the strategy's own code reads, and
    how many bars back: every ``line[ago]`` (and ``indicator[ago]``) made while its ``next``
    (``prenext``, ``nextstart``) or its notifications run — the broker's own reads between
    them are not the strategy's. After the run, ``strategy.distillbt_reads`` maps each line
    read, named as :func:`~.own_lines.graph_lines` names it (the feed's by its alias:
    ``close``), to the sorted ``ago`` values read (0: the bar's value, -1: the bar before).
    A read made inside an order the strategy places (the sizer's and the order's ``close[0]``)
    counts as the strategy's: it happens in its ``next``."""

    traces_reads = True


def _named_reads(strat, reads) -> dict:
    """``{line name: sorted agos}`` of the traced ``(id(line), ago)`` reads."""
    names = {id(line): name for name, line in top_level_lines(strat).items()}
    data = strat.datas[0]
    for alias in data.lines.getlinealiases():
        names.setdefault(id(getattr(data.lines, alias)), alias)
    out: dict = {}
    for key, ago in reads:
        name = names.get(key)
        if name is not None and isinstance(ago, int):
            out.setdefault(name, set()).add(ago)
    return {name: sorted(agos) for name, agos in out.items()}


def _pin_line_names(owner) -> None:
    """``owner.close``, ``indicator.top``…: the line each name resolves to, kept in the
    object's own attributes. Backtrader finds a line by name through ``LineSeries.__getattr__``
    at every read (``self.data.close[0]`` a few times per bar, in the strategy and the broker);
    the same line object is found first here. Names the class or the object already answer
    are left alone (``__getattr__`` never sees them)."""
    if not isinstance(owner, bt.LineSeries):
        return
    for name in owner.lines.getlinealiases():
        if name and name not in vars(owner) and not hasattr(type(owner), name):
            vars(owner)[name] = getattr(owner.lines, name)


#: Per class: the subclass whose first line and length are read from the replay's clock.
_SERVED_CLASSES: dict = {}


def _serve_from_clock(owner, clock: _Clock, clocked: set, position, data):
    """``owner[0]``, ``len(owner)`` (and for the strategy ``self.position``,
    ``self.getposition()``) answered from the clock and the broker's position object, the
    values Backtrader's chain of calls (``LineSeries`` → ``Lines`` → ``LineBuffer``;
    ``Strategy.getposition`` → ``BackBroker.getposition``) returns, in one step: a strategy
    reads them a few times a bar. ``owner``'s class becomes a subclass that changes only those
    (made without Backtrader's metaclass, whose work its class has done already) when its
    class keeps Backtrader's own; returns the class to restore after the run, or None."""
    cls = type(owner)
    if not isinstance(owner, bt.LineSeries) or not owner.lines.fullsize() or type(owner.lines[0]) not in clocked:
        return None  # no line of its own, or one the clock does not serve
    served = _SERVED_CLASSES.get(cls)
    if served is None:
        namespace = {"__module__": cls.__module__}
        if cls.__getitem__ is bt.LineSeries.__getitem__:
            namespace["__getitem__"] = _first_line_now
        if cls.__len__ is bt.LineSeries.__len__:
            namespace["__len__"] = _bars_so_far
        if isinstance(owner, bt.Strategy) and cls.getposition is bt.Strategy.getposition \
                and cls.position is bt.Strategy.position:
            namespace["getposition"] = _main_position
            namespace["position"] = property(_main_position)
        served = _SERVED_CLASSES[cls] = type.__new__(type(cls), cls.__name__, (cls,), namespace)
    vars(owner).update(zip(_SERVED_ATTRIBUTES, (owner.lines[0], clock, data, position)))
    owner.__class__ = served
    return cls


_SERVED_ATTRIBUTES = ("_replay_line0", "_replay_clock", "_replay_data", "_replay_position")


def _first_line_now(self, ago):
    clock = self._replay_clock
    if clock.tracing:
        clock.reads.add((id(self._replay_line0), ago))
    return self._replay_line0.array[clock.i + ago]


def _bars_so_far(self):
    return self._replay_clock.i + 1


def _main_position(self, data=None, broker=None):
    if (data is None or data is self._replay_data) and (broker is None or broker is self.broker):
        return self._replay_position
    return bt.Strategy.getposition(self, data, broker)


def _remember_date_numbers(data) -> None:
    """``data.date2num(dt)`` converted once per ``dt``: every order made asks for the number of
    its session's end, the same for every bar of a day."""
    data.date2num = functools.cache(data.date2num)


def _remember_datetimes(line, clock: _Clock) -> None:
    """The feed's ``datetime.datetime(ago)`` converted once per bar and arguments (the same
    immutable ``datetime``): Backtrader converts the bar's day number at every call, and each
    order made asks for it (its end of session), as do strategies that read the bar's time."""
    convert = line.datetime
    found: dict = {}

    def datetime(ago=0, tz=None, naive=True):
        try:
            key = (clock.i + ago, tz, naive)
            value = found.get(key)
        except TypeError:  # an unhashable time zone: converted each time, as Backtrader does
            return convert(ago, tz, naive)
        if value is None:
            value = found[key] = convert(ago, tz, naive)
        return value

    line.datetime = datetime


def _fill_lines(strat, nodes) -> list:
    """Every line of the graph ``nodes`` at every bar: numpy when each node has a definition
    (returned, ``[(line, values)]``, for the caller to set), else Backtrader's own vectorised
    pass (in the lines already; returns ``[]``)."""
    data = strat.datas[0]
    # copies, not views of the feed's buffers: a line may keep its values until it is read
    # (_ListOnRead), and a view would keep the feed's array from being resized
    arrays = {alias: np.array(getattr(data.lines, alias).array, dtype=np.float64)
              for alias in data.lines.getlinealiases()}
    evaluator = GraphEvaluator(strat, arrays, nodes)
    try:
        filled = [(line, evaluator.line(line)) for _, node in nodes for _, line in node_lines(node)]
    except NotVectorised:
        backtrader_pass(strat)
        return []
    return filled


def _check_replayable(cerebro, strat) -> None:
    if cerebro.p.cheat_on_open or cerebro.p.quicknotify:
        raise NotReplayable("cheat-on-open or quicknotify")
    if cerebro._timers or cerebro._timerscheat:
        raise NotReplayable("timers")
    if strat.observers or cerebro.writers:
        raise NotReplayable("observers or writers")
    # the loop calls no analyzer's next: only those that say they need none (a run's own
    # recorder, whose curve the replay records itself)
    needing = [type(a).__name__ for a in strat.analyzers if not getattr(a, "replay_safe", False)]
    if needing:
        raise NotReplayable(f"analyzers {', '.join(needing)}")
    broker = strat.broker
    if not isinstance(broker, bt.brokers.BackBroker) or broker.p.fundmode or broker._fundhist or broker.p.checksubmit:
        raise NotReplayable("a broker other than BackBroker without checks and fund mode")
    for info in [broker.comminfo[None], *broker.comminfo.values()]:
        if not info._stocklike or info.p.leverage != 1 or info.p.mult != 1 or info.p.interest:
            raise NotReplayable("a futures-like, levered or interest-charging commission")


def _all_buffers(strat, nodes) -> list:
    seen, out = set(), []

    def add(buf):
        if isinstance(buf, btlb.LineBuffer) and id(buf) not in seen:
            seen.add(id(buf))
            out.append(buf)

    for data in strat.datas:
        for line in data.lines:
            add(line)
    for line in strat.lines:
        add(line)
    for _, node in nodes:
        for _, line in node_lines(node):
            add(line)
    return out


def _replay(cerebro, strat, data, clock: _Clock, n: int, traced: bool = False) -> None:
    """The bar loop (``Cerebro._runonce`` + ``Strategy._oncepost`` without the per-line work);
    ``traced``: ``clock.tracing`` is set while the strategy's own code runs."""
    broker = strat.broker
    broker_next = broker.next
    stale = [True]
    bar = (data.lines.open.array, data.lines.high.array, data.lines.low.array, data.lines.datetime.array)

    # A broker whose pass or fills are its own decides for itself at every bar with orders.
    broker_class = type(broker)
    skip_waiting = all(getattr(broker_class, m) is getattr(bt.BackBroker, m) for m in _PASS_METHODS)

    # The broker hands each notification a copy of the order (its state at that moment):
    # Backtrader's own Order.clone, through copy.copy, costs ~20 µs; this is the same copy.
    quick_notify = broker_class.notify is bt.BackBroker.notify
    if quick_notify:
        broker.notify = functools.partial(_notify_snapshot, broker.notifs)
    quick_orders = _QUICK_ORDERS and broker_class.buy is bt.BackBroker.buy and broker_class.sell is bt.BackBroker.sell
    if quick_orders:
        broker.buy = functools.partial(_place, broker, bt.BuyOrder)
        broker.sell = functools.partial(_place, broker, bt.SellOrder)

    own_get_value = broker.get_value

    def get_value(datas=None, mkt=False, lever=False):
        if datas is None and stale[0]:
            broker._get_value()
            stale[0] = False
        return own_get_value(datas, mkt, lever)

    broker.get_value = broker.getvalue = get_value
    cls = type(strat)
    analyzers = [*strat.analyzers, *strat._slave_analyzers]
    wants_cash = (_overrides(cls, "notify_cashvalue") or _overrides(cls, "notify_fund")
                  or any(_wants_cash(a) for a in analyzers))
    # Strategy._notify also tells everyone the cash and value each time: when nobody listens,
    # only the orders and trades are notified (the value is computed when someone asks for it)
    notify = (strat._notify if wants_cash or _overrides(cls, "_notify")
              else functools.partial(_notify_orders_and_trades, strat, analyzers))
    position = broker.getposition(data)
    notifications = broker.notifs
    cash_at, size_at, decided_at = [0.0] * n, [0.0] * n, [0.0] * n
    # BackBroker keeps these queues for the run (made in its start)
    pending, to_activate, cash_additions, history = (broker.pending, broker._toactivate, broker._cash_addition,
                                                     broker._userhist)
    status = 1
    for i in range(n):
        clock.i = i
        # the broker's pass, on the bars it has something to do
        if to_activate or cash_additions or history or (
                pending and not (skip_waiting and _waiting(pending, data, bar, i))):
            broker_next()
            stale[0] = False
        else:
            stale[0] = True
        while notifications:
            order = notifications.popleft()
            (order.owner or strat)._addnotification(order, quicknotify=False)
        clock.tracing = traced
        if strat._orderspending or strat._tradespending or wants_cash:
            notify()
        if status >= 0:
            status = strat._getminperstatus()
        if status < 0:
            strat.next()
        elif status == 0:
            strat.nextstart()
        else:
            strat.prenext()
        clock.tracing = False
        if strat._orderspending or strat._tradespending:
            strat.clear()
        cash_at[i] = broker.cash
        size_at[i] = size = position.size
        # the position decided at this close: market orders pending fill at the next open
        decided_at[i] = size + pending_market_size(pending) if pending else size
        if cerebro._event_stop:
            n = i + 1
            break
    broker.get_value = broker.getvalue = own_get_value
    if quick_notify:
        del broker.notify  # the class's own again
    if quick_orders:
        del broker.buy, broker.sell
    close = np.asarray(data.lines.close.array[:n], dtype=np.float64)
    strat.distillbt_replay = {"cash": np.asarray(cash_at[:n]), "size": np.asarray(size_at[:n]),
                              "value": np.asarray(cash_at[:n]) + np.asarray(size_at[:n]) * close,
                              "decided": np.asarray(decided_at[:n])}


def pending_market_size(pending) -> float:
    """The signed size of the market orders in the broker's ``pending`` queue: they fill at the
    next open, so the position decided at a close is the size held plus this."""
    return sum(o.size for o in pending if o.exectype == _MARKET)


def _waiting(pending, data, bar, i) -> bool:
    """Whether Backtrader's broker pass at bar ``i`` would leave every order in ``pending``
    as it is, so it can be skipped: each is a Stop, Limit or StopLimit (or a bracket child not
    active yet) that neither expires nor triggers on this bar's prices — the comparisons of
    ``BackBroker.next`` and ``_try_exec_stop/_limit/_stoplimit``, which change nothing on
    such an order. Market, Close and trailing orders act at every bar: never skipped."""
    opens, highs, lows, times = bar
    popen = data.tick_open
    popen = opens[i] if popen is None else popen
    phigh = data.tick_high
    phigh = highs[i] if phigh is None else phigh
    plow = data.tick_low
    plow = lows[i] if plow is None else plow
    now = times[i]
    for order in pending:
        valid = order.valid
        if valid and now > valid:
            return False  # expires
        if not order._active:
            continue  # Backtrader re-queues it untouched
        kind = order.exectype
        if kind == _STOP or (kind == _STOP_LIMIT and not order.triggered):
            trigger = order.created.price
            hit = (popen >= trigger or phigh >= trigger) if order.ordtype == _BUY else \
                (popen <= trigger or plow <= trigger)
        elif kind == _LIMIT or kind == _STOP_LIMIT:
            limit = order.created.price if kind == _LIMIT else order.created.pricelimit
            hit = (limit >= popen or limit >= plow) if order.ordtype == _BUY else \
                (limit <= popen or limit <= phigh)
        else:
            return False
        if hit:
            return False
    return True


_BUY = bt.Order.Buy
#: BackBroker's per-bar pass and the fills whose comparisons :func:`_waiting` repeats.
_PASS_METHODS = ("next", "_try_exec", "_try_exec_stop", "_try_exec_limit", "_try_exec_stoplimit")
_STOP, _LIMIT, _STOP_LIMIT, _MARKET = bt.Order.Stop, bt.Order.Limit, bt.Order.StopLimit, bt.Order.Market


def _notify_snapshot(notifications, order) -> None:
    """``BackBroker.notify``: the order as it is now, as ``Order.clone`` copies it (the
    execution data marked and copied, the rest shallow), without ``copy.copy``'s generic
    reduction."""
    executed = order.executed
    executed.markpending()
    executed_now = object.__new__(type(executed))
    executed_now.__dict__.update(executed.__dict__)
    now = object.__new__(type(order))
    now.__dict__.update(order.__dict__)
    now.executed = executed_now
    notifications.append(now)


#: Each order class's parameters and their defaults, in Backtrader's order.
_ORDER_PARAMS = {cls: tuple(cls.params._getitems()) for cls in (bt.BuyOrder, bt.SellOrder)}
# What _new_order skips of MetaParams' construction must do nothing for the order classes.
_QUICK_ORDERS = all(not cls.packages and not cls.frompackages
                    and type(cls).doprenew is btmb.MetaBase.doprenew and type(cls).dopreinit is btmb.MetaBase.dopreinit
                    and type(cls).dopostinit is btmb.MetaBase.dopostinit and cls.__init__ is bt.Order.__init__
                    and cls.__new__ is object.__new__ for cls in _ORDER_PARAMS)


def _new_order(cls, given: dict):
    """``cls(**given)`` as Backtrader's MetaParams makes it (parameters from ``given`` or their
    defaults, then ``Order.__init__``), with each parameter's value also in the order's own
    attributes: Backtrader reads an order's parameters through ``Order.__getattr__``, a
    detour through its params object at every read of ``order.exectype``, ``order.data``…
    (dozens per order); the values read are the same (nothing changes an order's
    parameters once it exists)."""
    params = cls.params()
    values = {}
    for name, default in _ORDER_PARAMS[cls]:
        values[name] = value = given.get(name, default)
        setattr(params, name, value)
    order = object.__new__(cls)
    order.params = order.p = params
    order.__dict__.update(values)
    order.__init__()
    return order


def _place(broker, cls, owner, data, size, price=None, plimit=None, exectype=None, valid=None, tradeid=0, oco=None,
           trailamount=None, trailpercent=None, parent=None, transmit=True, histnotify=False, _checksubmit=True,
           **kwargs):
    """``BackBroker.buy`` / ``sell`` (``cls``: ``BuyOrder`` or ``SellOrder``) with the order
    made by :func:`_new_order`."""
    order = _new_order(cls, dict(owner=owner, data=data, size=size, price=price, pricelimit=plimit,
                                 exectype=exectype, valid=valid, tradeid=tradeid, trailamount=trailamount,
                                 trailpercent=trailpercent, parent=parent, transmit=transmit, histnotify=histnotify))
    order.addinfo(**kwargs)
    broker._ocoize(order, oco)
    return broker.submit(order, check=_checksubmit)


def _wants_cash(analyzer) -> bool:
    """Whether ``analyzer`` or one of its children listens to the cash and value."""
    kind = type(analyzer)
    return (kind.notify_cashvalue is not bt.Analyzer.notify_cashvalue or kind.notify_fund is not bt.Analyzer.notify_fund
            or any(_wants_cash(child) for child in analyzer._children))


def _notify_orders_and_trades(strat, analyzers) -> None:
    """``Strategy._notify`` for a run where nobody listens to the cash and value: the pending
    orders and trades, to the strategy and its analyzers, in Backtrader's order."""
    for order in strat._orderspending:
        if order.exectype != _HISTORICAL or order.histnotify:
            strat.notify_order(order)
        for analyzer in analyzers:
            analyzer._notify_order(order)
    for trade in strat._tradespending:
        strat.notify_trade(trade)
        for analyzer in analyzers:
            analyzer._notify_trade(trade)


_HISTORICAL = bt.Order.Historical


def _overrides(cls, name: str) -> bool:
    return getattr(cls, name) is not getattr(bt.Strategy, name)
