"""A plain strategy's own indicator lines without the bar loop (distillbt.surrogate.own_lines):
numpy against Backtrader's own values, Backtrader's once() where numpy has no definition."""

from __future__ import annotations

import sys

import backtrader as bt
import numpy as np
import pytest

from distillbt.backtest import NumpyFeed, feed_arrays
from distillbt.data.sample import sample_market
from distillbt.errors import InputError
from distillbt.surrogate.own_lines import backtrader_lines, own_lines, strategy_graph


@pytest.fixture(scope="module")
def arrays():
    frame = sample_market(bars=2_500, seed=3).frame
    return feed_arrays(frame.index.asi8, frame.open, frame.high, frame.low, frame.close, frame.volume)


class Authors(bt.Strategy):
    """The indicators strategy authors use, their line arithmetic and Backtrader's functions."""

    params = dict(period=14, fast=10, slow=30)

    def __init__(self):
        ind = bt.indicators
        self.sma, self.ema = ind.SMA(period=self.p.slow), ind.EMA(period=self.p.fast)
        self.wma, self.smma = ind.WMA(period=10), ind.SMMA(period=10)
        self.dema, self.tema, self.hma = ind.DEMA(period=10), ind.TEMA(period=10), ind.HMA(period=16)
        self.rsi = ind.RSI(period=self.p.period)
        self.stoch, self.stoch_fast, self.stoch_full = ind.Stochastic(), ind.StochasticFast(), ind.StochasticFull()
        self.macd, self.histo = ind.MACD(), ind.MACDHisto()
        self.atr, self.true_range = ind.ATR(), ind.TrueRange()
        self.adx, self.dmi = ind.ADX(), ind.DMI()
        self.bands, self.cci, self.williams = ind.BollingerBands(), ind.CCI(), ind.WilliamsR()
        self.roc, self.momentum = ind.ROC(), ind.Momentum()
        self.highest, self.lowest = ind.Highest(self.data.high, period=20), ind.Lowest(self.data.low, period=20)
        self.aroon, self.envelope, self.deviation = ind.AroonUpDown(), ind.Envelope(), ind.StdDev()
        self.ultimate = ind.UltimateOscillator()
        self.cross = ind.CrossOver(self.ema, self.sma)
        self.slope = self.sma - self.sma(-5)
        self.entry = bt.And(self.rsi < 30, self.data.close > self.sma)
        self.either = bt.Or(self.cross > 0, self.williams < -80)
        self.pick = bt.If(self.rsi > 50, self.sma, self.ema)
        self.top = bt.Max(self.sma, self.ema, self.wma)
        self.ratio = bt.DivByZero(self.momentum, self.atr, zero=0.0)
        self.below = -abs(self.data.close - self.bands.bot)

    def next(self):
        pass


def _assert_same(ours: dict, theirs: dict, price_scale: float):
    """Same warm-up (NaN) bars; values to 1e-9 relative or 1e-12 of the price scale: numpy's
    window sums are within an ulp of Backtrader's math.fsum, and Backtrader's own formulas
    (a variance as mean(x²) − mean(x)² of prices near 1e4) turn an ulp of a 1e8 sum into
    ~1e-9 of a band distance."""
    assert set(ours) == set(theirs)
    for name, expected in theirs.items():
        got = ours[name]
        assert np.array_equal(np.isnan(got), np.isnan(expected)), f"{name}: warm-up differs"
        finite = np.isfinite(expected)
        np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-9, atol=1e-12 * price_scale,
                                   err_msg=name)


def test_every_line_of_the_authors_indicators_is_vectorised_with_backtraders_values(arrays):
    out = own_lines(Authors, {"period": 9}, arrays)
    assert out.how == "numpy" and out.reason is None
    named = {name for name in out.lines if "/" not in name}
    assert {"rsi", "stoch.percK", "stoch.percD", "stoch_full.percDSlow", "macd.signal", "histo.histo", "adx",
            "dmi.plusDI", "bands.top", "aroon.aroonup", "envelope.top", "ultimate", "cross", "slope", "entry",
            "either", "pick", "top", "ratio", "below"} <= named
    _assert_same(out.lines, backtrader_lines(strategy_graph(Authors, {"period": 9}, arrays)),
                 float(np.max(np.abs(arrays["close"]))))
    # what the rule reads is not constant: the comparison lines do switch
    assert 0 < np.nansum(out.lines["either"]) < len(arrays["close"])


class _Reads(bt.Strategy):
    """Records, bar by bar in a real run, what the strategy's lines hold at each bar."""

    params = dict(psar=False)

    def __init__(self):
        self.rsi = bt.indicators.RSI(period=9)
        self.k = bt.indicators.Stochastic().percK
        self.adx = bt.indicators.ADX()
        self.cross = bt.indicators.CrossOver(self.data.close, bt.indicators.EMA(period=20))
        self.seen = {"rsi": [], "k": [], "adx": [], "cross": []}
        if self.p.psar:
            self.psar = bt.indicators.PSAR()
            self.seen["psar"] = []

    def prenext(self):
        self.next()

    def next(self):
        for name in self.seen:
            self.seen[name].append(getattr(self, name)[0])


@pytest.mark.parametrize("psar", [False, True])
def test_the_lines_are_what_the_strategy_reads_in_a_real_run(arrays, psar):
    cerebro = bt.Cerebro(stdstats=False, runonce=False, preload=True)  # bar by bar
    cerebro.adddata(NumpyFeed(arrays=arrays, name="data"))
    cerebro.addstrategy(_Reads, psar=psar)
    seen = cerebro.run()[0].seen
    out = own_lines(_Reads, {"psar": psar}, arrays)
    assert out.how == "numpy"  # ParabolicSAR's loop too (own_loops)
    for name, values in seen.items():
        expected = np.asarray(values)
        line = out.lines[name]
        finite = np.isfinite(expected)
        assert np.array_equal(np.isnan(line), np.isnan(expected)), name
        np.testing.assert_allclose(line[finite], expected[finite], rtol=1e-9, err_msg=name)


class _Custom(bt.Indicator):
    lines = ("level",)
    params = (("period", 5),)

    def __init__(self):
        self.addminperiod(self.p.period)

    def next(self):
        self.lines.level[0] = max(self.data.close.get(size=self.p.period)) - self.data.close[0]


class UsesCustom(bt.Strategy):
    def __init__(self):
        self.gap = _Custom(period=7)
        self.signal = self.gap > 10


class Broken(bt.Strategy):
    def __init__(self):
        raise RuntimeError("no data for you")


def test_a_custom_indicator_falls_back_to_backtraders_once_and_a_failing_init_is_named(arrays):
    out = own_lines(UsesCustom, {}, arrays)
    assert out.how == "backtrader once" and "_Custom" in out.reason
    assert set(out.lines) == {"gap", "signal"}
    assert np.isnan(out.lines["gap"][:6]).all() and np.isfinite(out.lines["gap"][6:]).all()
    close = arrays["close"]
    assert out.lines["gap"][100] == pytest.approx(close[94:101].max() - close[100])
    with pytest.raises(InputError, match=r"^Broken: building its indicators failed: RuntimeError: no data for you"):
        own_lines(Broken, {}, arrays)



class _WindowIndex(bt.Strategy):
    """Where a window's highest or lowest value sits (Aroon's building blocks), on a line with
    many ties (prices rounded to tens)."""

    def __init__(self):
        ind = bt.indicators.basicops
        coarse = self.data.close // 10 * 10
        for kind in (ind.FindFirstIndexHighest, ind.FindFirstIndexLowest, ind.FindLastIndexHighest,
                     ind.FindLastIndexLowest):
            setattr(self, kind.__name__, kind(coarse, period=25))

    def next(self):
        pass


def test_where_a_windows_extreme_sits_is_backtraders_with_ties(arrays):
    out = own_lines(_WindowIndex, {}, arrays)
    assert out.how == "numpy"
    theirs = backtrader_lines(strategy_graph(_WindowIndex, {}, arrays))
    for name in ("FindFirstIndexHighest", "FindFirstIndexLowest", "FindLastIndexHighest", "FindLastIndexLowest"):
        assert np.array_equal(out.lines[name], theirs[name], equal_nan=True), name
    # ties do occur: the first and the last place of the highest differ on many bars
    assert np.sum(out.lines["FindFirstIndexHighest"] != out.lines["FindLastIndexHighest"]) > 100


class _Smoothers(bt.Strategy):
    """The exponential smoothings (ExponentialSmoothing's seed and recursion) and what is built
    on them."""

    def __init__(self):
        ind = bt.indicators
        self.ema, self.smma = ind.EMA(period=20), ind.SMMA(period=14)
        self.rsi, self.atr, self.macd = ind.RSI(period=9), ind.ATR(period=14), ind.MACD()
        self.ema_of_rsi = ind.EMA(self.rsi, period=5)  # an input with its own warm-up


@pytest.mark.parametrize("scipy_loaded", [True, False])
def test_the_smoothings_are_backtraders_floats_bit_for_bit(arrays, monkeypatch, scipy_loaded):
    # lfilter in a process that has scipy.signal, the loop in one that has not (a worker):
    # either way Backtrader's own floats, so a rule's comparison at a threshold decides alike
    import scipy.signal  # noqa: F401 - loaded, or hidden below

    if not scipy_loaded:
        monkeypatch.delitem(sys.modules, "scipy.signal")
    out = own_lines(_Smoothers, {}, arrays)
    theirs = backtrader_lines(strategy_graph(_Smoothers, {}, arrays))
    assert out.how == "numpy"
    for name in ("ema", "smma", "rsi", "atr", "macd.macd", "macd.signal", "ema_of_rsi"):
        np.testing.assert_array_equal(out.lines[name], theirs[name], err_msg=name)


class _Ties(bt.Strategy):
    """Crosses of lines that are often equal (the 5-bar high against itself a bar earlier: 0
    while the high holds): Backtrader's NonZeroDifference carries the last difference that was
    not 0 through the ties."""

    def __init__(self):
        self.high5 = bt.indicators.Highest(self.data.high, period=5)
        self.cross = bt.indicators.CrossOver(self.high5, self.high5(-1))
        self.up = bt.indicators.CrossUp(self.high5(-1), self.high5)


def test_a_cross_through_ties_is_backtraders(arrays):
    out = own_lines(_Ties, {}, arrays)
    assert out.how == "numpy"
    theirs = backtrader_lines(strategy_graph(_Ties, {}, arrays))
    assert set(out.lines) == set(theirs)
    for name, expected in theirs.items():
        assert np.array_equal(out.lines[name], expected, equal_nan=True), name
    high5 = out.lines["high5"]
    assert np.sum(high5[1:] == high5[:-1]) > 1_000  # ties, many
    assert np.count_nonzero(np.nan_to_num(out.lines["cross"])) > 100
