"""Full Backtrader backtests: the numpy feed, run_backtest, warm-up and run_many."""

import datetime as dt
import math
import textwrap
from pathlib import Path

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

from distillbt.backtest import (
    BacktestJob,
    NumpyFeed,
    StrategyRunError,
    _bt_datenums,
    run_backtest,
    run_many,
)
from distillbt.data.candles import validate_candles
from distillbt.data.sample import sample_market
from distillbt.discovery import discover, load_strategy_file
from distillbt.errors import InputError

from .strategy_sources import IMPORT, sma_cross

REPO = Path(__file__).resolve().parents[1]
SmaCross = load_strategy_file(REPO / "strategies" / "sma_cross.py").SmaCross
RsiReversion = load_strategy_file(REPO / "strategies" / "rsi_reversion.py").RsiReversion
DonchianBreakout = load_strategy_file(REPO / "strategies" / "donchian_breakout.py").DonchianBreakout


@pytest.fixture(scope="module")
def candles():
    return sample_market(bars=2_000, seed=11)


class UpBars(bt.Strategy):
    """Decides from the current bar alone: long after an up bar, flat after a down bar."""

    def next(self):
        if not self.position and self.data.close[0] > self.data.open[0]:
            self.buy()
        elif self.position and self.data.close[0] < self.data.open[0]:
            self.close()


class BuyAtOnce(bt.Strategy):
    seen = []

    def start(self):
        BuyAtOnce.seen.append(self.distillbt_trade_from)

    def next(self):
        if not self.position:
            self.buy()


class Exploding(bt.Strategy):
    params = (("when", 5),)

    def next(self):
        if len(self) == self.p.when:
            raise ValueError("bad value\nsecond line")


class OutOfRange(bt.Strategy):
    def next(self):
        [][len(self)]


class StochasticNoSafediv(bt.Strategy):
    def __init__(self):
        self.k = bt.indicators.Stochastic(self.data)


def _cerebro(feed, strategy, **params):
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.setcash(10_000)
    cerebro.broker.setcommission(commission=0.001)
    cerebro.broker.set_checksubmit(False)
    cerebro.addsizer(bt.sizers.PercentSizer, percents=95)
    cerebro.adddata(feed)
    cerebro.addstrategy(strategy, **params)
    cerebro.addanalyzer(bt.analyzers.TradeAnalyzer, _name="ta")
    return cerebro


@pytest.mark.parametrize("strategy, params", [
    (SmaCross, {"fast": 10, "slow": 30}),
    (RsiReversion, {"period": 7, "low": 30, "high": 60}),
    (DonchianBreakout, {"entry_period": 20, "exit_period": 10}),
])
def test_final_value_equals_a_hand_built_cerebro(candles, strategy, params):
    cerebro = _cerebro(bt.feeds.PandasData(dataname=candles.frame), strategy, **params)
    reference = cerebro.run()[0]
    result = run_backtest(strategy, candles, params=params)
    assert result["final_value"] == pytest.approx(cerebro.broker.getvalue(), rel=0, abs=1e-9)
    assert result["score"] == pytest.approx(math.log(cerebro.broker.getvalue() / 10_000))
    analysis = reference.analyzers.ta.get_analysis()
    closed = analysis.get("total", {}).get("closed", 0)
    assert result["n_trades"] == len(result["trades"]) == closed > 0
    assert sum(t["pnl"] for t in result["trades"]) == pytest.approx(analysis.pnl.net.total)


def test_trade_records_add_up(candles):
    result = run_backtest(SmaCross, candles, params={"fast": 5, "slow": 20})
    for trade in result["trades"]:
        size, entry, exit_ = trade["size"], trade["entry_price"], trade["exit_price"]
        expected = size * (exit_ - entry) - 0.001 * abs(size) * (entry + exit_)
        assert trade["pnl"] == pytest.approx(expected, rel=1e-9)
        assert trade["entry_time"] < trade["exit_time"]
        # Backtrader averages the entry price ((0·p + s·p) / s): equal to the open to an ulp.
        assert trade["entry_price"] == pytest.approx(
            candles.frame.loc[trade["entry_time"], "open"], rel=1e-14)
        assert trade["exit_price"] == pytest.approx(
            candles.frame.loc[trade["exit_time"], "open"], rel=1e-14)
    assert set(result) >= {"total_return_pct", "cagr_pct", "sharpe", "sortino",
                           "max_drawdown_pct", "win_rate_pct", "profit_factor", "exposure_pct"}
    assert len(result["equity"]) == len(result["times"]) == len(result["positions"]) == 2_000
    assert result["equity"][0] == 10_000  # orders placed at a close fill at the next open
    assert result["exposure_pct"] == pytest.approx(100 * np.mean(result["positions"] != 0))


def test_numpy_feed_is_a_drop_in_for_pandas_data(candles):
    values, datetimes = [], []
    for feed, kwargs in [(bt.feeds.PandasData(dataname=candles.frame), {}),
                         (NumpyFeed.from_candles(candles), {}),
                         (NumpyFeed.from_candles(candles), {"runonce": False}),
                         (NumpyFeed.from_candles(candles), {"preload": False, "runonce": False})]:
        cerebro = _cerebro(feed, SmaCross, fast=10, slow=30)
        strat = cerebro.run(**kwargs)[0]
        values.append(cerebro.broker.getvalue())
        datetimes.append(np.asarray(strat.data.datetime.array))
    assert values[0] == values[1] == values[2] == values[3]
    assert np.array_equal(datetimes[0], datetimes[1])  # bit-identical day numbers


def test_day_numbers_are_bit_identical_to_date2num():
    rng = np.random.default_rng(0)
    lo, hi = pd.Timestamp("1700-01-01").value, pd.Timestamp("2250-01-01").value
    ns = np.sort(rng.integers(lo, hi, 5_000)) // 1000 * 1000  # microsecond resolution
    ns[:3] = [0, 86_400 * 10**9 - 1000, pd.Timestamp("2024-02-29 23:59:59.999999").value]
    expected = [bt.date2num(dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(n // 1000)))
                for n in ns]
    assert np.array_equal(_bt_datenums(ns), np.array(expected))


def test_a_strategy_that_raises_gives_one_line(candles):
    with pytest.raises(StrategyRunError) as info:
        run_backtest(Exploding, candles, params={"when": 7})
    assert str(info.value) == "Exploding(when=7): ValueError: bad value"
    assert isinstance(info.value.__cause__, ValueError)


def test_flat_candles_break_an_indicator_into_a_typed_error():
    times = pd.date_range("2024-01-01", periods=300, freq="1h", tz="UTC")
    frame = pd.DataFrame({c: 100.0 for c in ("open", "high", "low", "close")}, index=times)
    frame["volume"] = 0.0
    flat = validate_candles(frame, symbol="FLAT/USD", source="test")
    with pytest.raises(StrategyRunError, match=r"^StochasticNoSafediv: ZeroDivisionError"):
        run_backtest(StochasticNoSafediv, flat)


def test_warm_up_scores_like_a_run_on_the_period_alone(candles):
    start = candles.frame.index[1000]
    warm = run_backtest(UpBars, candles, start=start, warmup_bars=200)
    alone = run_backtest(UpBars, _slice(candles, 1000))
    assert warm["warmup_bars"] == 200 and warm["bars"] == alone["bars"] == 1000
    assert warm["start"] == start and warm["equity"][0] == 10_000
    assert warm["final_value"] == alone["final_value"]
    assert np.array_equal(warm["equity"], alone["equity"])
    assert warm["trades"] == alone["trades"]


def test_warm_up_makes_indicators_ready_at_start(candles):
    start = candles.frame.index[1000]
    params = {"fast": 5, "slow": 100}
    warm = run_backtest(SmaCross, candles, params=params, start=start, warmup_bars=100)
    longer = run_backtest(SmaCross, candles, params=params, start=start, warmup_bars=1000)
    cold = run_backtest(SmaCross, _slice(candles, 1000), params=params)
    # 100 bars make the slow SMA exact at start: more warm-up changes nothing.
    assert warm["trades"] == longer["trades"] and warm["final_value"] == longer["final_value"]
    assert all(t["entry_time"] > start for t in warm["trades"])
    # Without warm-up the first 100 bars are spent filling the SMA: the runs differ.
    assert cold["trades"][0]["entry_time"] > candles.frame.index[1100]
    assert cold["trades"] != warm["trades"]


def test_no_order_fills_before_start(candles):
    BuyAtOnce.seen.clear()
    start, end = candles.frame.index[500], candles.frame.index[599]
    result = run_backtest(BuyAtOnce, candles, start=start, end=end, warmup_bars=50)
    assert BuyAtOnce.seen == [start]
    assert result["bars"] == 100 and result["end"] == end  # end is inclusive
    assert result["positions"][0] == 0 and result["positions"][1] > 0
    first = result["trades"] or [None]
    assert result["n_trades"] == 0 and first == [None]  # still holding: marked to the close
    assert result["final_value"] == result["equity"][-1]


def test_a_feed_shorter_than_an_indicator_period_still_runs(candles):
    # Backtrader's vectorised SMA raises IndexError on a feed shorter than its period;
    # run_backtest falls back to bar-by-bar mode for that case only.
    result = run_backtest(SmaCross, _slice(candles, 1960), params={"fast": 10, "slow": 50})
    assert result["bars"] == 40 and result["n_trades"] == 0 and result["final_value"] == 10_000
    with pytest.raises(StrategyRunError, match="IndexError"):
        run_backtest(OutOfRange, candles)


def test_warm_up_is_limited_by_the_candles_available(candles):
    result = run_backtest(UpBars, candles, start=candles.frame.index[10], warmup_bars=100,
                          record_equity=False)
    assert result["warmup_bars"] == 10
    assert result["equity"] is None and result["times"] is None and result["positions"] is None
    assert not math.isnan(result["sharpe"])


@pytest.mark.parametrize("kwargs, message", [
    ({"params": {"fsat": 3}}, "SmaCross has no parameter 'fsat'"),
    ({"start": "2031-01-01"}, "no candles between"),
    ({"cash": 0}, "cash must be a positive"),
    ({"warmup_bars": -1}, "warmup_bars must be"),
    ({"start": "not a time"}, "start is not a timestamp"),
])
def test_bad_arguments(candles, kwargs, message):
    with pytest.raises(InputError, match=message):
        run_backtest(SmaCross, candles, **kwargs)


FOLDER_FILES = {
    "sma.py": IMPORT + sma_cross("Sma", fast=5, slow=20, grid={"fast": [5, 10], "slow": [20, 40]}),
    "boom.py": """
        import backtrader as bt

        class Boom(bt.Strategy):
            def next(self):
                if len(self) == 3:
                    1 / 0
        """,
}


def test_run_many_parallel_equals_sequential_and_reports_errors(tmp_path, candles):
    for name, text in FOLDER_FILES.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    configs = discover(tmp_path).configurations()
    assert [c.name for c in configs][0] == "Boom"
    jobs = [BacktestJob(c, candles, start=candles.frame.index[100], warmup_bars=50)
            for c in configs]
    sequential = run_many(jobs, n_jobs=1, progress=False)
    parallel = run_many(jobs, n_jobs=2, progress=False)  # workers import the files by path

    boom, *good = sequential
    assert boom["error"] == "Boom: ZeroDivisionError: division by zero"
    assert boom["error_type"] == "StrategyRunError" and "score" not in boom
    assert [r["name"] for r in good] == [c.name for c in configs[1:]]
    assert all(r["error"] is None and r["n_trades"] > 0 for r in good)
    assert parallel[0]["error"] == boom["error"]
    for a, b in zip(good, parallel[1:]):
        assert a["name"] == b["name"] and a["final_value"] == b["final_value"]
        assert np.array_equal(a["equity"], b["equity"]) and a["trades"] == b["trades"]


def test_run_many_rejects_other_jobs(candles):
    with pytest.raises(InputError, match="BacktestJob"):
        run_many([(SmaCross, {})], progress=False)


def _slice(candles, first):
    return validate_candles(candles.frame.iloc[first:], symbol=candles.symbol,
                            source=candles.source, timeframe=candles.timeframe)
