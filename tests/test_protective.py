"""Protective orders (issue 15, item 3): stop-losses, take-profits and trailing stops that a
strategy attaches to its market entries are filled in the vectorised simulation by
Backtrader's rules — tested against Backtrader's own fills — and the strategies that use them
are scored on their surrogate; orders the fast path does not fill still name why."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from distillbt.backtest import run_backtest
from distillbt.data.sample import sample_market
from distillbt.discovery import discover
from distillbt.errors import InputError
from distillbt.protective import Protection, ProtectiveOrder
from distillbt.surrogate import screen_plain
from distillbt.surrogate.order_log import identify
from distillbt.surrogate.own_lines import graph_lines
from distillbt.vectorised import simulate

from .recorded_runs import recorded_run

N = 16_000
TRAIN, SCREEN = (0, 9_000), (9_000, 13_000)

STRATEGIES = '''
import backtrader as bt


class BracketPercent(bt.Strategy):
    """A momentum turn entered at market with a bracket: stop and take-profit a percentage
    from the signal close. Nothing else is done while the bracket works."""

    params = (("stop", 0.006), ("take", 0.009), ("short", False))

    def __init__(self):
        mom = bt.ind.Momentum(self.data.close, period=6)
        if self.p.short:
            self.turned = bt.And(mom < 0, mom(-1) >= 0)
        else:
            self.turned = bt.And(mom > 0, mom(-1) <= 0)
        self.orefs = []

    def notify_order(self, order):
        if not order.alive() and order.ref in self.orefs:
            self.orefs.remove(order.ref)

    def next(self):
        if self.orefs or self.position or not self.turned[0]:
            return
        stop, limit = self.bracket_prices(self.data.close[0], -1 if self.p.short else 1)
        send = self.sell_bracket if self.p.short else self.buy_bracket
        self.orefs = [o.ref for o in send(exectype=bt.Order.Market, stopprice=stop, limitprice=limit)]

    def bracket_prices(self, close, away):
        return close * (1 - away * self.p.stop), close * (1 + away * self.p.take)


class ShortBracket(BracketPercent):
    """The mirror: a momentum turn down sold short with a bracket above and below."""

    params = (("stop", 0.007), ("take", 0.01), ("short", True))


class FillStop(bt.Strategy):
    """An EMA cross entered at market; once it fills, a stop a percentage under the fill
    price. Out on the opposite cross (the stop cancelled) or by the stop."""

    params = (("stop", 0.005),)

    def __init__(self):
        self.cross = bt.ind.CrossOver(bt.ind.EMA(period=8), bt.ind.EMA(period=30))
        self.order = self.stop_order = None

    def notify_order(self, order):
        if order.status == order.Completed and order.isbuy():
            self.stop_order = self.sell(exectype=bt.Order.Stop, price=self.stop_price(order))
        if not order.alive():
            if self.order is not None and order.ref == self.order.ref:
                self.order = None
            if self.stop_order is not None and order.ref == self.stop_order.ref:
                self.stop_order = None

    def stop_price(self, entry):
        return entry.executed.price * (1 - self.p.stop)

    def next(self):
        if self.order:
            return
        if not self.position:
            if self.cross[0] > 0:
                self.order = self.buy()
        elif self.cross[0] < 0:
            if self.stop_order is not None:
                self.cancel(self.stop_order)
            self.order = self.close()


class TrailOnFill(bt.Strategy):
    """An RSI dip bought at market; once it fills, a percentage trailing stop is its only exit
    (``short``: an overbought RSI sold short, the trail above it by an amount)."""

    params = (("trail", 0.008), ("short", False))

    def __init__(self):
        self.rsi = bt.ind.RSI(self.data.close, period=10, safediv=True)
        self.order = None

    def notify_order(self, order):
        if order.status == order.Completed and order.isbuy() != self.p.short:
            distance = dict(trailamount=self.p.trail) if self.p.short else dict(trailpercent=self.p.trail)
            (self.buy if self.p.short else self.sell)(exectype=bt.Order.StopTrail, **distance)
        if not order.alive() and self.order is not None and order.ref == self.order.ref:
            self.order = None

    def next(self):
        if self.order or self.position:
            return
        if self.p.short and self.rsi[0] > 65:
            self.order = self.sell()
        elif not self.p.short and self.rsi[0] < 35:
            self.order = self.buy()


class TrailShort(TrailOnFill):
    """The mirror, by amount."""

    params = (("trail", 60.0), ("short", True))


class AtrBracket(BracketPercent):
    """A bracket ATRs from the close (the stop 2 ATRs under it, the target 3 above)."""

    def __init__(self):
        super().__init__()
        self.atr = bt.ind.ATR(period=14)

    def bracket_prices(self, close, away):
        return close - 2 * self.atr[0], close + 3 * self.atr[0]


class FillOco(FillStop):
    """A stop under and a take-profit limit over the fill price, sent apart and tied by OCO."""

    params = (("take", 0.006),)

    def notify_order(self, order):
        super().notify_order(order)
        if order.status == order.Completed and order.isbuy():
            self.sell(exectype=bt.Order.Limit, price=order.executed.price * (1 + self.p.take), oco=self.stop_order)


class LateCancel(FillStop):
    """Out at market on the cross down, its stop cancelled a bar later: for that bar the stop
    outlives the trade (it could open a short), which the fast path does not model. (Its stop
    is far enough never to fill in that bar: the reason is the late cancel alone.)"""

    params = (("stop", 0.05),)

    def next(self):
        if self.order:
            return
        if not self.position and self.stop_order is not None:
            self.cancel(self.stop_order)  # a bar late
        elif not self.position and self.cross[0] > 0:
            self.order = self.buy()
        elif self.position and self.cross[0] < 0:
            self.order = self.close()


class LowStop(FillStop):
    """The stop at the lowest low of the last 3 bars when the entry fills (a line it holds)."""

    def __init__(self):
        super().__init__()
        self.low3 = bt.ind.Lowest(self.data.low, period=3)

    def stop_price(self, entry):
        return self.low3[0]


class EarlierClose(BracketPercent):
    """A stop under the close two bars back: no rule of the strategy's lines prices it."""

    def bracket_prices(self, close, away):
        return self.data.close[-2] * 0.995, close * 1.01
'''


@pytest.fixture(scope="module")
def candles():
    return sample_market(bars=N, seed=11)


@pytest.fixture(scope="module")
def configs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("protective")
    (folder / "protective.py").write_text(textwrap.dedent(STRATEGIES))
    return {c.strategy.name: c for c in discover(folder).configurations()}


def _exits_by_rule(protection, decided, bars, lines):
    """Where ``protection`` closes each trade of the recorded decisions, walked trade by
    trade as the surrogate's walk does (a trade ends at its protective fill or at the close
    that orders it out); ``lines``: the strategy's lines by name, for prices that read one."""
    o, h, low, c = (bars[k] for k in ("open", "high", "low", "close"))
    rows, prices, n, t = [], [], len(decided), 0
    while t < n - 1:
        if decided[t] == 0:
            t += 1
            continue
        side, e = decided[t], t + 1  # ordered at t's close, filled at e's open
        stop = e
        while stop < n and decided[stop] == side:
            stop += 1
        def line(name, sent, t=t, e=e):
            return lines[name][t if sent == "with_entry" else e]

        levels = protection.levels(side, signal_close=c[t], entry_close=c[min(e, n - 1)], fill=o[min(e, n - 1)],
                                   line=line)
        sl = slice(e + 1, min(stop + 1, n))
        f, price = protection.first_exit(side, levels, o[sl], h[sl], low[sl], c[sl])
        if f >= 0:
            rows.append(e + 1 + f)
            prices.append(price)
            t = e + 1 + f
        else:
            t = stop
    return np.array(rows, dtype=np.int64), np.array(prices)


@pytest.mark.parametrize("name, shape, gapped", [
    ("BracketPercent", (("stop", "with_entry"), ("limit", "with_entry")), True),
    ("ShortBracket", (("stop", "with_entry"), ("limit", "with_entry")), True),
    ("FillStop", (("stop", "on_fill"),), True),
    ("TrailOnFill", (("trail", "on_fill"),), False),
    ("TrailShort", (("trail", "on_fill"),), False),
    ("AtrBracket", (("stop", "with_entry"), ("limit", "with_entry")), False),
    ("LowStop", (("stop", "on_fill"),), False),
    ("FillOco", (("stop", "on_fill"), ("limit", "on_fill")), True),
])
def test_protective_orders_fill_where_and_at_what_backtrader_fills_them(candles, configs, name, shape, gapped):
    """The rule read off the recorded orders prices every one of them; walking the recorded
    decisions with it finds Backtrader's own protective fills — bar and price, gaps included
    — and the simulation fed those decisions and exits gives Backtrader's equity at every
    close."""
    recorder, bars, dates = recorded_run(candles, configs[name])
    rec = recorder.get_analysis()
    assert rec["protective_unmodelled"] is None and not rec["unmodelled_orders"]
    protection, why = identify(rec["protective_trades"])
    assert why is None and tuple((o.kind, o.sent) for o in protection.orders) == shape
    filled = [o for o in recorder.orders.values() if o.status == o.Completed]
    assert len(filled) > 20, "too few protective fills to compare"
    bt_rows = np.searchsorted(dates, [o.executed.dt for o in filled])
    bt_prices = np.array([o.executed.price for o in filled])
    order = np.argsort(bt_rows)
    decided = np.sign(rec["decided"])
    lines = {k: np.asarray(v.array) for k, v in graph_lines(recorder.strategy)}
    rows, prices = _exits_by_rule(protection, decided, bars, lines)
    np.testing.assert_array_equal(rows, bt_rows[order])
    np.testing.assert_allclose(prices, bt_prices[order], rtol=1e-12)
    at_open = np.sum(prices == bars["open"][rows])
    assert at_open > 0 or not gapped, "no fill at a gapped open: that rule went untested"
    out = simulate(bars, decided, exits=(rows, prices), reissue=True)
    np.testing.assert_allclose(out["equity"], rec["values"], rtol=1e-9)
    # without its exits the same decisions are not Backtrader's run
    assert np.max(np.abs(simulate(bars, decided, reissue=True)["equity"] / rec["values"] - 1)) > 1e-3


def test_a_stop_that_outlives_its_trade_names_why(candles, configs):
    rec = recorded_run(candles, configs["LateCancel"])[0].get_analysis()
    assert rec["protective_unmodelled"] == "stop or limit orders cancelled before or after their trade closes"


def test_prices_no_rule_fits_name_why(candles, configs):
    recorder, _, _ = recorded_run(candles, configs["EarlierClose"])
    protection, why = identify(recorder.get_analysis()["protective_trades"])
    assert protection is None and "no fixed multiple" in why


@pytest.mark.parametrize("name", ["BracketPercent", "ShortBracket", "FillStop", "TrailOnFill", "TrailShort",
                                  "AtrBracket", "LowStop", "FillOco"])
def test_strategies_with_protective_orders_are_scored_on_their_surrogate(candles, configs, name):
    config = configs[name]
    out = screen_plain([config], candles, train=TRAIN, screen=SCREEN, seed=0, base_episodes=4, progress=False,
                       min_speedup=0)
    record = out.records[0]
    assert record["path"] == "surrogate", record["trust"]
    trust = record["trust"]
    # a walk that decides every held-out bar as the strategy did has no P&L gap: the bars its
    # protective orders closed a position on are not decisions it got wrong
    assert trust["agreement"] < 1.0 or trust["pnl_gap"] == 0.0
    assert trust["spot_agreement"] < 1.0 or trust["spot_gap"] == 0.0
    # the record says what priced its fills: the rule a longer Backtrader run shows
    longer = identify(recorded_run(candles, config)[0].get_analysis()["protective_trades"])[0]
    assert trust["protection"] == longer.describe()
    full = run_backtest(config.strategy.cls, candles, params=config.params, start=candles.frame.index[SCREEN[0]],
                        end=candles.frame.index[SCREEN[1] - 1], warmup_bars=400)["score"]
    assert record["score"] == pytest.approx(full, abs=1e-9)


def test_an_unfilled_rule_goes_to_the_replay_with_its_reason(candles, configs):
    out = screen_plain([configs["EarlierClose"]], candles, train=TRAIN, screen=SCREEN, seed=0, base_episodes=4,
                       progress=False, min_speedup=0)
    record = out.records[0]
    assert record["path"] == "replay" and "no fixed multiple" in record["trust"]["reason"]


def test_protection_checks_what_it_is_given():
    with pytest.raises(InputError):
        ProtectiveOrder("stoplimit", "on_fill")
    with pytest.raises(InputError):
        ProtectiveOrder("trail", "on_fill")  # no distance
    with pytest.raises(InputError):
        Protection(())
    with pytest.raises(InputError):
        simulate({"open": np.ones(5), "close": np.ones(5)}, np.zeros(5), exits=([3, 2], [1.0, 1.0]))


@pytest.mark.parametrize("name", ["BracketPercent", "FillStop", "TrailOnFill"])
def test_the_replay_records_the_orders_backtrader_records(candles, configs, monkeypatch, name):
    """Recording runs under the replay; the protective orders it reads off the broker are
    those a run through ``bt.Cerebro`` leaves, to the last price."""
    from distillbt.distill.episodes import windows_as_episodes
    from distillbt.surrogate import recorder
    from distillbt.surrogate.replay import NotReplayable, ReadTracingCerebro

    episodes = windows_as_episodes(candles, [2_000, 5_000, 8_000], length=600, warmup=100)
    via_replay = recorder.record_episodes(configs[name], episodes, [0, 1, 2], warmup=60)

    class Refusing(ReadTracingCerebro):
        def run(self, *args, **kwargs):
            raise NotReplayable("forced: record through bt.Cerebro")

    monkeypatch.setattr(recorder, "ReadTracingCerebro", Refusing)
    via_cerebro = recorder.record_episodes(configs[name], episodes, [0, 1, 2], warmup=60)
    assert via_replay["unmodelled"] is None and via_replay["protection"] is not None
    assert len(via_replay["protective_trades"]) > 10
    assert via_replay["protective_trades"] == via_cerebro["protective_trades"]
    assert via_replay["protection"] == via_cerebro["protection"]


def test_a_rule_read_on_some_trades_checks_others(candles, configs):
    """The spot check's windows must be priced by the rule the base episodes showed: the
    same trades fit it, trades of another parameter do not."""
    from distillbt.surrogate.order_log import fits

    trades = recorded_run(candles, configs["AtrBracket"])[0].get_analysis()["protective_trades"]
    protection = identify(trades[:10])[0]
    assert protection.orders[0].line == "atr" and protection.orders[0].offset == pytest.approx(-2.0, rel=1e-9)
    assert fits(protection, trades[10:])
    other = recorded_run(candles, configs["BracketPercent"])[0].get_analysis()["protective_trades"]
    assert not fits(protection, other) and not fits(None, other) and fits(protection, [])
