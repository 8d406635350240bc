"""Orders submitted during the warm-up: a real order, rejected, never filled (real Backtrader runs).

The broker drops every order submitted on a bar before the scored period. It used to return
None, which broke ``buy_bracket``/``sell_bracket`` and Backtrader's manual bracket recipe
(``size=mainside.size``); now it returns a Backtrader order already *Rejected*, delivered to
``notify_order`` before the next bar, with its bracket children rejected too.

The reference for a warm-up run is plain Backtrader (its own ``BackBroker``, no distillbt
broker), fed the same warm-up and scored bars, with the same strategy gated so that it does
nothing on the bars before the scored start: a strategy whose warm-up orders are all dropped
must score exactly like that one (it is flat, with no order working, at the first scored bar).
"""

import math

import backtrader as bt
import numpy as np
import pytest

from distillbt.backtest import DEFAULT_CASH, SIZER_PERCENTS, feed_arrays, run_backtest, run_cerebro
from distillbt.data.candles import COLUMNS
from distillbt.data.sample import sample_market

START, WARM = 2_000, 500  # first scored row, warm-up bars fed before it


@pytest.fixture(scope="module")
def candles():
    return sample_market(bars=5_000, seed=1)


# --------------------------------------------------------------------------------------------
# Strategies. ``gate`` (a Backtrader day number) makes one ignore every bar before it: the
# reference. ``notes`` records each order notification as
# (ref, status, parent ref, executed size, bar at creation, bar at delivery).


class _Recording(bt.Strategy):
    params = (("fast", 10), ("slow", 30), ("stop", 0.02), ("take", 0.03), ("gate", -math.inf))

    def __init__(self):
        self.cross = bt.ind.CrossOver(bt.ind.SMA(period=self.p.fast), bt.ind.SMA(period=self.p.slow))
        self.orefs = []  # the bracket still working (refs)
        self.notes = []
        self.returned = []  # (bar, status of each order as returned by buy/sell)

    def notify_order(self, order):
        parent = getattr(order.parent, "ref", None)
        self.notes.append((order.ref, order.status, parent, order.executed.size,
                           order.created.dt, self.data.datetime[0]))
        if not order.alive() and order.ref in self.orefs:
            self.orefs.remove(order.ref)

    def next(self):
        if self.data.datetime[0] < self.p.gate or self.orefs:
            return
        if not self.position and self.cross[0] != 0:
            orders = self.enter(self.data.close[0], long=self.cross[0] > 0)
            if orders:
                self.orefs = [o.ref for o in orders]
                self.returned.append((self.data.datetime[0], [o.status for o in orders]))


class BuyBracketCross(_Recording):
    def enter(self, close, long):
        if not long:
            return []
        return self.buy_bracket(exectype=bt.Order.Market, stopprice=close * (1 - self.p.stop),
                                limitprice=close * (1 + self.p.take))


class SellBracketCross(_Recording):
    def enter(self, close, long):
        if long:
            return []
        return self.sell_bracket(exectype=bt.Order.Market, stopprice=close * (1 + self.p.stop),
                                 limitprice=close * (1 - self.p.take))


class ManualBracketCross(_Recording):
    """Backtrader's documented manual bracket: a parent held back, children sized from it."""

    def enter(self, close, long):
        if not long:
            return []
        mainside = self.buy(price=close * 1.001, exectype=bt.Order.Limit, transmit=False)
        lowside = self.sell(price=close * (1 - self.p.stop), size=mainside.size,
                            exectype=bt.Order.Stop, transmit=False, parent=mainside)
        highside = self.sell(price=close * (1 + self.p.take), size=mainside.size,
                             exectype=bt.Order.Limit, transmit=True, parent=mainside)
        return [mainside, lowside, highside]


class _Values(bt.Analyzer):
    """Broker value and position size at every bar's close (warm-up included)."""

    def start(self):
        self.values, self.positions = [], []

    def next(self):
        self.values.append(self.strategy.broker.getvalue())
        self.positions.append(self.strategy.broker.getposition(self.strategy.data).size)


# --------------------------------------------------------------------------------------------
# Helpers


def _datenum(candles, row):
    frame = candles.frame
    ns = frame.index.as_unit("ns").asi8[row:row + 1]
    return float(feed_arrays(ns, *(frame[c].to_numpy()[row:row + 1] for c in COLUMNS))["datetime"][0])


def _plain_backtrader(strategy_cls, candles, first, stop, **params):
    """Plain Backtrader (BackBroker, PandasData) with run_backtest's conventions: values and
    positions at each bar's close from ``first`` (every fed bar) to ``stop``."""
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.setcash(DEFAULT_CASH)
    cerebro.broker.setcommission(commission=0.001)
    cerebro.broker.set_checksubmit(False)
    cerebro.addsizer(bt.sizers.PercentSizer, percents=SIZER_PERCENTS)
    cerebro.adddata(bt.feeds.PandasData(dataname=candles.frame.iloc[first:stop]))
    cerebro.addstrategy(strategy_cls, **params)
    cerebro.addanalyzer(_Values, _name="values")
    strategy = cerebro.run()[0]
    return strategy, np.asarray(strategy.analyzers.values.values), np.asarray(strategy.analyzers.values.positions)


def _distillbt_run(strategy_cls, candles, first, warm, stop=None, **params):
    """The strategy through run_cerebro (the path of run_backtest and the surrogate's recorder)
    with the warm-up broker: the strategy instance, and values/positions at every fed bar."""
    frame = candles.frame
    stop = len(frame) if stop is None else stop
    rows = slice(first - warm, stop)
    arrays = feed_arrays(frame.index.as_unit("ns").asi8[rows], *(frame[c].to_numpy()[rows] for c in COLUMNS))
    strategy = run_cerebro(arrays=arrays, strategy_cls=strategy_cls, params=params, cash=DEFAULT_CASH,
                           commission=0.001, timeframe=candles.timeframe, symbol=None,
                           trade_from=arrays["datetime"][warm], analyzers={"values": (_Values, {})})
    return (strategy, np.asarray(strategy.analyzers.values.values),
            np.asarray(strategy.analyzers.values.positions))


# --------------------------------------------------------------------------------------------
# Tests


@pytest.mark.parametrize("strategy_cls", [BuyBracketCross, SellBracketCross, ManualBracketCross])
def test_bracket_strategy_with_warm_up_scores_like_one_that_ignores_the_warm_up(candles, strategy_cls):
    start = candles.frame.index[START]
    result = run_backtest(strategy_cls, candles, start=start, warmup_bars=WARM)
    assert result["warmup_bars"] == WARM and result["n_trades"] > 5

    gate = _datenum(candles, START)
    _, values, positions = _plain_backtrader(strategy_cls, candles, START - WARM, len(candles.frame), gate=gate)
    assert np.array_equal(result["equity"], values[WARM:])
    assert np.array_equal(result["positions"], positions[WARM:])
    assert (values[:WARM] == DEFAULT_CASH).all() and not positions[:WARM].any()

    # The run did exercise the warm-up path: brackets were placed, and rejected, before start.
    strategy, _, _ = _distillbt_run(strategy_cls, candles, START, WARM)
    before = [statuses for when, statuses in strategy.returned if when < gate]
    assert before and all(s == [bt.Order.Rejected] * 3 for s in before)


def test_warm_up_orders_are_rejected_and_notified_at_the_next_bar(candles):
    strategy, _, _ = _distillbt_run(BuyBracketCross, candles, START, WARM)
    gate = _datenum(candles, START)
    warm_notes = [n for n in strategy.notes if n[4] < gate]
    placed = sum(len(s) for when, s in strategy.returned if when < gate)
    assert placed >= 3
    # One notification per order, Rejected, nothing executed.
    assert len(warm_notes) == placed == len({n[0] for n in warm_notes})
    assert all(status == bt.Order.Rejected and size == 0 for _, status, _, size, _, _ in warm_notes)
    # Each bracket: a parent and its two children (parent= the rejected parent), all rejected.
    parents = {ref for ref, _, parent, *_ in warm_notes if parent is None}
    children = [parent for _, _, parent, *_ in warm_notes if parent is not None]
    assert len(children) == 2 * len(parents) and set(children) == parents
    # Delivered as Backtrader delivers any notification: before the next bar's next().
    times = candles.frame.index.as_unit("ns").asi8
    datenums = feed_arrays(times, *(candles.frame[c].to_numpy() for c in COLUMNS))["datetime"]
    for *_, created, delivered in warm_notes:
        assert np.searchsorted(datenums, delivered) == np.searchsorted(datenums, created) + 1
    # Orders placed in the scored period are untouched: accepted, and some complete.
    scored = [n for n in strategy.notes if n[4] >= gate]
    assert {bt.Order.Accepted, bt.Order.Completed} <= {n[1] for n in scored}
    assert bt.Order.Rejected not in {n[1] for n in scored}


class CashCheck(bt.Strategy):
    """Buys (market, stop, bracket) at every bar; records the account at every bar's close."""

    def __init__(self):
        self.account = []
        self.kept = None
        self.cancelled = []

    def next(self):
        broker = self.broker
        self.account.append((self.data.datetime[0], broker.getcash(), broker.getvalue(),
                             self.position.size, len(broker.get_orders_open())))
        if self.kept is not None:
            # Cancelling an order dropped in the warm-up (at any later bar) does nothing.
            self.cancelled.append((self.kept.created.dt, broker.cancel(self.kept)))
            self.cancel(self.kept)
            self.kept = None
        if self.position or broker.get_orders_open():
            return
        close = self.data.close[0]
        self.kept = self.buy()
        self.sell(exectype=bt.Order.Stop, price=close * 0.9, size=self.kept.size, parent=self.kept)
        self.buy_bracket(price=close, stopprice=close * 0.95, limitprice=close * 1.05)


def test_cash_and_position_untouched_at_the_first_scored_bar(candles):
    strategy, values, positions = _distillbt_run(CashCheck, candles, START, WARM, stop=START + 50)
    gate = _datenum(candles, START)
    warm_and_first = [a for a in strategy.account if a[0] <= gate]
    assert len(warm_and_first) == WARM + 1
    for _, cash, value, size, open_orders in warm_and_first:
        assert cash == value == DEFAULT_CASH and size == 0 and open_orders == 0
    dropped = [done for created, done in strategy.cancelled if created < gate]
    assert len(dropped) == WARM and not any(dropped)  # BackBroker.cancel: "nothing cancelled"
    assert (values[:WARM + 1] == DEFAULT_CASH).all() and not positions[:WARM + 1].any()
    # The market order placed at the first scored bar fills at the second bar's open.
    assert positions[WARM + 1] > 0
    result = run_backtest(CashCheck, candles, start=candles.frame.index[START], warmup_bars=WARM,
                          end=candles.frame.index[START + 49])
    assert result["equity"][0] == DEFAULT_CASH and result["positions"][0] == 0 < result["positions"][1]


class LateChild(bt.Strategy):
    """Keeps a parent placed (and dropped) in the warm-up, and attaches a child to it later."""

    params = (("gate", -math.inf),)

    def __init__(self):
        self.parent_order = None
        self.child = None
        self.child_notes = []

    def notify_order(self, order):
        if self.child is not None and order.ref == self.child.ref:
            self.child_notes.append(order.status)

    def next(self):
        if self.data.datetime[0] < self.p.gate:
            self.parent_order = self.buy(transmit=False)
        elif self.child is None:
            self.child = self.sell(exectype=bt.Order.Stop, price=self.data.close[0] * 0.9,
                                   size=self.parent_order.size, parent=self.parent_order)


def test_a_child_of_an_order_dropped_in_the_warm_up_is_rejected_by_backtrader(candles):
    gate = _datenum(candles, START)
    strategy, values, positions = _distillbt_run(LateChild, candles, START, WARM, stop=START + 20, gate=gate)
    assert strategy.parent_order.status == bt.Order.Rejected
    # BackBroker's own rule: a child whose parent it does not hold is rejected.
    assert strategy.child.status == bt.Order.Rejected and strategy.child_notes == [bt.Order.Rejected]
    assert (values == DEFAULT_CASH).all() and not positions.any()
