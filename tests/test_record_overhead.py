"""What a recording saves per run (one short window each) gives the same: day numbers of bars
on whole minutes from a table, graph lines made lists only when read, the replay's clocked
line classes made once per process."""

from __future__ import annotations

import datetime as dt

import backtrader as bt
import numpy as np
import pandas as pd

from distillbt.backtest import feed_arrays, run_cerebro
from distillbt.data.sample import sample_market
from distillbt.surrogate.own_lines import graph_lines, own_lines
from distillbt.surrogate.recorder import PositionRecorder
from distillbt.surrogate.replay import ReadTracingCerebro


def test_day_numbers_of_whole_minutes_are_date2num():
    rng = np.random.default_rng(1)
    lo, hi = pd.Timestamp("1700-01-01").value, pd.Timestamp("2250-01-01").value
    minute = 60 * 10**9
    ns = np.sort(rng.integers(lo, hi, 5_000)) // minute * minute
    ns[:2] = [0, 86_400 * 10**9 - minute]
    expected = [bt.date2num(dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(n // 1000))) for n in ns]
    assert np.array_equal(feed_arrays(ns, *np.ones((5, len(ns))))["datetime"], np.array(expected))


class Crossing(bt.Strategy):
    def __init__(self):
        self.macd = bt.ind.MACDHisto(self.data.close)
        self.dmi = bt.ind.DMI(self.data, period=10)

    def next(self):
        if self.macd.histo[0] > 0 and self.dmi.adx[0] > 20 and not self.position:
            self.buy()
        elif self.macd.histo[0] < 0 and self.position:
            self.close()


def _replayed(frame):
    arrays = feed_arrays(frame.index.asi8, *(frame[k].to_numpy() for k in ("open", "high", "low", "close", "volume")))
    strat = run_cerebro(cerebro_cls=ReadTracingCerebro, arrays=arrays, strategy_cls=Crossing, params={},
                        cash=10_000.0, commission=0.001, timeframe=None, symbol=None, trade_from=arrays["datetime"][200],
                        analyzers={"positions": (PositionRecorder, {})})
    return strat, arrays


def test_every_line_of_a_replayed_graph_is_its_values_as_a_list_when_read():
    frame = sample_market(bars=2_000, seed=3).frame
    strat, arrays = _replayed(frame.iloc[:611])
    expected = own_lines(Crossing, {}, arrays).lines
    lines = graph_lines(strat)
    assert len(lines) > 20
    for name, line in lines:
        values = line.array
        assert type(values) is list and all(type(v) is float for v in values)
        # an anonymous line action keeps the replay's class (named Clocked…) after the run
        np.testing.assert_array_equal(np.array(values), expected[name.replace("Clocked", "")])


def test_lines_of_an_earlier_replay_still_read_its_own_bars():
    frame = sample_market(bars=2_000, seed=3).frame
    first, arrays = _replayed(frame.iloc[:611])
    last_close, last_adx = first.data.close[0], first.dmi.adx[0]
    assert last_close == arrays["close"][-1]
    second, _ = _replayed(frame.iloc[700:1000])  # same line classes, its own clock
    assert type(second.dmi.adx) is type(first.dmi.adx)
    assert (first.data.close[0], first.dmi.adx[0], len(first.dmi.adx)) == (last_close, last_adx, 611)
    assert second.data.close[0] == frame["close"].iloc[999] and len(second.dmi.adx) == 300
