"""The replay (distillbt.surrogate.replay): a strategy's own next() over precomputed lines with
Backtrader's broker gives the full backtest's result, order types included; what it does not
reproduce falls back to Backtrader's loop; the screen scores untrusted surrogates with it, and a
targeted spot check catches a time exit the episodes never showed."""

from __future__ import annotations

import collections
import copy
import datetime
import math
import textwrap

import backtrader as bt
import numpy as np
import pytest

from distillbt import cli
from distillbt.backtest import BacktestJob, StrategyRunError, run_backtest, run_many
from distillbt.data.sample import sample_market
from distillbt.discovery import discover
from distillbt.errors import EngineUnsupported
from distillbt.surrogate import screen_plain
from distillbt.surrogate.replay import NotReplayable, ReplayCerebro


@pytest.fixture(scope="module")
def candles():
    return sample_market(bars=5_000, seed=11)


class LongShortTarget(bt.Strategy):
    """Always in, reversing with order_target_size sized from the account's value."""

    def __init__(self):
        self.cross = bt.ind.CrossOver(bt.ind.EMA(period=8), bt.ind.WMA(period=30))

    def next(self):
        units = 0.9 * self.broker.getvalue() / self.data.close[0]
        if self.cross[0] > 0:
            self.order_target_size(target=units)
        elif self.cross[0] < 0:
            self.order_target_size(target=-units)


class StopAndTarget(bt.Strategy):
    """A market entry, then a Stop and a Limit exit placed as an OCO pair once it fills."""

    def __init__(self):
        self.rsi = bt.ind.RSI(period=9, safediv=True)
        self.pending = None

    def notify_order(self, order):
        if order.status == order.Completed and order.isbuy():
            price = order.executed.price
            stop = self.sell(exectype=bt.Order.Stop, price=price * 0.99)
            self.sell(exectype=bt.Order.Limit, price=price * 1.015, oco=stop)
        if not order.alive():
            self.pending = None

    def next(self):
        if not self.position and self.pending is None and self.rsi[0] < 30:
            self.pending = self.buy()


class BracketBelow(bt.Strategy):
    """A limit entry below the close with its stop and target (buy_bracket), cancelled when
    not filled within 5 bars."""

    def __init__(self):
        self.atr = bt.ind.ATR(period=14)
        self.orders, self.placed = [], None

    def notify_order(self, order):
        if not order.alive() and order in self.orders:
            self.orders.remove(order)

    def next(self):
        if self.orders and self.placed is not None and len(self) - self.placed > 5 and not self.position:
            self.cancel(self.orders[0])
        if not self.position and not self.orders:
            close, atr = self.data.close[0], self.atr[0]
            self.orders = list(self.buy_bracket(limitprice=close + 3 * atr, price=close - 0.5 * atr,
                                                stopprice=close - 2 * atr))
            self.placed = len(self)


class TrailAndStopLimit(bt.Strategy):
    """StopLimit entries over the last high, exits by a trailing stop; counts prenext bars
    and watches cash and value through notify_cashvalue."""

    def __init__(self):
        self.high = bt.ind.Highest(self.data.high, period=20)
        self.prenexts, self.values = 0, []
        self.entry = self.trail = None

    def prenext(self):
        self.prenexts += 1

    def notify_cashvalue(self, cash, value):
        self.values.append(value)

    def notify_order(self, order):
        if order.status == order.Completed and order.isbuy():
            self.trail = self.sell(exectype=bt.Order.StopTrail, trailpercent=0.01)
        if not order.alive() and order.ref == getattr(self.entry, "ref", None):
            self.entry = None

    def next(self):
        if not self.position and self.entry is None:
            self.entry = self.buy(exectype=bt.Order.StopLimit, price=self.high[-1], plimit=self.high[-1] * 1.002,
                                  valid=self.data.datetime.datetime(0) + (self.data.datetime.datetime(0)
                                                                          - self.data.datetime.datetime(-1)) * 3)

    def stop(self):
        assert self.prenexts == 19 and len(self.values) == len(self)


class Momo(bt.Indicator):
    """A custom indicator with its own next: the replay computes it with Backtrader's once()."""

    lines = ("momo",)
    params = (("period", 12),)

    def __init__(self):
        self.addminperiod(self.p.period + 1)

    def next(self):
        self.lines.momo[0] = self.data[0] / self.data[-self.p.period] - 1.0


class CustomShort(bt.Strategy):
    def __init__(self):
        self.momo = Momo(self.data.close)

    def next(self):
        if self.momo[0] < -0.004 and self.position.size >= 0:
            self.sell(size=0.9 * self.broker.getvalue() / self.data.close[0] + self.position.size)
        elif self.momo[0] > 0.004 and self.position.size < 0:
            self.close()


class _Band(bt.Indicator):
    """A custom indicator whose object answers one of its line names itself."""

    lines = ("mid", "upper")
    params = (("period", 20),)

    def __init__(self):
        self.l.mid = bt.ind.SMA(self.data.close, period=self.p.period)
        self.l.upper = self.l.mid * 1.01
        self.upper = 0.0  # shadows the line: Backtrader's __getattr__ never sees this name


class ClockAndNames(bt.Strategy):
    """Reads the bar's time (now and a bar ago), lines by name and a name its indicator
    shadows; limit orders valid for a time span made from the bar's time."""

    def __init__(self):
        self.band = _Band(self.data)
        self.entry = None

    def notify_order(self, order):
        if not order.alive():
            self.entry = None

    def next(self):
        now, before = self.data.datetime.datetime(0), self.data.datetime.datetime(-1)
        assert isinstance(self.band.upper, float)  # the attribute, not the line
        if self.entry or now.hour % 3:
            return
        if not self.position and self.data.close[0] > self.band.mid[0]:
            self.entry = self.buy(exectype=bt.Order.Limit, price=self.data.low[0], valid=now + (now - before) * 2)
        elif self.position and self.data.close[0] < self.band.lines.mid[0]:
            self.close()


class Raises(bt.Strategy):
    def next(self):
        if len(self) == 300:
            raise ValueError("boom at bar 300")


@pytest.mark.parametrize("strategy", [LongShortTarget, StopAndTarget, BracketBelow, TrailAndStopLimit, CustomShort,
                                      ClockAndNames])
def test_a_replay_is_the_full_backtest(candles, strategy):
    kw = dict(start=candles.frame.index[1_000], warmup_bars=500)
    full = run_backtest(strategy, candles, **kw)
    replay = run_backtest(strategy, candles, cerebro=ReplayCerebro, **kw)
    assert replay["engine"] == "replay" and full["engine"] == "backtrader"
    assert len(full["trades"]) >= 10  # the orders under test really trade
    assert replay["trades"] == full["trades"]
    assert np.array_equal(replay["positions"], full["positions"])
    # the curve is cash + position × close, Backtrader's value to a few ulps
    np.testing.assert_allclose(replay["equity"], full["equity"], rtol=1e-12, atol=0)
    assert replay["score"] == pytest.approx(full["score"], rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("strategy", [StopAndTarget, BracketBelow, TrailAndStopLimit])
def test_the_replay_skips_broker_passes_that_would_change_nothing(candles, strategy, monkeypatch):
    """Stop and Limit orders waiting for their price: the broker's pass is skipped on the bars
    where none of them triggers or expires, and the run is still the full backtest's."""
    passes = {"with_orders": 0, "all": 0}
    own_next = bt.brokers.BackBroker.next

    def counted(self):
        passes["all"] += 1
        passes["with_orders"] += bool(self.pending)
        return own_next(self)

    monkeypatch.setattr(bt.brokers.BackBroker, "next", counted)
    kw = dict(start=candles.frame.index[1_000], warmup_bars=500)
    full = run_backtest(strategy, candles, **kw)
    waiting_in_full = passes["with_orders"]
    passes.update(with_orders=0, all=0)
    replay = run_backtest(strategy, candles, cerebro=ReplayCerebro, **kw)
    assert replay["trades"] == full["trades"] and replay["score"] == pytest.approx(full["score"], rel=1e-12)
    if strategy is TrailAndStopLimit:  # a trailing stop moves at every bar: never skipped
        assert passes["all"] >= 0.5 * waiting_in_full
    else:
        assert passes["all"] < 0.5 * waiting_in_full


def _order_state(order) -> dict:
    state = {k: v for k, v in vars(order).items() if k not in ("ref", "params", "p", "created", "executed", "info")}
    state["created"], state["executed"] = vars(order.created), {k: v for k, v in vars(order.executed).items()
                                                                 if k != "exbits"}
    return state


class Reads(bt.Strategy):
    """Reads at every bar what the replay answers from its clock — the position (three ways),
    its own length and an indicator's, lines by index and by name — and trades on them."""

    seen: list = []

    def __init__(self):
        self.sma = bt.ind.SMA(self.data.close, period=15)
        self.reads = []

    def next(self):
        self.reads.append((self.position.size, self.getposition().size, self.getposition(self.data).size,
                           len(self), len(self.data), len(self.sma), self.sma[0], self.sma[-1], self.data[0],
                           self.data.close[-2], self.data.lines.high[0]))
        if not self.position and self.data.close[0] > self.sma[0]:
            self.buy()
        elif self.position and self.data.close[0] < self.sma[0]:
            self.sell()

    def stop(self):
        Reads.seen.append((type(self), self.reads))


def test_the_replay_reads_what_backtrader_reads_and_gives_the_strategy_its_class_back(candles):
    """The replay answers ``self.position``, ``getposition()``, ``len()`` and ``line[ago]``
    from its clock (the strategy's class swapped for the run): every read, bar by bar, is
    Backtrader's, and the strategy has its own class again when the run stops."""
    Reads.seen.clear()
    kw = dict(start=candles.frame.index[1_000], warmup_bars=300)
    full = run_backtest(Reads, candles, **kw)
    replay = run_backtest(Reads, candles, cerebro=ReplayCerebro, **kw)
    assert replay["engine"] == "replay" and len(full["trades"]) >= 10
    (full_class, full_reads), (replay_class, replay_reads) = Reads.seen
    assert full_class is Reads and replay_class is Reads
    replay_reads, full_reads = np.array(replay_reads), np.array(full_reads)
    assert np.array_equal(replay_reads[:, :6], full_reads[:, :6])  # positions and lengths
    # the lines: the feed's exactly, the SMA (numpy's sums against Backtrader's) to a few ulps
    np.testing.assert_allclose(replay_reads[:, 6:], full_reads[:, 6:], rtol=1e-12, atol=0, equal_nan=True)
    assert np.array_equal(replay_reads[:, 8:], full_reads[:, 8:])


def test_the_replay_makes_orders_as_backtrader_does(candles):
    """Every kind of order the replay's broker makes has the state ``BuyOrder(...)`` /
    ``SellOrder(...)`` gives it (apart from its parameters, also kept as attributes)."""
    from distillbt.surrogate.replay import _new_order, _notify_snapshot

    kinds = [dict(), dict(price=101.0, exectype=bt.Order.Limit), dict(price=99.0, exectype=bt.Order.Stop, valid=0),
             dict(price=99.0, pricelimit=98.5, exectype=bt.Order.StopLimit, valid=datetime.timedelta(hours=3)),
             dict(exectype=bt.Order.StopTrail, trailpercent=0.02), dict(exectype=bt.Order.StopTrailLimit,
                                                                       trailamount=1.5, pricelimit=0.5),
             dict(price=100.0, exectype=bt.Order.Limit, valid=datetime.datetime(2030, 1, 1), transmit=False),
             dict(valid=bt.Order.DAY, tradeid=3, histnotify=True)]
    compared = []

    class Orders(bt.Strategy):
        def next(self):
            if len(self) != 30:
                return
            for cls in (bt.BuyOrder, bt.SellOrder):
                for kind in kinds:
                    given = dict(owner=self, data=self.data, size=2.5, **kind)
                    stock, quick = cls(**given), _new_order(cls, given)
                    compared.append((_order_state(stock), _order_state(quick), quick))

    run_backtest(Orders, candles, start=candles.frame.index[100], warmup_bars=0)
    assert len(compared) == 2 * len(kinds)
    # ... and the copy a notification carries is Order.clone's
    for _, _, order in compared:
        order.executed.add(None, 1.0, 100.0)  # an execution bit, pending until a notification
        twin = copy.copy(order)
        twin.executed = copy.copy(order.executed)
        snapshots = collections.deque()
        _notify_snapshot(snapshots, order)
        clone = twin.clone()
        assert _order_state(snapshots[0]) == _order_state(clone)
        assert list(snapshots[0].executed.iterpending()) == list(clone.executed.iterpending())
    for stock, quick, order in compared:
        extra = {k: v for k, v in quick.items() if k not in stock}
        assert {k: v for k, v in quick.items() if k in stock} == stock
        assert all(getattr(order.params, k) is v for k, v in extra.items())  # the parameters, as attributes
        assert set(stock) <= set(quick)


def test_what_the_replay_does_not_reproduce_is_refused_by_name(candles, configs):
    with pytest.raises(NotReplayable, match="timers") as refused:
        run_backtest(configs["Timed"].strategy.cls, candles, cerebro=ReplayCerebro)
    assert isinstance(refused.value, EngineUnsupported)


def test_an_analyzer_the_replay_would_not_call_is_refused(candles):
    cerebro = ReplayCerebro(stdstats=False, preload=True, runonce=True)
    cerebro.adddata(bt.feeds.PandasData(dataname=candles.frame.iloc[:600]))
    cerebro.addstrategy(LongShortTarget)
    cerebro.addanalyzer(bt.analyzers.Returns)
    with pytest.raises(NotReplayable, match="analyzers Returns"):
        cerebro.run()


class CountingStops(bt.brokers.BackBroker):
    """A broker with its own stop fills (here Backtrader's, counted)."""

    calls = 0

    def _try_exec_stop(self, *args, **kwargs):
        type(self).calls += 1
        return super()._try_exec_stop(*args, **kwargs)


def test_a_broker_with_its_own_fills_gets_its_pass_at_every_bar(candles):
    # The replay repeats BackBroker's own comparisons to skip passes: a broker that fills
    # otherwise is asked at every bar, as in Backtrader's loop, and trades alike.
    results = {}
    for engine in (bt.Cerebro, ReplayCerebro):
        CountingStops.calls = 0
        cerebro = engine(stdstats=False, preload=True, runonce=True)
        cerebro.broker = CountingStops()
        cerebro.broker.set_checksubmit(False)
        cerebro.adddata(bt.feeds.PandasData(dataname=candles.frame.iloc[:2_000]))
        cerebro.addsizer(bt.sizers.PercentSizer, percents=95)
        cerebro.addstrategy(StopAndTarget)
        strat = cerebro.run()[0]
        results[engine] = (CountingStops.calls, strat.broker.getvalue())
    assert results[bt.Cerebro][0] > 100
    assert results[ReplayCerebro] == pytest.approx(results[bt.Cerebro], rel=1e-12)


def test_a_strategy_that_raises_in_a_replay_is_named(candles):
    with pytest.raises(StrategyRunError, match="Raises.*boom at bar 300"):
        run_backtest(Raises, candles, cerebro=ReplayCerebro)


FOLDER = '''
import backtrader as bt


class Timed(bt.Strategy):
    params = (("period", 20),)

    def __init__(self):
        self.sma = bt.ind.SMA(period=self.p.period)

    def start(self):
        self.add_timer(when=bt.timer.SESSION_START)

    def next(self):
        if not self.position and self.data.close[0] > self.sma[0]:
            self.buy()
        elif self.position and self.data.close[0] < self.sma[0]:
            self.close()


class CrossTimeExit(bt.Strategy):
    """Long on a cross up, out on the cross down or after ``hold`` bars."""

    params = (("hold", 80),)

    def __init__(self):
        self.cross = bt.ind.CrossOver(bt.ind.SMA(period=10), bt.ind.SMA(period=60))
        self.entered = None

    def next(self):
        if not self.position:
            if self.cross[0] > 0:
                self.buy()
                self.entered = len(self)
        elif self.cross[0] < 0 or len(self) - self.entered >= self.p.hold:
            self.close()
'''


@pytest.fixture(scope="module")
def configs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("replayed")
    (folder / "replayed.py").write_text(textwrap.dedent(FOLDER))
    return {c.name: c for c in discover(folder).configurations()}


def test_a_job_the_replay_refuses_runs_in_backtrader_and_says_why(candles, configs):
    config = configs["Timed"]
    job = BacktestJob(config, candles, start=candles.frame.index[1_000], warmup_bars=200)
    plain, replayed = run_many([job, BacktestJob(**{**vars(job), "cerebro": ReplayCerebro})], progress=False)
    assert plain["error"] is None and replayed["error"] is None
    assert replayed["engine"] == "backtrader" and "timers" in replayed["engine_fallback"]
    assert replayed["score"] == plain["score"]


def test_the_spot_check_catches_a_time_exit_the_episodes_never_showed(configs):
    # Episodes of 60 bars never hold 80: the time exit never acts there, and the surrogate
    # learns "out on the cross down". Its walk over the screening period holds longer; the
    # windows around its longest holds show the real strategy leaving at 80 bars.
    candles = sample_market(bars=16_000, seed=3)
    config = configs["CrossTimeExit"]
    kw = dict(train=(0, 9_000), screen=(9_000, 15_000), seed=0, base_episodes=6, length=60, progress=False,
              min_speedup=0, spot_episodes=2)
    idx = candles.frame.index
    full = run_backtest(config.strategy.cls, candles, params=config.params, start=idx[9_000], end=idx[14_999],
                        warmup_bars=600)
    blind = screen_plain([config], candles, spot_holds=0, **kw).records[0]
    assert blind["path"] == "surrogate" and blind["trust"]["trusted"]
    assert blind["trust"]["longest_hold_episodes"] < 80 < blind["trust"]["longest_hold_walk"]
    assert abs(blind["score"] - full["score"]) > 1e-3  # trusted, and wrong
    checked = screen_plain([config], candles, spot_holds=3, **kw).records[0]
    assert checked["trust"]["trusted"] is False and checked["trust"]["spot_agreement"] < 0.998
    assert checked["path"] == "replay" and checked["score"] == pytest.approx(full["score"], abs=1e-12)
    assert not math.isnan(checked["trust"]["spot_gap"])


def test_plain_replay_from_the_command_line(tmp_path, capsys):
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "replayed.py").write_text(textwrap.dedent(FOLDER))
    out = tmp_path / "result.json"
    code = cli.main(["screen", str(folder), "--sample-bars", "9000", "--plain", "replay", "--validate",
                     "--no-progress", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and "plain: replays" in printed and "plain strategies replayed: paths" in printed
    import json

    records = json.loads(out.read_text())["records"]
    paths = {r["strategy"]: r["path"] for r in records}
    # the Timed strategy's timer makes its replay fall back to Backtrader, saying why
    assert paths == {"CrossTimeExit": "replay", "Timed": "full"}
    timed = next(r for r in records if r["strategy"] == "Timed")
    assert "timers" in timed["trust"]["replay_refused"]
    for record in records:  # --validate backtests them all in Backtrader
        assert record["screen_score"] == pytest.approx(record["full_score"], abs=1e-9)
