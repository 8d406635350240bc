"""Plain strategies as people write them (issue 15): the surrogate reads the strategy's own
lines and the trade it is in; orders the fast path does not fill go to the full backtest."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from distillbt.backtest import run_backtest, run_many
from distillbt.data.sample import sample_market
from distillbt.discovery import discover
from distillbt.surrogate import PositionSurrogate, api, screen_plain
from distillbt.surrogate import model as surrogate_model
from distillbt.surrogate.trade_state import (TradeContext, TradeInputs, entered_columns, held_columns, trade_columns,
                                           trade_names)

N = 16_000
TRAIN, SCREEN = (0, 9_000), (9_000, 13_000)

STRATEGIES = '''
import backtrader as bt


class RsiNine(bt.Strategy):
    """RSI at a period and levels the indicator bank does not hold."""

    params = (("period", 9), ("low", 27.0), ("high", 63.0))

    def __init__(self):
        self.rsi = bt.ind.RSI(self.data.close, period=self.p.period, safediv=True)

    def next(self):
        if not self.position and self.rsi[0] < self.p.low:
            self.buy()
        elif self.position and self.rsi[0] > self.p.high:
            self.close()


class HoldSeven(bt.Strategy):
    """Buy an oversold RSI, out after a fixed number of bars."""

    params = (("hold", 7),)

    def __init__(self):
        self.rsi = bt.ind.RSI(self.data.close, period=14, safediv=True)
        self.entered = None

    def next(self):
        if not self.position:
            if self.rsi[0] < 35:
                self.buy()
                self.entered = len(self)
        elif len(self) - self.entered >= self.p.hold:
            self.close()


class StopTarget(bt.Strategy):
    """A cross up entered at market; out at a stop-loss or take-profit from the entry price."""

    params = (("stop", 0.01), ("take", 0.02))

    def __init__(self):
        self.cross = bt.ind.CrossOver(bt.ind.EMA(period=8), bt.ind.EMA(period=21))

    def next(self):
        if not self.position:
            if self.cross[0] > 0:
                self.buy()
        elif not -self.p.stop < self.data.close[0] / self.position.price - 1.0 < self.p.take:
            self.close()


class VolumeDigits(bt.Strategy):
    """Decides on digits of the volume, which no column shows: its episodes cannot teach it."""

    def next(self):
        digits = int(self.data.volume[0] * 1000) % 40
        if not self.position and digits == 0:
            self.buy()
        elif self.position and digits == 1:
            self.close()


class SignFlip(bt.Strategy):
    """Always in, long or short on the sign of a 3-bar momentum: close() then buy(), which
    PercentSizer sizes by the position held — the flip keeps its units; a long leg the cash
    cannot pay is dropped and the strategy, flat, buys again at the next bar."""

    def __init__(self):
        self.mom = bt.ind.Momentum(self.data.close, period=3)

    def next(self):
        wanted = (self.mom[0] > 0) - (self.mom[0] < 0)
        held = (self.position.size > 0) - (self.position.size < 0)
        if wanted and wanted != held:
            if held:
                self.close()
            (self.buy if wanted > 0 else self.sell)()


class CrossFlip(bt.Strategy):
    """Flips at each cross of two EMAs by close() then buy() or sell(): a long leg the cash
    cannot pay leaves it flat until the next cross."""

    def __init__(self):
        self.cross = bt.ind.CrossOver(bt.ind.EMA(period=3), bt.ind.EMA(period=8))

    def next(self):
        if self.cross[0] > 0:
            if self.position:
                self.close()
            self.buy()
        elif self.cross[0] < 0:
            if self.position:
                self.close()
            self.sell()


class TargetFlip(bt.Strategy):
    """The same rule by order_target_size (order_target_percent rounds to whole coins): each
    flip takes 95 % of the value again."""

    def __init__(self):
        self.mom = bt.ind.Momentum(self.data.close, period=3)

    def next(self):
        units = 0.95 * self.broker.getvalue() / self.data.close[0]
        if self.mom[0] > 0 and self.position.size <= 0:
            self.order_target_size(target=units)
        elif self.mom[0] < 0 and self.position.size >= 0:
            self.order_target_size(target=-units)


class FixedUnits(bt.Strategy):
    """Long or short 0.05 coins on the sign of a 3-bar momentum by order_target_size: every
    position holds the same units whatever the value (about half the equity at the sample
    market's prices)."""

    params = (("units", 0.05),)

    def __init__(self):
        self.mom = bt.ind.Momentum(self.data.close, period=3)

    def next(self):
        if self.mom[0] > 0 and self.position.size <= 0:
            self.order_target_size(target=self.p.units)
        elif self.mom[0] < 0 and self.position.size >= 0:
            self.order_target_size(target=-self.p.units)


class StakeCross(bt.Strategy):
    """An EMA cross bought with buy(size=stake), closed on the cross back."""

    params = (("stake", 0.03),)

    def __init__(self):
        self.cross = bt.ind.CrossOver(bt.ind.EMA(period=8), bt.ind.EMA(period=21))

    def next(self):
        if not self.position and self.cross[0] > 0:
            self.buy(size=self.p.stake)
        elif self.position and self.cross[0] < 0:
            self.close()


class StopEntry(bt.Strategy):
    """A breakout entered with a stop order above the last high."""

    def __init__(self):
        self.sma = bt.ind.SMA(period=20)

    def next(self):
        if not self.position and self.data.close[0] > self.sma[0]:
            self.buy(exectype=bt.Order.Stop, price=self.data.high[0], valid=1)
        elif self.position and self.data.close[0] < self.sma[0]:
            self.close()


class LimitEntry(bt.Strategy):
    """A dip under a rising average bought with a limit order for one bar, at the lower of
    0.2 % under the close and the bar's low (a price no rule of the fast path's follows:
    the fast path does not fill it); out after ten bars."""

    def __init__(self):
        self.sma = bt.ind.SMA(period=30)
        self.entered = self.order = None

    def notify_order(self, order):
        if not order.alive():
            self.order = None
        if order.status == order.Completed and order.isbuy():
            self.entered = len(self)

    def next(self):
        if self.order:
            self.cancel(self.order)  # a limit lives one bar
        elif not self.position and self.sma[0] > self.sma[-1]:
            self.order = self.buy(exectype=bt.Order.Limit, price=min(self.data.close[0] * 0.998, self.data.low[0]))
        elif self.position and len(self) - self.entered >= 10:
            self.order = self.close()
'''


@pytest.fixture(scope="module")
def candles():
    return sample_market(bars=N, seed=11)


@pytest.fixture(scope="module")
def configs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("people")
    (folder / "people.py").write_text(textwrap.dedent(STRATEGIES))
    return {c.strategy.name: c for c in discover(folder).configurations()}


def _full_score(candles, config):
    idx = candles.frame.index
    return run_backtest(config.strategy.cls, candles, params=config.params, start=idx[SCREEN[0]],
                        end=idx[SCREEN[1] - 1], warmup_bars=400)["score"]


@pytest.mark.parametrize("name, reads", [("RsiNine", "own:rsi"), ("HoldSeven", "trade:bars")])
def test_rules_on_own_lines_and_trade_state_are_learned_exactly(candles, configs, name, reads):
    """An RSI at levels no bank column holds is learned on the strategy's own RSI, at its exact
    levels; an N-bar time exit on the bars the trade has been held. Either way the surrogate's
    score is the full backtest's."""
    config = configs[name]
    out = screen_plain([config], candles, train=TRAIN, screen=SCREEN, seed=0, base_episodes=4, progress=False,
                       min_speedup=0)
    record = out.records[0]
    assert record["error"] is None, record["error"]
    assert record["path"] in ("surrogate", "surrogate+escalated"), record["trust"]
    assert reads in record["trust"]["features_used"], record["trust"]["features_used"]
    assert record["score"] == pytest.approx(_full_score(candles, config), abs=1e-9)


def test_a_stop_and_target_from_the_entry_price_is_learned_on_the_return_since_entry(candles, configs):
    """Of the trade columns, the exits read the return since entry alone: the highest or
    lowest close since entry separate the few recorded exits as well, and walked over the
    screening period they would exit elsewhere."""
    # every score from its surrogate: the tree is fitted whatever its held-out folds say
    out = screen_plain([configs["StopTarget"]], candles, train=TRAIN, screen=SCREEN, seed=0, base_episodes=4,
                       progress=False, min_speedup=0, spot_episodes=0, spot_holds=0, full_fallback=False)
    record = out.records[0]
    assert record["error"] is None, record["error"]
    used = record["trust"]["features_used"]
    assert [f for f in used if f.startswith("trade:")] == ["trade:ret"], used


def test_gaps_are_not_walked_for_a_configuration_its_episodes_leave_untrusted(candles, configs):
    """The threshold and rule gaps (walks of the screening period) are skipped when the
    held-out agreement already fails; ``all_signals`` walks them all the same, and the
    configuration is untrusted either way. (Every score from its surrogate: with a replay or
    full backtest after it, the folds would stop at the first that fails the agreement.)"""
    kw = dict(train=TRAIN, screen=SCREEN, seed=0, base_episodes=4, progress=False, min_speedup=0,
              full_fallback=False, escalate=False, spot_episodes=0, spot_holds=0)
    config = configs["VolumeDigits"]
    skipped = screen_plain([config], candles, **kw).records[0]["trust"]
    walked = screen_plain([config], candles, all_signals=True, **kw).records[0]["trust"]
    assert skipped["agreement"] < 0.998 and walked["agreement"] == skipped["agreement"]
    assert skipped["gaps_walked"] is False and skipped["threshold_gap"] is None and skipped["rule_gap"] is None
    assert walked["gaps_walked"] is True and walked["threshold_gap"] is not None
    assert not skipped["trusted"] and not walked["trusted"]
    assert "agreement" in skipped["failed"] and "agreement" in walked["failed"]


@pytest.mark.parametrize("replay", [True, False])
def test_orders_the_surrogate_does_not_fill_go_to_the_replay_or_the_full_backtest(candles, configs, replay):
    config = configs["StopEntry"]
    out = screen_plain([config], candles, train=TRAIN, screen=SCREEN, seed=0, base_episodes=4, progress=False,
                       min_speedup=0, replay=replay)
    record = out.records[0]
    assert record["path"] == ("replay" if replay else "full")
    assert "Stop" in record["trust"]["reason"] and "does not model" in record["trust"]["reason"]
    assert record["score"] == pytest.approx(_full_score(candles, config), abs=1e-9)


def test_replays_of_a_batch_run_dearest_first_and_each_keeps_its_own_score(candles, configs, monkeypatch):
    """Replays go to the workers in one map, by what their recordings cost a bar, the dearest
    first — those of orders the fast path does not model and those the surrogate was not
    trusted on alike — and each record still gets its own configuration's full-backtest
    score. The costs are set so that the dearest-first order is the batch's reverse
    (recording times would make the order depend on the machine)."""
    sent = []

    def run_many_recorded(jobs, **kw):
        jobs = list(jobs)
        sent.append([job.configuration.name for job in jobs])
        return run_many(jobs, **kw)

    def costs_reversed(self):
        for k, i in enumerate(self.live):
            self.seconds_per_bar[i] = float(k)  # each configuration dearer than those before it
        backtest_in_full(self)

    backtest_in_full = api.PlainSurrogates.backtest_in_full
    monkeypatch.setattr(api, "run_many", run_many_recorded)
    monkeypatch.setattr(api.PlainSurrogates, "backtest_in_full", costs_reversed)
    batch = [configs[name] for name in ("StopEntry", "RsiNine", "VolumeDigits", "HoldSeven", "LimitEntry")]
    out = screen_plain(batch, candles, train=TRAIN, screen=SCREEN, seed=0, base_episodes=4, progress=False,
                       min_speedup=0, n_jobs=2, spot_episodes=0, spot_holds=0)
    replayed = [(r, c) for r, c in zip(out.records, batch) if r["path"] == "replay"]
    assert {r["name"] for r, _ in replayed} >= {configs["StopEntry"].name, configs["VolumeDigits"].name}
    unmodelled = [r["name"] for r, _ in replayed if "does not model" in r["trust"].get("reason", "")]
    assert len(unmodelled) == 2 and len(replayed) > 2  # the two order strategies, and one not trusted
    assert sent == [[r["name"] for r, _ in reversed(replayed)]]  # one map, the dearest (last) first
    for record, config in replayed:
        assert record["score"] == pytest.approx(_full_score(candles, config), abs=1e-9), record["name"]


@pytest.mark.parametrize("backend", ["loky", "dask"])
def test_replays_on_workers_change_no_record(candles, configs, backend):
    """Replays on two workers (processes or a Dask cluster) give every record what the screen
    in one process gives."""
    batch = [configs[name] for name in ("StopEntry", "RsiNine", "HoldSeven", "LimitEntry")]
    kw = dict(train=TRAIN, screen=SCREEN, seed=0, base_episodes=4, progress=False, min_speedup=0)
    on_workers = screen_plain(batch, candles, n_jobs=2, backend=backend, **kw)
    serial = screen_plain(batch, candles, n_jobs=1, **kw)
    assert [(r["name"], r["path"], r["score"]) for r in on_workers.records] == \
        [(r["name"], r["path"], r["score"]) for r in serial.records]
    assert sum(r["path"] == "replay" for r in on_workers.records) >= 2
    assert on_workers.records[-1]["path"] == "replay" and on_workers.records[-1]["score"] != 0.0  # LimitEntry trades


def test_fits_and_spot_checks_on_workers_equal_those_in_this_process(candles, configs):
    """The fits and spot checks run on the worker processes (:mod:`distillbt.surrogate.
    fit_jobs`: each plans its configuration again and keeps the batch's columns) and give the
    records, trust signals and curves the screen in one process gives."""
    batch = [configs[name] for name in ("RsiNine", "HoldSeven", "LimitEntry")]
    kw = dict(train=TRAIN, screen=SCREEN, seed=0, base_episodes=4, progress=False, min_speedup=0)
    workers = screen_plain(batch, candles, n_jobs=2, **kw)
    here = screen_plain(batch, candles, n_jobs=1, **kw)
    assert any(r["path"] == "surrogate" and r["trust"].get("spot_agreement") is not None for r in here.records)

    def signals(trust):
        return {k: v for k, v in (trust or {}).items() if k not in ("seconds",)}

    for a, b in zip(workers.records, here.records):
        assert (a["name"], a["path"], a["score"]) == (b["name"], b["path"], b["score"])
        assert signals(a["trust"]) == signals(b["trust"])
    assert workers.curves.keys() == here.curves.keys()
    for name, curve in here.curves.items():
        np.testing.assert_array_equal(workers.curves[name], curve)


def test_a_spot_check_where_the_fit_ran_is_the_spot_check_after_the_fits(candles, configs, monkeypatch):
    """Without escalation each trusted surrogate is spot-checked in its fit's job, as soon as it
    is fitted; with it (none run here: 0 rounds), after every fit, in a stage of its own. The
    same windows, recordings and walks: the same signals and verdicts."""
    from distillbt.surrogate.api import PlainSurrogates

    stages = []  # what each screen sends to the workers
    on_workers = PlainSurrogates._on_workers

    def noted(self, function, jobs, configurations, desc):
        stages.append(desc)
        return on_workers(self, function, jobs, configurations, desc)

    monkeypatch.setattr(PlainSurrogates, "_on_workers", noted)
    batch = [configs[name] for name in ("RsiNine", "HoldSeven", "LimitEntry")]
    kw = dict(train=TRAIN, screen=SCREEN, seed=0, base_episodes=4, progress=False, min_speedup=0, n_jobs=2)
    where_fitted = screen_plain(batch, candles, **kw)
    assert stages == ["fits"]
    after = screen_plain(batch, candles, escalate=True, escalation_rounds=0, **kw)
    assert stages == ["fits", "fits", "spot check"]
    spot = ("spot_agreement", "spot_gap", "spot_episodes", "spot_bars", "bars_fed", "trusted", "failed")
    checked = [r for r in where_fitted.records if (r["trust"] or {}).get("spot_agreement") is not None]
    assert checked
    for a, b in zip(where_fitted.records, after.records):
        if a in checked:
            assert (a["path"], a["score"]) == (b["path"], b["score"])
            assert {k: a["trust"].get(k) for k in spot} == {k: b["trust"].get(k) for k in spot}


def test_trade_columns_follow_the_path():
    close = np.array([10.0, 11.0, 12.0, 9.0, 10.0, 10.0])
    inputs = TradeInputs(open=close - 0.5, high=close + 1.0, low=close - 1.0, close=close)
    state = np.array([0, 1, 1, 1, 0, -1])
    names = ["trade:bars", "trade:ret", "trade:peak", "trade:from_high"]
    out = trade_columns(state, inputs, names)
    entry = inputs.open[1]
    np.testing.assert_array_equal(out[:, 0], [0, 1, 2, 3, 0, 1])
    np.testing.assert_allclose(out[1:4, 1], close[1:4] / entry - 1.0, rtol=1e-6)
    np.testing.assert_allclose(out[3, 2], 12.0 / entry - 1.0, rtol=1e-6)
    np.testing.assert_allclose(out[3, 3], 9.0 / 13.0 - 1.0, rtol=1e-6)
    assert out[4].tolist() == [0, 0, 0, 0]  # flat
    np.testing.assert_allclose(out[5, 1], close[5] / inputs.open[5] - 1.0, rtol=1e-6)  # a new (short) trade


def test_the_highest_high_starts_at_the_bar_that_signalled():
    """A trailing high started where ``buy()`` is called (``self.highest = self.data.high[0]``)
    holds the signal bar's high: ``trade:from_high`` counts it, as ``trade:peak`` counts its
    close — in the training rows and in the walk's stretches alike."""
    close = np.array([10.0, 9.5, 9.8, 10.5])
    inputs = TradeInputs(open=np.array([10.0, 9.6, 9.5, 9.9]), high=np.array([12.0, 10.0, 10.2, 11.0]),
                         low=np.array([9.0, 9.2, 9.4, 9.7]), close=close)
    names = ["trade:from_high", "trade:from_low", "trade:peak"]
    out = trade_columns(np.array([0, 1, 1, 1]), inputs, names)
    np.testing.assert_allclose(out[1:, 0], close[1:] / 12.0 - 1.0, rtol=1e-6)  # the signal bar's 12
    np.testing.assert_allclose(out[1:, 1], close[1:] / 9.0 - 1.0, rtol=1e-6)  # and its 9
    walked, _ = held_columns(TradeContext.signalled(1.0, inputs.open[1], inputs, 1), inputs, 1, 4, names)
    np.testing.assert_allclose(walked, out[1:], rtol=1e-6)


def test_a_price_stored_at_the_signal_is_that_of_the_bar_before_it():
    """``trade:from_signal_low(-1)``: the close against the low of the bar before the one that
    ordered the entry (``self.stop = self.data.low[-1]`` where ``buy()`` is called; without
    ``(-1)``, that bar's own low), fixed for the trade — the period's bar before its first when the signal is there; in joined periods,
    each period's own bar before it, never the last bar of the period joined before."""
    assert trade_names(past_prices={"low": 1})[-2:] == ["trade:from_signal_low", "trade:from_signal_low(-1)"]
    assert "trade:from_signal_low(-1)" not in trade_names()
    close = np.array([10.0, 11.0, 12.0, 9.0, 10.0, 10.5, 11.0, 12.0])
    inputs = TradeInputs(open=close - 0.5, high=close + 1.0, low=close - np.arange(1.0, 9.0), close=close,
                         previous=(9.0, 10.0, 7.5, 9.5))
    names = ["trade:from_signal_low(-1)", "trade:bars"]
    out = trade_columns(np.array([0, 1, 0, 0, 0, 1, 1, 1]), inputs, names)
    np.testing.assert_allclose(out[1, 0], close[1] / 7.5 - 1.0, rtol=1e-6)  # signalled at the first bar: previous
    np.testing.assert_allclose(out[5:, 0], close[5:] / inputs.low[3] - 1.0, rtol=1e-6)  # signal at 4: bar 3's low
    at_signal = trade_columns(np.array([0, 1, 0, 0, 0, 1, 1, 1]), inputs, ["trade:from_signal_low"])[:, 0]
    np.testing.assert_allclose(at_signal[5:], close[5:] / inputs.low[4] - 1.0, rtol=1e-6)  # the signal bar's own
    assert out[2:5].tolist() == [[0, 0]] * 3
    # entered at the first bar, signalled before it: the bar before that is unknown (0, as flat)
    assert trade_columns(np.array([1, 1, 0]), inputs, names)[:, 0].tolist() == [0, 0, 0]
    walked, _ = held_columns(TradeContext.signalled(1.0, inputs.open[5], inputs, 5), inputs, 5, 8, names)
    np.testing.assert_allclose(walked, out[5:], rtol=1e-6)
    # the same prices joined after another period: a trade signalled at its first bar (row 4 of
    # the joined arrays) reads its own bar before, not the other period's last bar
    joined = TradeInputs(*(np.concatenate([getattr(inputs, k)[:4], getattr(inputs, k)[4:]])
                           for k in ("open", "high", "low", "close")),
                         previous=inputs.previous, parts=((4, (9.9, 10.1, 6.0, 10.0)),))
    signalled = TradeContext.signalled(1.0, joined.open[5], joined, 5)
    assert signalled.signal[0][2] == 6.0 and signalled.signal[1][2] == joined.low[4]
    assert TradeContext.signalled(1.0, joined.open[6], joined, 6).signal[0][2] == joined.low[4]
    assert joined.rows(slice(4, 8)).previous == (9.9, 10.1, 6.0, 10.0)
    assert joined.rows(slice(2, 8)).parts == ((2, (9.9, 10.1, 6.0, 10.0)),)


def _random_market(seed, n):
    """``(rng, inputs, signal)``: a random walk's prices (each bar opening at the close before)
    and a signal column, from ``seed``."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    inputs = TradeInputs(open=np.concatenate(([close[0]], close[:-1])), high=close * 1.004, low=close * 0.996,
                         close=close)
    return rng, inputs, rng.normal(size=n).astype(np.float32)


def _carried(decide, signal, inputs, restarts=None):
    """The positions ``decide(state, signal, bars held, return since entry)`` takes bar by bar,
    the trade state carried along (a new trade enters at the next open); at a row of
    ``restarts`` the state before it is the one given (a TradeContext inside a position)."""
    path, s, entry, held = [], 0.0, None, 0
    for t in range(len(signal)):
        given = (restarts or {}).get(t)
        if given is not None:
            inside = isinstance(given, TradeContext)
            s, entry, held = (given.state, given.price, given.bars) if inside else (given, None, 0)
        held, ret = (held + 1, inputs.close[t] / entry - 1.0) if s else (0, 0.0)
        nxt = decide(s, signal[t], held, ret)
        if nxt not in (0.0, s):
            entry, held = (inputs.open[t + 1] if t + 1 < len(signal) else np.nan), 0
        s = nxt
        path.append(s)
    return np.array(path)


def _tree_rule(model):
    return lambda s, x, bars, ret: float(model.predict(np.array([[x, bars, ret, s]], dtype=np.float32))[0])


def _fitted_on(rule, inputs, signal, names, max_depth):
    path = _carried(rule, signal, inputs)
    state = np.concatenate(([0.0], path[:-1]))
    X = np.column_stack([signal, trade_columns(state, inputs, names), state])
    model = PositionSurrogate(max_depth=max_depth, trade_names=names).fit(X, path)
    assert model.splits_on_trade() and np.array_equal(model.predict(X), path)
    return model


def test_walk_with_trade_columns_equals_a_bar_by_bar_reference():
    """A tree that enters on a signal and leaves after 5 bars or a 2 % loss, walked trade by
    trade in chunks, gives the positions a bar-by-bar loop gives."""
    n = 3_000
    rng, inputs, signal = _random_market(0, n)

    def rule(s, x, bars, ret):
        if s == 0:
            return 1.0 if x > 1.0 else 0.0
        return 0.0 if bars >= 5 or ret < -0.02 else 1.0

    model = _fitted_on(rule, inputs, signal, ("trade:bars", "trade:ret"), 6)
    other = rng.normal(size=n).astype(np.float32)
    walked = model.walk(other[:, None], trade=inputs)
    # The walk is exactly the fitted tree applied bar by bar, the trade state carried along.
    np.testing.assert_array_equal(walked, _carried(_tree_rule(model), other, inputs))
    # and the tree learned the rule from the data (its thresholds where the data put them)
    assert np.mean(walked == _carried(rule, other, inputs)) > 0.99


def test_trades_entered_at_many_rows_have_the_columns_of_each_walked_alone():
    """entered_columns (a pass over many candidate entries) gives each trade the columns
    held_columns gives it alone from its signalled context — units, stored signal prices,
    each joined period's own bar before its first, and rows past the end repeating the last."""
    rng = np.random.default_rng(5)
    n = 300
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    inputs = TradeInputs(open=close * 0.999, high=close * 1.004, low=close * 0.995, close=close,
                         units={"own:atr/c": rng.uniform(0.005, 0.02, n)}, previous=(49.0, 51.0, 48.0, 50.0),
                         parts=((120, (40.0, 42.0, 39.0, 41.0)),))
    names = trade_names(["own:atr/c"], past_prices={"high": 1, "low": 2})
    entries = np.array([1, 2, 7, 119, 120, 121, 122, 250, 290, 299])
    out = entered_columns(inputs, entries, 16, names)
    for k, entry in enumerate(entries):
        stop = min(entry + 16, n)
        alone, _ = held_columns(TradeContext.signalled(1.0, inputs.open[entry], inputs, entry), inputs, entry, stop, names)
        np.testing.assert_array_equal(out[k, :stop - entry], alone)
    assert np.isnan(inputs.bars_before([120], 2)).all()  # two bars before a period's first: unknown
    assert inputs.bars_before([120, 121], 1).tolist() == [[40.0, 42.0, 39.0, 41.0], list(inputs.bar_before(121, 1))]


@pytest.mark.parametrize("seed", [0, 1])
def test_a_long_walk_decided_many_trades_at_once_equals_one_trade_at_a_time(seed, monkeypatch):
    """Over a long walk, market entries' first rows are decided for many candidate entries in
    one pass and chained; trades that outlast those rows, reverse (long to short) or cross a
    restart go on a trade at a time. The positions equal the walk one trade at a time and the
    fitted tree applied bar by bar with the trade state carried along."""
    n = 12_000
    rng, inputs, signal = _random_market(seed, n)
    names = ("trade:bars", "trade:ret")

    def rule(s, x, bars, ret):  # long on a high signal; short on a low one, held until 60 bars
        if s == 0:
            return 1.0 if x > 1.2 else -1.0 if x < -1.6 else 0.0
        if s > 0:
            return -1.0 if x < -2.2 else 0.0 if bars >= 5 or ret < -0.01 else 1.0
        return 0.0 if bars >= 60 else -1.0

    model = _fitted_on(rule, inputs, signal, names, 8)
    other = rng.normal(size=n).astype(np.float32)
    restart = TradeContext.signalled(-1.0, inputs.open[6_000], inputs, 6_000)
    restarts = {3_000: 0.0, 6_001: held_columns(restart, inputs, 6_000, 6_001, names)[1]}
    walked = model.walk(other[:, None], trade=inputs, restarts=restarts)
    monkeypatch.setattr(surrogate_model, "_QUICK_WALK", n + 1)
    np.testing.assert_array_equal(walked, model.walk(other[:, None], trade=inputs, restarts=restarts))
    assert np.any(walked[1:] * walked[:-1] < 0)  # reversals walked
    assert trade_columns(walked, inputs, ["trade:bars"])[:, 0].max() >= 60  # and trades longer than one pass's rows
    np.testing.assert_array_equal(walked, _carried(_tree_rule(model), other, inputs, restarts))


def test_held_columns_are_the_trade_columns_of_a_held_stretch():
    """The walk's per-stretch columns (held_columns) equal trade_columns of the same path."""
    rng = np.random.default_rng(3)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.01, 200)))
    inputs = TradeInputs(open=close * 0.999, high=close * 1.003, low=close * 0.997, close=close,
                         units={"own:atr/c": np.full(200, 0.01)})
    names = trade_names(["own:atr/c"])
    state = np.r_[np.zeros(20), np.ones(180)]
    whole = trade_columns(state, inputs, names)
    context = TradeContext.signalled(1.0, inputs.open[20], inputs, 20)  # entered at 20, signalled at 19
    first, context = held_columns(context, inputs, 20, 90, names)
    second, _ = held_columns(context, inputs, 90, 200, names)
    np.testing.assert_allclose(np.vstack([first, second]), whole[20:], rtol=1e-6, atol=1e-6)


def test_a_recording_names_what_it_does_not_model_and_keeps_the_positions(candles, configs):
    """Recording is not refused for orders the fast path cannot fill: the positions and the
    episode P&L stay (successive halving reads them), ``unmodelled`` says why the surrogate
    may not use them."""
    from distillbt.distill.episodes import windows_as_episodes
    from distillbt.surrogate.recorder import record_episodes

    episodes = windows_as_episodes(candles, [3_000, 6_000], length=400, warmup=100)
    stop = record_episodes(configs["StopEntry"], episodes, [0, 1], warmup=30)
    assert "Stop" in stop["unmodelled"] and len(stop["state"]) == 2 and np.isfinite(stop["log_return"]).all()
    assert record_episodes(configs["RsiNine"], episodes, [0, 1], warmup=30)["unmodelled"] is None


@pytest.mark.parametrize("name", ["RsiNine", "HoldSeven", "StopTarget", "StopEntry", "SignFlip"])
def test_episodes_recorded_through_the_replay_equal_those_through_backtrader(candles, configs, monkeypatch, name):
    """Recording runs the strategy under the replay (its own ``next`` over precomputed lines)
    and reads the replay's sizes and values; the labels, returns and unmodelled reasons are
    those of a recording through ``bt.Cerebro``."""
    from distillbt.distill.episodes import windows_as_episodes
    from distillbt.surrogate import recorder
    from distillbt.surrogate.replay import NotReplayable, ReadTracingCerebro

    episodes = windows_as_episodes(candles, [2_000, 5_000, 8_000], length=600, warmup=100)
    replays = []

    class CountingReplay(ReadTracingCerebro):
        def run(self, *args, **kwargs):
            out = super().run(*args, **kwargs)
            replays.append(1)  # counted only once the replay ran to the end (not refused)
            return out

    monkeypatch.setattr(recorder, "ReadTracingCerebro", CountingReplay)
    via_replay = recorder.record_episodes(configs[name], episodes, [0, 1, 2], warmup=60)
    assert replays, "the recording did not run through the replay"

    refusals = []

    class Refusing(ReadTracingCerebro):
        def run(self, *args, **kwargs):
            refusals.append(1)
            raise NotReplayable("forced: record through bt.Cerebro")

    monkeypatch.setattr(recorder, "ReadTracingCerebro", Refusing)
    via_cerebro = recorder.record_episodes(configs[name], episodes, [0, 1, 2], warmup=60)
    assert len(refusals) == 1  # refused on the first window, the other two go straight to Backtrader
    if name != "StopEntry":  # its orders expire unfilled: it is here for its unmodelled reason
        assert sum(int(np.sum(np.diff(s) != 0)) for s in via_cerebro["state"]) > 0, "no trades to compare"
    for a, b in zip(via_replay["state"], via_cerebro["state"]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(via_replay["target"], via_cerebro["target"]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(via_replay["log_return"], via_cerebro["log_return"], rtol=1e-9, atol=1e-12)
    assert via_replay["unmodelled"] == via_cerebro["unmodelled"]
    assert via_replay["flips"] == via_cerebro["flips"]
    # what the strategy's code read is known from the replay only (Backtrader's loop is not traced)
    assert isinstance(via_replay["reads"], dict) and via_replay["reads"] and via_cerebro["reads"] is None


@pytest.mark.parametrize("name, flips", [("SignFlip", "units"), ("TargetFlip", "value")])
def test_flips_and_dropped_openings_are_filled_as_backtrader_fills_them(candles, configs, name, flips):
    """A flip by close() then buy() keeps its units, one by order_target_size takes 95 % of
    the value again; a long leg the cash cannot pay is dropped (the strategy is flat) and
    ordered again at the next close. The recorder labels each bar with the position decided
    there (held plus pending market orders), and :func:`simulate` fed those decisions gives
    Backtrader's equity at every close."""
    import math

    from distillbt.backtest import feed_arrays, run_cerebro
    from distillbt.surrogate.recorder import PositionRecorder
    from distillbt.vectorised import simulate

    frame = candles.frame.iloc[2_000:8_000]
    arrays = feed_arrays(frame.index.asi8, *(frame[k].to_numpy() for k in ("open", "high", "low", "close", "volume")))
    strat = run_cerebro(arrays=arrays, strategy_cls=configs[name].strategy.cls, params={}, cash=10_000.0,
                        commission=0.001, timeframe=None, symbol=None, trade_from=-math.inf,
                        analyzers={"positions": (PositionRecorder, {})})
    rec = strat.analyzers.positions.get_analysis()
    kept = [k for k, _ in rec["flips"]]
    assert len(kept) > 500
    assert all(kept) if flips == "units" else not any(kept)
    decided = np.sign(rec["decided"])
    bars = {k: frame[k].to_numpy() for k in ("open", "high", "low", "close")}
    out = simulate(bars, decided, reversal=flips, reissue=True)
    if flips == "units":
        assert len(out["refused"]) > 10  # openings dropped: the case the reissue is for
        np.testing.assert_array_equal(np.sign(rec["positions"][out["refused"]]), 0.0)
        # the other sizing, or keeping the target without ordering it again, is not Backtrader's
        for other in (dict(reversal="value", reissue=True), dict(reversal="units", reissue=False)):
            assert np.max(np.abs(simulate(bars, decided, **other)["equity"] / rec["values"] - 1)) > 1e-3
    np.testing.assert_allclose(out["equity"], rec["values"], rtol=1e-9)


@pytest.mark.parametrize("name", ["SignFlip", "CrossFlip"])
def test_a_strategy_that_flips_by_close_then_buy_is_scored_on_its_surrogate(candles, configs, name):
    """The kept units and the dropped long legs, learned from decisions and filled by the
    simulation: the surrogate's score is the full backtest's. After a dropped long leg
    SignFlip, flat, buys again at the next bar (the walk's path stands); CrossFlip waits for
    the next cross (the walk restarts flat there). (Every score from its surrogate: the test
    is of the walk and its fills, whatever the trust checks say of CrossFlip's few flat runs.)"""
    out = screen_plain([configs[name]], candles, train=TRAIN, screen=SCREEN, seed=0, base_episodes=4,
                       progress=False, min_speedup=0, full_fallback=False)
    record = out.records[0]
    assert record["path"] in ("surrogate", "surrogate+escalated"), record["trust"]
    assert record["trust"]["agreement"] == 1.0, record["trust"]
    if name == "SignFlip":
        assert record["trust"]["trusted"], record["trust"]
    assert record["trust"]["refused"] > 0 and record["trust"]["refusals_unlike"] == 0
    assert record["score"] == pytest.approx(_full_score(candles, configs[name]), abs=1e-9)


@pytest.mark.parametrize("units", [0.05, 0.2])
def test_positions_of_fixed_units_are_filled_as_backtrader_fills_them(candles, configs, units):
    """order_target_size with one number of units: the recording reads the units every
    position holds, and :func:`simulate` sizing each position in those units (not as a share
    of the value) gives Backtrader's equity at every close — with 0.2 coins (about twice the
    equity at these prices) the long openings the cash cannot pay dropped as the broker drops
    them."""
    import math

    from distillbt.backtest import feed_arrays, run_cerebro
    from distillbt.surrogate.recorder import PositionRecorder, _unmodelled, fixed_units
    from distillbt.vectorised import simulate

    frame = candles.frame.iloc[2_000:8_000]
    arrays = feed_arrays(frame.index.asi8, *(frame[k].to_numpy() for k in ("open", "high", "low", "close", "volume")))
    strat = run_cerebro(arrays=arrays, strategy_cls=configs["FixedUnits"].strategy.cls, params={"units": units},
                        cash=10_000.0,
                        commission=0.001, timeframe=None, symbol=None, trade_from=-math.inf,
                        analyzers={"positions": (PositionRecorder, {})})
    rec = strat.analyzers.positions.get_analysis()
    why, flips, sizes = _unmodelled("FixedUnits", rec, None, None)
    assert why is None and flips == "units" and "sizes the fast path does not model" in sizes
    assert fixed_units(rec["opened_units"], flips) == units
    decided = np.sign(rec["decided"])
    bars = {k: frame[k].to_numpy() for k in ("open", "high", "low", "close")}
    out = simulate(bars, decided, reversal="units", reissue=True, units=units)
    if units == 0.05:
        assert len(rec["flips"]) > 500
    else:
        assert len(out["refused"]) > 100  # openings dropped: the case the cash check is for
        np.testing.assert_array_equal(np.sign(rec["positions"][out["refused"]]), 0.0)
    np.testing.assert_allclose(out["equity"], rec["values"], rtol=1e-9)
    assert set(np.round(np.abs(out["fills"]["size"]), 12)) <= {units, round(2 * units, 12)}  # an entry, a flip
    # sized as a share of the value, it is not Backtrader's run
    assert np.max(np.abs(simulate(bars, decided, reversal="units", reissue=True)["equity"] / rec["values"] - 1)) > 1e-3


@pytest.mark.parametrize("name, units", [("FixedUnits", 0.05), ("StakeCross", 0.03)])
def test_strategies_that_size_in_units_are_scored_on_their_surrogate(candles, configs, name, units):
    """order_target_size and buy(size=…): learned and filled in their units, the surrogate's
    score is the full backtest's; the record says the units. (Every score from its surrogate,
    as for SignFlip above: FixedUnits is always in, and its episodes show few moves out of
    flat; StakeCross is trusted.)"""
    out = screen_plain([configs[name]], candles, train=TRAIN, screen=SCREEN, seed=0, base_episodes=4,
                       progress=False, min_speedup=0, full_fallback=False)
    record = out.records[0]
    assert record["path"] == "surrogate" and record["trust"]["units"] == units, record["trust"]
    if name == "StakeCross":
        assert record["trust"]["trusted"], record["trust"]
    assert record["score"] == pytest.approx(_full_score(candles, configs[name]), abs=1e-9)


def test_a_surrogate_in_units_is_walked_on_another_instrument_in_those_units(candles, configs):
    """A basket (``walk_on``): the surrogate learned here, walked over another instrument's
    screening period, fills its positions in the strategy's units there too — its score
    that instrument's full backtest's."""
    other = sample_market(bars=N, seed=12)
    out = screen_plain([configs["StakeCross"]], candles, train=TRAIN, screen=SCREEN, seed=0, base_episodes=4,
                       progress=False, min_speedup=0, walk_on=[(other, SCREEN)])
    record = out.walked[0].records[0]
    assert record["path"] == "surrogate" and record["trust"]["units"] == 0.03, record["trust"]
    assert record["score"] == pytest.approx(_full_score(other, configs["StakeCross"]), abs=1e-9)


def test_a_line_the_strategy_holds_is_named_by_its_attribute():
    """``self.adx = dmi.adx`` holds one line of an indicator made in ``__init__``: the
    surrogate reads it as ``own:adx``, a line the rule reads (not an anonymous one, which
    the surrogate reads only when the held lines do not fit the decisions)."""
    import backtrader as bt

    from distillbt.surrogate.own_features import OwnFeatures

    class HoldsOneLine(bt.Strategy):
        def __init__(self):
            dmi = bt.ind.DMI(self.data, period=14)
            self.adx = dmi.adx

        def next(self):
            if not self.position and self.adx[0] > 25:
                self.buy()

    own = OwnFeatures(HoldsOneLine, {})
    assert "own:adx" in own.names and not own.anonymous("own:adx")
    assert not [n for n in own.names if n.endswith(".adx")], own.names
    assert own.anonymous(next(n for n in own.names if "plusDI" in n))
