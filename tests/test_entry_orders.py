"""Entry orders (issue 15, item 3): Stop, Limit and StopLimit orders a strategy enters
with — withdrawn after a few bars, valid for a few bars, or working until they fill — are
read off its recorded orders, filled in the vectorised simulation by Backtrader's rules
(tested against Backtrader's own fills, gaps included), and the strategies that use them
are scored on their surrogate; entry orders the fast path does not fill still name why."""

from __future__ import annotations

import dataclasses
import textwrap

import numpy as np
import pytest

from distillbt.backtest import run_backtest
from distillbt.data.sample import sample_market
from distillbt.discovery import discover
from distillbt.entry_orders import EntryOrder
from distillbt.protective import Protection, ProtectiveOrder
from distillbt.errors import InputError
from distillbt.surrogate import screen_plain
from distillbt.surrogate.order_log import fits_entry, identify, identify_entry
from distillbt.surrogate.own_lines import graph_lines
from distillbt.vectorised import simulate

from .recorded_runs import recorded_run

N = 16_000
TRAIN, SCREEN = (0, 9_000), (9_000, 13_000)

STRATEGIES = '''
import backtrader as bt


class HighStop(bt.Strategy):
    """A buy stop at the 20-bar high when the fast average is above the slow one, withdrawn
    after 5 bars unfilled; out when the fast average falls under the slow one."""

    params = (("fast", 10), ("slow", 40), ("bars", 5))

    def __init__(self):
        self.fast = bt.ind.SMA(period=self.p.fast)
        self.slow = bt.ind.SMA(period=self.p.slow)
        self.top = bt.ind.Highest(self.data.high, period=20)
        self.order = None
        self.sent_at = None

    def notify_order(self, order):
        if not order.alive():
            self.order = None

    def next(self):
        if self.order:
            if not self.position and len(self) - self.sent_at >= self.p.bars:
                self.cancel(self.order)
            return
        if not self.position:
            if self.fast[0] > self.slow[0]:
                self.order = self.buy(exectype=bt.Order.Stop, price=self.top[0])
                self.sent_at = len(self)
        elif self.fast[0] < self.slow[0]:
            self.order = self.close()


class LowSellStop(bt.Strategy):
    """The short mirror, with an order valid for 4 bars (it expires): a sell stop at the
    20-bar low under a falling average; covered when it stops falling."""

    params = (("period", 30), ("bars", 4))

    def __init__(self):
        self.sma = bt.ind.SMA(period=self.p.period)
        self.falling = self.sma < self.sma(-5)
        self.bottom = bt.ind.Lowest(self.data.low, period=20)
        self.order = None

    def notify_order(self, order):
        if not order.alive():
            self.order = None

    def next(self):
        if self.order:
            return
        if not self.position:
            if self.falling[0]:
                now = self.data.datetime.datetime(0)
                bar = now - self.data.datetime.datetime(-1)
                self.order = self.sell(exectype=bt.Order.Stop, price=self.bottom[0], valid=now + bar * self.p.bars)
        elif not self.falling[0]:
            self.order = self.close()


class DipLimit(bt.Strategy):
    """A buy limit a fraction under the close in an uptrend, valid for 3 bars; out after a
    fixed number of bars held."""

    params = (("dip", 0.002), ("hold", 15))

    def __init__(self):
        self.up = bt.ind.EMA(period=20) > bt.ind.EMA(period=60)
        self.order = None
        self.entered = None

    def notify_order(self, order):
        if order.status == order.Completed and order.isbuy():
            self.entered = len(self)
        if not order.alive():
            self.order = None

    def next(self):
        if self.order:
            return
        if not self.position:
            if self.up[0]:
                now = self.data.datetime.datetime(0)
                bar = now - self.data.datetime.datetime(-1)
                self.order = self.buy(exectype=bt.Order.Limit, price=self.data.close[0] * (1 - self.p.dip),
                                      valid=now + bar * 3)
        elif len(self) - self.entered >= self.p.hold:
            self.order = self.close()


class AtrStopUntilFilled(bt.Strategy):
    """A buy stop half an ATR over the close when RSI turns up through 50, left working until
    it fills; out when RSI falls under 45."""

    def __init__(self):
        self.atr = bt.ind.ATR(period=14)
        self.rsi = bt.ind.RSI(period=14)
        self.up = bt.ind.CrossUp(self.rsi, 50.0)
        self.order = None

    def notify_order(self, order):
        if not order.alive():
            self.order = None

    def next(self):
        if self.order:
            return
        if not self.position:
            if self.up[0]:
                self.order = self.buy(exectype=bt.Order.Stop, price=self.data.close[0] + 0.5 * self.atr[0])
        elif self.rsi[0] < 45:
            self.order = self.close()


class OcoEntries(bt.Strategy):
    """Buy and sell stops around the 20-bar range while the range is narrow, one cancelling
    the other, both withdrawn after 8 bars; out after 10 bars held."""

    params = (("width", 0.012), ("bars", 8))

    def __init__(self):
        self.top = bt.ind.Highest(self.data.high, period=20)
        self.bottom = bt.ind.Lowest(self.data.low, period=20)
        self.narrow = (self.top - self.bottom) / self.data.close < self.p.width
        self.orders = []
        self.entered = self.sent_at = None

    def notify_order(self, order):
        if order.status == order.Completed and self.entered is None:
            self.entered = len(self)
        if not order.alive() and order in self.orders:
            self.orders.remove(order)

    def next(self):
        if self.orders:
            if not self.position and len(self) - self.sent_at >= self.p.bars:
                for order in list(self.orders):
                    self.cancel(order)
            return
        if self.position:
            if len(self) - self.entered >= 10:
                self.orders = [self.close()]
            return
        self.entered = None
        if self.narrow[0]:
            buy = self.buy(exectype=bt.Order.Stop, price=self.top[0])
            self.orders = [buy, self.sell(exectype=bt.Order.Stop, price=self.bottom[0], oco=buy)]
            self.sent_at = len(self)


class GtcOcoEntries(OcoEntries):
    """The same pair left working until one fills."""

    params = (("bars", 10 ** 9),)


class StopMovedEachBar(bt.Strategy):
    """A buy stop at the 20-bar high while the fast average is over the slow one, cancelled
    and sent again at every close it has not filled by (the stop follows the high: one
    next() withdraws it and sends the next); out when the fast average falls under."""

    def __init__(self):
        self.fast = bt.ind.EMA(period=10)
        self.slow = bt.ind.EMA(period=40)
        self.top = bt.ind.Highest(self.data.high, period=20)
        self.order = None

    def notify_order(self, order):
        if not order.alive() and self.order is not None and order.ref == self.order.ref:
            self.order = None  # (the broker notifies a copy of the order)

    def next(self):
        if self.position:
            if self.fast[0] < self.slow[0] and self.order is None:
                self.order = self.close()
            return
        if self.order is not None:
            self.cancel(self.order)
            self.order = None
        if self.fast[0] > self.slow[0]:
            self.order = self.buy(exectype=bt.Order.Stop, price=self.top[0])


class WithdrawnBracket(bt.Strategy):
    """An entry order with a bracket, sent by ``send`` (the three orders, or None), withdrawn
    after ``wait`` bars unfilled (cancelling the entry cancels its children)."""

    wait = 3

    def __init__(self):
        self.orders = []
        self.sent_at = None

    def notify_order(self, order):
        if not order.alive():
            self.orders = [o for o in self.orders if o.ref != order.ref]

    def next(self):
        if self.orders:
            if not self.position and len(self) - self.sent_at >= self.wait:
                self.cancel(self.orders[0])
            return
        if not self.position:
            sent = self.send()
            if sent:
                self.orders, self.sent_at = list(sent), len(self)


class LimitBracket(WithdrawnBracket):
    """A buy limit 0.2 % under the close in an uptrend, withdrawn after 3 bars unfilled, with
    a bracket: a stop 0.8 % and a take-profit 0.6 % from the limit's price. (Not ``valid=``:
    ``buy_bracket`` gives its children the same expiry, which would leave the position
    unprotected after it.)"""

    params = (("dip", 0.002), ("stop", 0.008), ("take", 0.006))

    def __init__(self):
        super().__init__()
        self.up = bt.ind.EMA(period=20) > bt.ind.EMA(period=60)

    def send(self):
        if self.up[0]:
            price = self.data.close[0] * (1 - self.p.dip)
            return self.buy_bracket(exectype=bt.Order.Limit, price=price, stopprice=price * (1 - self.p.stop),
                                    limitprice=price * (1 + self.p.take))


class BreakdownBracket(WithdrawnBracket):
    """A sell stop at the 20-bar low while the fast average is under the slow one, withdrawn
    after 6 bars, with a bracket of a stop 1.5 ATR over the close that sent it and a
    take-profit 1 % under the stop entry."""

    wait = 6

    def __init__(self):
        super().__init__()
        self.fast = bt.ind.EMA(period=10)
        self.slow = bt.ind.EMA(period=40)
        self.bottom = bt.ind.Lowest(self.data.low, period=20)
        self.atr = bt.ind.ATR(period=14)

    def send(self):
        if self.fast[0] < self.slow[0]:
            price = self.bottom[0]
            return self.sell_bracket(exectype=bt.Order.Stop, price=price,
                                     stopprice=self.data.close[0] + 1.5 * self.atr[0], limitprice=price * 0.99)


class BandBracket(WithdrawnBracket):
    """A buy limit at the lower Bollinger band over a rising 100-bar average, withdrawn after
    4 bars, with a bracket: a stop 2 ATR under the band, a take-profit at the middle band."""

    wait = 4

    def __init__(self):
        super().__init__()
        self.bands = bt.ind.BollingerBands(period=20)
        self.atr = bt.ind.ATR(period=14)
        self.trend = self.data.close > bt.ind.SMA(period=100)

    def send(self):
        if self.trend[0]:
            band = self.bands.bot[0]
            return self.buy_bracket(exectype=bt.Order.Limit, price=band, stopprice=band - 2.0 * self.atr[0],
                                    limitprice=self.bands.mid[0])


class StretchStop(bt.Strategy):
    """A buy stop 5 % over the close while the fast average is over the slow one, left
    working until it fills; out when it no longer is. Sized at the sending close, a fill
    more than 1 / 0.95 over it costs more than the cash: Backtrader refuses it (Margin)."""

    def __init__(self):
        self.rising = bt.ind.SMA(period=10) > bt.ind.SMA(period=30)
        self.order = None

    def notify_order(self, order):
        if not order.alive():
            self.order = None

    def next(self):
        if self.order:
            return
        if not self.position:
            if self.rising[0]:
                self.order = self.buy(exectype=bt.Order.Stop, price=self.data.close[0] * 1.05)
        elif not self.rising[0]:
            self.order = self.close()


class TwoBuyStops(OcoEntries):
    """A buy stop at the range's top and a buy limit under its bottom sent together, one
    cancelling the other (both buying: no pair the fast path fills)."""

    def next(self):
        if not self.orders and not self.position and self.narrow[0]:
            stop = self.buy(exectype=bt.Order.Stop, price=self.top[0])
            self.orders = [stop, self.buy(exectype=bt.Order.Limit, price=self.bottom[0], oco=stop)]
            self.sent_at = len(self)
            return
        super().next()


class StopLimitEntry(HighStop):
    """HighStop with a StopLimit order, its limit a little over the stop."""

    params = (("limit", 1.001),)

    def next(self):
        if not self.order and not self.position and self.fast[0] > self.slow[0]:
            self.order = self.buy(exectype=bt.Order.StopLimit, price=self.top[0],
                                  plimit=self.top[0] * self.p.limit)
            self.sent_at = len(self)
            return
        super().next()


class StopLimitUnder(StopLimitEntry):
    """The same with its limit under the stop: once triggered it buys only a pull-back."""

    params = (("limit", 0.9993),)


class StopLimitFromClose(StopLimitEntry):
    """A StopLimit whose limit follows the close, not its stop (no rule the fast path has)."""

    def next(self):
        if not self.order and not self.position and self.fast[0] > self.slow[0]:
            self.order = self.buy(exectype=bt.Order.StopLimit, price=self.top[0],
                                  plimit=self.data.close[0] * 1.003)
            self.sent_at = len(self)
            return
        super().next()


class SignalBarStop(bt.Strategy):
    """A buy stop at the signal bar's high for one bar, on a dip under the fast average
    while it is over the slow one; a stop under the low of the bar before the fill, sent as
    the entry fills; out under the slow average. (The feed's prices, not lines of its own.)"""

    def __init__(self):
        self.fast = bt.ind.EMA(period=10)
        self.slow = bt.ind.SMA(period=40)
        self.entry = None
        self.stop_order = None

    def notify_order(self, order):
        if order.alive():
            return
        if order == self.entry:
            self.entry = None
            if order.status == order.Completed:
                self.stop_order = self.protect()
        elif order == self.stop_order:
            self.stop_order = None

    def protect(self):
        return self.sell(exectype=bt.Order.Stop, price=self.data.low[-1])

    def next(self):
        if self.entry:
            return
        if not self.position:
            if self.fast[0] > self.slow[0] and self.data.close[0] < self.fast[0]:
                now = self.data.datetime.datetime(0)
                self.entry = self.buy(exectype=bt.Order.Stop, price=self.data.high[0],
                                      valid=now + (now - self.data.datetime.datetime(-1)))
        elif self.data.close[0] < self.slow[0]:
            if self.stop_order:
                self.cancel(self.stop_order)
            self.close()


class SignalBarLimit(SignalBarStop):
    """The short mirror with a limit: a sell limit at the signal bar's high for two bars on
    a bounce over the fast average under the slow one; a buy stop 0.5 % over the fill bar's
    high; covered over the slow average."""

    def protect(self):
        return self.buy(exectype=bt.Order.Stop, price=self.data.high[0] * 1.005)

    def next(self):
        if self.entry:
            return
        if not self.position:
            if self.fast[0] < self.slow[0] and self.data.close[0] > self.fast[0]:
                now = self.data.datetime.datetime(0)
                self.entry = self.sell(exectype=bt.Order.Limit, price=self.data.high[0],
                                       valid=now + 2 * (now - self.data.datetime.datetime(-1)))
        elif self.data.close[0] > self.slow[0]:
            if self.stop_order:
                self.cancel(self.stop_order)
            self.close()
'''


@pytest.fixture(scope="module")
def candles():
    """The sample market with opens away from the close before (gaps up and down), so that
    fills at a gapped open happen and are checked."""
    market = sample_market(bars=N, seed=11)
    frame = market.frame.copy()
    rng = np.random.default_rng(3)
    close = frame["close"].to_numpy()
    opens = np.concatenate(([close[0]], close[:-1] * np.exp(0.0015 * rng.standard_normal(len(close) - 1))))
    frame["open"] = opens
    frame["high"] = np.maximum(frame["high"].to_numpy(), opens)
    frame["low"] = np.minimum(frame["low"].to_numpy(), opens)
    return dataclasses.replace(market, frame=frame)


@pytest.fixture(scope="module")
def wild(candles):
    """A market moving 1 % a bar with opens 1.2 % away from the close before: stops far from
    the close fill, and some fill too far (gapped) for the cash."""
    frame = candles.frame.copy()
    rng = np.random.default_rng(5)
    close = 20_000 * np.exp(np.cumsum(0.01 * rng.standard_normal(len(frame))))
    opens = np.concatenate(([close[0]], close[:-1] * np.exp(0.012 * rng.standard_normal(len(close) - 1))))
    wick = np.abs(0.004 * rng.standard_normal((2, len(close))))
    frame["open"], frame["close"] = opens, close
    frame["high"] = np.maximum(opens, close) * np.exp(wick[0])
    frame["low"] = np.minimum(opens, close) * np.exp(-wick[1])
    return dataclasses.replace(candles, frame=frame, true_regimes=None)


@pytest.fixture(scope="module")
def configs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("entry_orders")
    (folder / "entries.py").write_text(textwrap.dedent(STRATEGIES))
    return {c.strategy.name: c for c in discover(folder).configurations()}


@pytest.mark.parametrize("name, described", [
    ("HighStop", "stop entry at 1 × top, for 5 bars"),
    ("LowSellStop", "stop entry at 1 × bottom, for 4 bars"),
    ("DipLimit", "limit entry at 0.998 × close, for 3 bars"),
    ("AtrStopUntilFilled", "stop entry at close +0.5 × atr, until filled"),
    ("StopLimitEntry", "stoplimit entry at 1 × top, limit 1.001 × stop, for 5 bars"),
    ("StopLimitUnder", "stoplimit entry at 1 × top, limit 0.9993 × stop, for 5 bars"),
    ("OcoEntries", "stop entry at 1 × top, OCO with a stop entry at 1 × bottom the other way, for 8 bars"),
    ("GtcOcoEntries", "stop entry at 1 × top, OCO with a stop entry at 1 × bottom the other way, until filled"),
    ("StopMovedEachBar", "stop entry at 1 × top, for 1 bars, decided again as withdrawn"),
])
def test_entry_orders_fill_where_and_at_what_backtrader_fills_them(candles, configs, name, described):
    """The rule read off the recorded orders prices and times every one of them; sending each
    by the rule where the strategy sent it finds Backtrader's own fills — bar and price, at a
    gapped open too — or that it was withdrawn unfilled; and the simulation fed the decisions
    and those entries gives Backtrader's equity at every close."""
    recorder, bars, _ = recorded_run(candles, configs[name])
    rec = recorder.get_analysis()
    assert rec["entry_unmodelled"] is None and rec["protective_unmodelled"] is None
    orders = rec["entry_orders"]
    entry, why = identify_entry(orders)
    assert why is None and entry.describe() == described
    assert fits_entry(entry, orders)
    filled = [o for o in orders if o["fill"] >= 0]
    assert len(filled) > 20 and len(filled) < len(orders) or entry.lifetime is None
    lines = {k: np.asarray(v.array) for k, v in graph_lines(recorder.strategy)}
    o_, h, low, c = (bars[k] for k in ("open", "high", "low", "close"))
    sent, fills, prices, sides = [], [], [], []
    for order in orders:
        s = order["sent"]
        f, price, side = entry.send(order["side"], c[s], lambda name, s=s: lines[name][s],
                                    o_[s + 1:], h[s + 1:], low[s + 1:], c[s + 1:])
        if order["end"] == "working":
            assert f < 0 or s + 1 + f >= len(c) - 1
            continue
        assert (s + 1 + f if f >= 0 else -1) == order["fill"], order
        if f >= 0:
            assert price == pytest.approx(order["fill_price"], rel=1e-12) and side == order["fill_side"]
        sent.append(s)
        fills.append(s + 1 + f if f >= 0 else -1)
        prices.append(price)
        sides.append(side)
    assert len(set(sides)) == 2 or entry.other is None, "an OCO pair that never filled the other way"
    at_open = sum(1 for o in filled if o["fill_price"] == o_[o["fill"]])
    assert at_open > 0, "no fill at a gapped open: that rule went untested"
    decided = np.sign(rec["decided"]).copy()
    decided[sent] = [o["side"] for o in orders if o["end"] != "working"]
    out = simulate(bars, decided, entries=(sent, fills, prices, sides), reissue=True)
    np.testing.assert_allclose(out["equity"], rec["values"], rtol=1e-9)
    # the same decisions with market entries are not Backtrader's run
    assert np.max(np.abs(simulate(bars, decided, reissue=True)["equity"] / rec["values"] - 1)) > 1e-3


@pytest.mark.parametrize("name", ["HighStop", "LowSellStop", "DipLimit", "AtrStopUntilFilled", "StopLimitUnder",
                                  "OcoEntries", "StopMovedEachBar", "LimitBracket", "BreakdownBracket",
                                  "BandBracket", "SignalBarStop", "SignalBarLimit"])
def test_strategies_with_entry_orders_are_scored_on_their_surrogate(candles, configs, name):
    """Each on its surrogate, its score its full backtest's; a bracket sent with an entry
    order (its stop and take-profit tried from the bar after the entry fills, priced from
    the close that sent the entry, the entry's price or a line there — or one line plus a
    multiple of another: a stop 2 ATR under the band the entry waits at) among them. (The
    screen's 6 base episodes: on 4, OcoEntries' pairs all filled before their 8 bars were up,
    the rule read was "until filled", and the spot check's windows, where some were withdrawn,
    refused it — as they should.)"""
    config = configs[name]
    out = screen_plain([config], candles, train=TRAIN, screen=SCREEN, seed=0, base_episodes=6, progress=False,
                       min_speedup=0)
    record = out.records[0]
    assert record["path"] == "surrogate", record["trust"]
    trust = record["trust"]
    # the bars an entry order works on are no decisions: a walk that decides every other
    # held-out bar as the strategy did has no P&L gap
    assert trust["agreement"] < 1.0 or trust["pnl_gap"] == 0.0
    assert trust["spot_agreement"] < 1.0 or trust["spot_gap"] == 0.0
    longer = recorded_run(candles, config)[0].get_analysis()
    assert trust["entry"] == identify_entry(longer["entry_orders"])[0].describe()
    if longer["protective_trades"]:
        assert trust["protection"] == identify(longer["protective_trades"])[0].describe()
    full = run_backtest(config.strategy.cls, candles, params=config.params, start=candles.frame.index[SCREEN[0]],
                        end=candles.frame.index[SCREEN[1] - 1], warmup_bars=400)["score"]
    assert record["score"] == pytest.approx(full, abs=1e-9)


@pytest.mark.parametrize("name, entry, protection", [
    ("SignalBarStop", "stop entry at 1 × feed:high, for 1 bars", "stop at 1 × feed:low[-1]"),
    ("SignalBarLimit", "limit entry at 1 × feed:high, for 2 bars", "stop at 1.005 × feed:high"),
])
def test_orders_priced_from_the_feeds_prices_are_read_so(candles, configs, name, entry, protection):
    """An entry at the signal bar's high and a stop at the bar before's low (or over the fill
    bar's high): rules on the feed's prices where the order is sent, not on a line of the
    strategy's (the strategies above are scored on their surrogates with them)."""
    rec = recorded_run(candles, configs[name])[0].get_analysis()
    assert rec["entry_unmodelled"] is None and rec["protective_unmodelled"] is None
    found, why = identify_entry(rec["entry_orders"])
    assert why is None and found.describe() == entry and fits_entry(found, rec["entry_orders"])
    found, why = identify(rec["protective_trades"])
    assert why is None and found.describe() == protection


@pytest.mark.parametrize("name, reason", [
    ("TwoBuyStops", "not one buying and one selling"),
    ("StopLimitFromClose", "StopLimit entries whose limit is no fixed multiple of their stop"),
])
def test_entry_orders_not_modelled_go_to_the_replay_with_their_reason(candles, configs, name, reason):
    out = screen_plain([configs[name]], candles, train=TRAIN, screen=SCREEN, seed=0, base_episodes=4,
                       progress=False, min_speedup=0)
    record = out.records[0]
    assert record["path"] == "replay" and reason in record["trust"]["reason"]


def test_a_rule_read_on_some_orders_checks_others(candles, configs):
    """An entry rule read on one stretch fits another of the same strategy, not another
    strategy's orders (the spot check's test)."""
    early = identify_entry(recorded_run(candles, configs["DipLimit"])[0].get_analysis()["entry_orders"])[0]
    later = recorded_run(candles, configs["DipLimit"], rows=slice(8_000, 12_000))[0].get_analysis()
    assert fits_entry(early, later["entry_orders"])
    other = recorded_run(candles, configs["HighStop"], rows=slice(8_000, 12_000))[0].get_analysis()
    assert not fits_entry(early, other["entry_orders"])
    assert not fits_entry(dataclasses.replace(early, lifetime=4), later["entry_orders"])


def test_entry_orders_check_what_they_are_given():
    with pytest.raises(InputError):
        EntryOrder("stoplimit")  # no limit_factor
    with pytest.raises(InputError):
        EntryOrder("stop", limit_factor=1.001)
    with pytest.raises(InputError):
        EntryOrder("market")
    with pytest.raises(InputError):  # a base line is the anchor of "base + offset × line"
        ProtectiveOrder("stop", "with_entry", anchor="sent_close", line="atr", offset=-2.0, base="band")
    stop = ProtectiveOrder("stop", "with_entry", anchor="line", line="atr", offset=-2.0, base="band")
    assert stop.level(1.0, 100.0, 100.0, line_value=1.5, base_value=98.0) == pytest.approx(95.0)
    assert Protection((stop,)).lines == ["atr", "band"] and Protection((stop,)).describe() == "stop at band -2 × atr"
    with pytest.raises(InputError):
        EntryOrder("stop", anchor="line")  # no line named
    with pytest.raises(InputError):
        EntryOrder("limit", lifetime=0)
    bars = {"open": np.ones(5), "close": np.ones(5)}
    with pytest.raises(InputError):
        simulate(bars, np.zeros(5), entries=([1], [1], [1.0]))  # fills on the bar that sent it
    with pytest.raises(InputError):
        simulate(bars, np.zeros(5), entries=([2, 1], [-1, -1], [np.nan, np.nan]))


def test_an_entry_order_refused_for_cash_leaves_the_walk_flat_there(wild, configs):
    """A stop that fills further over its sending close than the sizer's cash allows is
    refused by the broker (Margin), its strategy flat and deciding again on that bar: the
    recording says so, the walk restarts there, and the score is the full backtest's."""
    config = configs["StretchStop"]
    rec = recorded_run(wild, config, rows=slice(*TRAIN))[0].get_analysis()
    assert rec["entry_unmodelled"] is None
    ends = [o["end"] for o in rec["entry_orders"]]
    assert ends.count("refused") >= 1 and ends.count("filled") > 20
    out = screen_plain([config], wild, train=TRAIN, screen=SCREEN, seed=0, base_episodes=4, progress=False,
                       min_speedup=0)
    record = out.records[0]
    assert record["path"] == "surrogate", record["trust"]
    screened = recorded_run(wild, config, rows=slice(SCREEN[0] - 400, SCREEN[1]))[0].get_analysis()
    assert [o["end"] for o in screened["entry_orders"]].count("refused") >= 1, "no refusal where it is scored"
    full = run_backtest(config.strategy.cls, wild, params=config.params, start=wild.frame.index[SCREEN[0]],
                        end=wild.frame.index[SCREEN[1] - 1], warmup_bars=400)["score"]
    assert record["score"] == pytest.approx(full, abs=1e-9)


def test_a_bracket_on_an_entry_order_is_tried_from_the_bar_after_the_entry_fills():
    """Backtrader's rule the walk follows: on the bar a buy limit fills, its bracket's stop
    is not tried even where that bar's low reaches it; the stop fills on a later bar."""
    import backtrader as bt
    import pandas as pd

    index = pd.date_range("2024-01-01", periods=12, freq="1min")
    low = [99.5, 99.5, 99.5, 98.5, 98.9, 98.9, 98.0, 98.9, 98.9, 98.9, 98.9, 98.9]
    frame = pd.DataFrame({"open": [100, 100, 100, 99.5] + [99] * 8, "high": [100.5] * 12, "low": low,
                          "close": [100, 100, 100] + [99] * 9, "volume": 1.0}, index=index)
    fills = {}

    class Bracketed(bt.Strategy):
        def next(self):
            if len(self) == 2:
                self.buy_bracket(exectype=bt.Order.Limit, price=99.0, stopprice=98.8, limitprice=101.0)

        def notify_order(self, order):
            if order.status == order.Completed:
                fills[order.exectype] = (len(self) - 1, order.executed.price)

    cerebro = bt.Cerebro()
    cerebro.adddata(bt.feeds.PandasData(dataname=frame))
    cerebro.addstrategy(Bracketed)
    cerebro.run()
    assert fills[bt.Order.Limit] == (3, 99.0)  # the entry, in the bar whose low reaches the stop too
    assert fills[bt.Order.Stop] == (6, 98.8)  # the stop: the first bar after it to reach 98.8
    # the walk's rule (protective orders tried from the bar after the entry fills) finds it
    protection = Protection((ProtectiveOrder("stop", "with_entry", factor=98.8 / 100.0),
                             ProtectiveOrder("limit", "with_entry", factor=1.01)))
    levels = protection.levels(1.0, signal_close=100.0, entry_close=99.0, fill=99.0)
    after = slice(4, None)
    row, price = protection.first_exit(1.0, levels, *(frame[k].to_numpy()[after] for k in ("open", "high", "low",
                                                                                            "close")))
    assert (4 + row, price) == fills[bt.Order.Stop]
