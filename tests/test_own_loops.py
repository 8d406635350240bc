"""The indicators with a recursion of their own (distillbt.surrogate.own_loops): their numpy
lines against Backtrader's once() and a bar-by-bar run, warm-up NaNs included."""

from __future__ import annotations

import re

import backtrader as bt
import numpy as np
import pytest

from distillbt.backtest import NumpyFeed, feed_arrays
from distillbt.data.sample import sample_market
from distillbt.surrogate.own_lines import own_lines
from distillbt.surrogate.own_loops import LOOP_INDICATORS

from .test_own_lines import _assert_same

ind = bt.indicators


@pytest.fixture(scope="module")
def arrays():
    frame = sample_market(bars=2_500, seed=3).frame
    return feed_arrays(frame.index.asi8, frame.open, frame.high, frame.low, frame.close,
                       frame.volume)


def _strategy(make):
    return type("One", (bt.Strategy,), {"__init__": lambda self: setattr(self, "ind", make(self)),
                                        "next": lambda self: None})


def _stable(lines: dict) -> dict:
    """Names without the process-wide counter of Backtrader's LinesCoupler_<k> classes."""
    return {re.sub(r"LinesCoupler_\d+", "LinesCoupler", name): values
            for name, values in lines.items()}


CASES = {
    "psar": lambda s: ind.ParabolicSAR(),
    "psar alias, period 5, slow": lambda s: ind.PSAR(period=5, af=0.01, afmax=0.1),
    "psar fast": lambda s: ind.PSAR(af=0.05, afmax=0.5),
    "kama": lambda s: ind.KAMA(),
    "kama short": lambda s: ind.AdaptiveMovingAverage(period=10, fast=3, slow=20),
    "kama of an sma": lambda s: ind.KAMA(ind.SMA(period=5), period=8),  # the data's warm-up first
    "kama envelope": lambda s: ind.KAMAEnvelope(period=12, perc=1.5),
    "dynamic smoothing": lambda s: ind.ExponentialSmoothingDynamic(
        s.data.close, period=7,
        alpha=abs(s.data.close - s.data.open) / (s.data.high - s.data.low + 1.0)),
    "dynamic smoothing, late alpha": lambda s: ind.ExponentialSmoothingDynamic(
        s.data.close, period=4, alpha=ind.SMA(abs(s.data.close - s.data.open), period=9) / 1e4),
    "cumsum": lambda s: ind.CumSum(s.data.close - s.data.open, seed=100.0),
    "cumsum of an ema": lambda s: ind.Accum(ind.EMA(period=5) - s.data.close),
    "williams ad": lambda s: ind.WilliamsAD(),
    "laguerre rsi": lambda s: ind.LaguerreRSI(),
    "laguerre rsi alias": lambda s: ind.LRSI(gamma=0.2, period=2),
    "laguerre filter": lambda s: ind.LaguerreFilter(),
    "laguerre filter of a line": lambda s: ind.LAGF(s.data.close - s.data.open, gamma=0.7),
    "zero lag": lambda s: ind.ZeroLagIndicator(),
    "error correcting": lambda s: ind.EC(period=10, gainlimit=20),
    "zero lag, small gains": lambda s: ind.ZLInd(period=50, gainlimit=3),
    "dickson ma": lambda s: ind.DMA(),
    "pivot point": lambda s: ind.PivotPoint(),
    "fibonacci pivot point": lambda s: ind.FibonacciPivotPoint(),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_loop_is_vectorised_with_backtraders_values_and_warm_up(arrays, case):
    strategy = _strategy(CASES[case])
    ours = own_lines(strategy, {}, arrays)
    assert ours.how == "numpy", ours.reason
    theirs = own_lines(strategy, {}, arrays, prefer="backtrader")
    _assert_same(_stable(ours.lines), _stable(theirs.lines), float(np.max(np.abs(arrays["close"]))))
    main = next(v for k, v in ours.lines.items() if k == "ind" or k.startswith("ind."))
    assert np.isfinite(main[-100:]).all()  # something computed, not a line of NaN


def test_warm_up_is_each_definitions_minimum_period(arrays):
    lines = own_lines(_strategy(lambda s: ind.PSAR(period=5)), {}, arrays).lines["ind"]
    assert np.isnan(lines[:4]).all() and np.isfinite(lines[4:]).all()
    # KAMA: the efficiency ratio needs period + 1 closes; its seed is the mean of closes 1..period
    kama = own_lines(_strategy(lambda s: ind.KAMA(period=10)), {}, arrays).lines["ind"]
    assert np.isnan(kama[:10]).all()
    assert kama[10] == pytest.approx(np.mean(arrays["close"][1:11]), rel=1e-12)
    # the Laguerre stages start at 0.0 on the indicator's first bar, not the data's
    lrsi = own_lines(_strategy(lambda s: ind.LaguerreRSI(period=6)), {}, arrays).lines["ind"]
    assert np.isnan(lrsi[:5]).all()
    assert lrsi[5] == pytest.approx(5 / 7, rel=1e-12)  # stages x/2, -x/4, x/8, -x/16


def test_an_envelope_of_a_loop_falls_back_as_backtrader_leaves_its_bands_nan(arrays):
    out = own_lines(_strategy(lambda s: ind.ZLIndEnvelope()), {}, arrays)
    assert out.how == "backtrader once" and "ZLIndEnvelope" in out.reason
    assert np.isnan(out.lines["ind.top"]).all() and np.isfinite(out.lines["ind.ec"][-10:]).all()


@pytest.mark.parametrize("make", [lambda s: ind.LAGF(ind.SMA(period=4)),
                                  lambda s: ind.LRSI(ind.EMA(period=5))])
def test_a_next_only_loop_on_an_indicator_falls_back_to_backtraders_once(arrays, make):
    """Backtrader's once_via_next never advances an indicator given as data (its clock, the
    feed, is not advanced there): in a runonce backtest such a line is NaN but at the last
    bar. The fallback keeps Backtrader's values."""
    out = own_lines(_strategy(make), {}, arrays)
    assert out.how == "backtrader once" and "on an indicator" in out.reason
    assert np.isnan(out.lines["ind"][:-1]).all()


def test_every_alias_is_served():
    for alias in (ind.PSAR, ind.LRSI, ind.LAGF, ind.ZLInd, ind.EC, ind.CumSum, ind.CumulativeSum):
        assert any(issubclass(alias, k) for k in LOOP_INDICATORS), alias


class PsarKama(bt.Strategy):
    """A trend rule on PSAR and KAMA (and the other loops), recording what it reads each bar."""

    params = (("period", 10),)

    def __init__(self):
        self.psar = ind.PSAR()
        self.kama = ind.KAMA(period=self.p.period)
        self.lrsi = ind.LRSI()
        self.zl = ind.ZLInd(period=15)
        self.ad = ind.WilliamsAD()
        self.above = self.data.close > self.psar
        self.entry = bt.And(self.above, self.data.close > self.kama)
        self.seen = {name: [] for name in ("psar", "kama", "lrsi", "zl", "ad", "entry")}

    def prenext(self):
        self.next()

    def next(self):
        for name, values in self.seen.items():
            values.append(getattr(self, name)[0])


def test_a_strategy_on_psar_and_kama_is_vectorised_and_reads_the_same_in_a_real_run(arrays):
    out = own_lines(PsarKama, {"period": 10}, arrays)
    assert out.how == "numpy" and out.reason is None
    _assert_same(out.lines, own_lines(PsarKama, {"period": 10}, arrays, prefer="backtrader").lines,
                 float(np.max(np.abs(arrays["close"]))))
    cerebro = bt.Cerebro(stdstats=False, runonce=False, preload=True)  # bar by bar
    cerebro.adddata(NumpyFeed(arrays=arrays, name="data"))
    cerebro.addstrategy(PsarKama, period=10)
    seen = cerebro.run()[0].seen
    for name, values in seen.items():
        expected, line = np.asarray(values), out.lines[name]
        finite = np.isfinite(expected)
        assert np.array_equal(np.isnan(line), ~finite), name
        np.testing.assert_allclose(line[finite], expected[finite], rtol=1e-9, err_msg=name)
    assert 0 < np.nansum(out.lines["entry"]) < len(arrays["close"])
