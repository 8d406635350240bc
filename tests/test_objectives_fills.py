"""Objectives, slippage, share of equity and strategies' own sizers, on every path."""

import json
import math
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from distillbt import cli
from distillbt.backtest import BacktestJob, run_backtest, run_many
from distillbt.baseline import baseline_job
from distillbt.data.sample import sample_market
from distillbt.discovery import discover
from distillbt.errors import InputError
from distillbt.objectives import OBJECTIVES, bars_per_year, resolve
from distillbt.screen import screen

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def candles():
    return sample_market(bars=9_000, seed=3)


# -- objectives ----------------------------------------------------------------------------

def test_builtin_objectives_on_a_curve_computed_by_hand():
    equity, cash, per_year = np.array([110.0, 99.0, 121.0]), 100.0, 365.0
    r = np.array([0.1, -0.1, 22.0 / 99.0])
    score = {name: resolve(name)(equity, cash=cash, bars_per_year=per_year) for name in OBJECTIVES}
    assert score["return"] == pytest.approx(math.log(1.21))
    assert score["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(per_year))
    assert score["sortino"] == pytest.approx(r.mean() / math.sqrt(np.mean(np.minimum(r, 0) ** 2)) * math.sqrt(per_year))
    assert score["max-drawdown"] == pytest.approx(-0.1)
    assert score["profit-factor"] == pytest.approx(32.0 / 11.0)
    assert score["calmar"] == pytest.approx(math.expm1(math.log(1.21) * per_year / 3) / 0.1)
    # a ruined account is the worst under every objective; a flat one is neutral
    for name in OBJECTIVES:
        assert resolve(name)(np.array([50.0, -1.0]), cash=cash, bars_per_year=per_year) == -math.inf
    flat = {name: resolve(name)(np.full(5, 100.0), cash=cash, bars_per_year=per_year) for name in OBJECTIVES}
    assert flat == {"return": 0.0, "sharpe": 0.0, "sortino": 0.0, "calmar": 0.0, "max-drawdown": 0.0,
                    "profit-factor": 1.0}


def test_custom_objective_by_module_and_function(tmp_path, monkeypatch):
    (tmp_path / "my_losses.py").write_text(textwrap.dedent("""
        import numpy as np
        def final_gain(returns, equity):
            return float(equity[-1] - equity[0])
        def per_year(returns, equity, *, bars_per_year):
            return bars_per_year
        def not_a_number(returns, equity):
            return "good"
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert resolve("my_losses:final_gain")(np.array([120.0]), cash=100.0, bars_per_year=1.0) == 20.0
    assert resolve("my_losses:per_year")(np.array([120.0]), cash=100.0, bars_per_year=7.0) == 7.0
    with pytest.raises(InputError, match="not a number"):
        resolve("my_losses:not_a_number")(np.array([120.0]), cash=100.0, bars_per_year=1.0)
    for bad, match in (("sharp", "unknown objective"), ("no_such_module:f", "cannot import"),
                       ("my_losses:missing", "has no function")):
        with pytest.raises(InputError, match=match):
            resolve(bad)


def test_full_backtest_scores_on_the_objective(candles):
    config = next(c for c in discover(ROOT / "strategies").configurations() if c.strategy.name == "SmaCross")
    index = candles.frame.index
    result = run_backtest(config.strategy.cls, candles, params=config.params, start=index[4_000], end=index[8_999],
                          warmup_bars=500, objective="sortino")
    assert result["objective"] == "sortino"
    assert result["score"] == resolve("sortino")(result["equity"], cash=result["cash"],
                                                  bars_per_year=bars_per_year(candles.timeframe))
    assert result["log_return"] == pytest.approx(math.log(result["final_value"] / result["cash"]))


# -- slippage and share of equity ----------------------------------------------------------

def test_vectorised_model_run_matches_backtrader_with_slippage_and_fraction(candles):
    config = next(c for c in discover(ROOT / "strategies").configurations() if c.strategy.name == "LogisticDirection")
    cls, start, stop = config.strategy.cls, 6_000, 9_000
    params = {**config.params, "fraction": 0.5}
    finals = {}
    for slippage in (0.0, 0.002):
        job = baseline_job(config, candles, start=start, stop=stop, cash=10_000.0, commission=0.001,
                           slippage=slippage)
        job = BacktestJob(**{**job.__dict__, "configuration": type(config)(config.strategy, params, config.name)})
        full = run_many([job], progress=False)[0]
        assert full["error"] is None
        fitted = cls.fit_model(candles.frame, params=params, end=start)
        fast = cls.vectorised(candles, fitted, params=params, start=start, end=stop, slippage=slippage)
        assert fast["final_value"] == pytest.approx(full["final_value"], rel=1e-9)
        finals[slippage] = full["final_value"]
        if slippage:
            frame = candles.frame
            fills = fast["fills"]
            buys, sells = fills["size"] > 0, fills["size"] < 0
            opens = frame["open"].to_numpy()[fills["bar"]]
            assert np.all(fills["price"][buys] >= opens[buys]) and np.all(fills["price"][sells] <= opens[sells])
            assert np.all(fills["price"] <= frame["high"].to_numpy()[fills["bar"]] + 1e-12)
            assert np.all(fills["price"] >= frame["low"].to_numpy()[fills["bar"]] - 1e-12)
    assert finals[0.002] < finals[0.0]  # the strategy trades: slippage costs it


def test_bad_fill_options_are_one_line_errors(candles):
    for kwargs, match in (({"slippage": -0.1}, "slippage"), ({"fraction": 1.5}, "fraction"),
                          ({"objective": "best"}, "unknown objective")):
        with pytest.raises(InputError, match=match):
            screen(ROOT / "strategies", candles, progress=False, **kwargs)


# -- a plain strategy's own sizer -----------------------------------------------------------

_SIZED = '''
import backtrader as bt


class {name}(bt.Strategy):
    params = (("fast", 10), ("slow", 40))
    grid = {{"fast": [5, 10], "slow": [30, 60]}}

    def __init__(self):
        self.setsizer({sizer})
        self.cross = bt.ind.CrossOver(bt.ind.SMA(period=self.p.fast), bt.ind.SMA(period=self.p.slow))

    def next(self):
        if self.cross > 0 and not self.position:
            self.buy()
        elif self.cross < 0 and self.position:
            self.close()
'''


def test_own_sizers_are_used_in_full_mirrored_or_sent_to_full(tmp_path, candles):
    folder = tmp_path / "sized"
    folder.mkdir()
    (folder / "fixed.py").write_text(_SIZED.format(name="FixedStake", sizer="bt.sizers.FixedSize(stake=0.2)"))
    (folder / "percent.py").write_text(_SIZED.format(name="HalfEquity", sizer="bt.sizers.PercentSizer(percents=50)"))
    # a sizer of its own class, its units neither fixed nor a share the screen knows
    (folder / "halves.py").write_text(_SIZED.format(name="OwnHalves", sizer="Halves()") + textwrap.dedent("""

        class Halves(bt.sizers.PercentSizer):
            params = (("percents", 50),)
        """))
    fixed = next(c for c in discover(folder).configurations() if c.strategy.name == "FixedStake")
    index = candles.frame.index
    result = run_backtest(fixed.strategy.cls, candles, params=fixed.params, start=index[5_000], end=index[8_000],
                          warmup_bars=200)
    assert result["own_sizer"] and result["sizer"] == {"class": "FixedSize", "params": {"stake": 0.2, "tranches": 1}}
    assert result["trades"] and all(abs(t["size"]) == 0.2 for t in result["trades"])

    out = screen(folder, candles, progress=False, min_speedup=0, validate=True, top=2, slippage=0.001)
    by_strategy = {}
    for record in out.records:
        by_strategy.setdefault(record.strategy, []).append(record)
    for record in by_strategy["FixedStake"]:
        # every position 0.2 coins: the surrogate sizes them so (with the slippage)
        assert record.path.startswith("surrogate") and record.trust["units"] == 0.2
        assert record.full_score is not None and record.screen_score == pytest.approx(record.full_score, abs=1e-9)
    for record in by_strategy["OwnHalves"]:  # not modelled by the surrogate: replayed, exactly
        assert record.path == "replay" and "own sizer Halves" in record.trust["reason"]
        assert record.full_score is not None and record.screen_score == pytest.approx(record.full_score, abs=1e-9)
    for record in by_strategy["HalfEquity"]:
        assert record.path.startswith("surrogate")
        assert record.screen_score == pytest.approx(record.full_score, abs=0.02)


def test_units_a_rounding_sizer_gave_alike_by_chance_are_no_fixed_size():
    """Every recorded position of 3 units under ``PercentSizerInt`` (``retint``): the same
    units by chance of the prices, not a fixed size — sent to its replay, saying why; under
    ``FixedSize`` they are one."""
    from types import SimpleNamespace

    from distillbt.surrogate.api import PlainSurrogates
    from distillbt.surrogate.recorder import fixed_units

    for sizer, params, mirrored in (("PercentSizerInt", {"percents": 50, "retint": True}, False),
                                    ("FixedSize", {"stake": 3, "tranches": 1}, True)):
        own = {"class": sizer, "params": params}
        units = fixed_units([3.0, 3.0, 3.0], None, own)  # what the recording reads of them
        assert units == (3.0 if mirrored else None)
        batch = SimpleNamespace(records=[{}], fractions={}, models={})
        rec = {"own_sizer": own, "units": units, "episodes": [0, 1], "bars_fed": 800}
        assert PlainSurrogates._sizing_mirrored(batch, 0, rec) is mirrored
        assert mirrored or "own sizer PercentSizerInt" in batch.records[0]["trust"]["reason"]


# -- through the command line ---------------------------------------------------------------

def test_cli_scores_screen_full_and_holdout_on_the_objective(tmp_path, capsys):
    folder = tmp_path / "strategies"
    folder.mkdir()
    for name in ("sma_cross.py", "logistic_direction.py"):
        shutil.copy(ROOT / "strategies" / name, folder / name)
    out = tmp_path / "result.json"
    code = cli.main(["screen", str(folder), "--sample-bars", "9000", "--objective", "max-drawdown", "--validate",
                     "--top", "2", "--slippage", "0.0005", "--fraction", "0.5", "--no-progress", "--out", str(out),
                     "--jobs", "2"])
    printed = capsys.readouterr().out
    assert code == 0 and "max-drawdown" in printed
    result = json.loads(out.read_text())
    summary, records = result["summary"], result["records"]
    assert summary["objective"] == "max-drawdown" and summary["slippage"] == 0.0005 and summary["fraction"] == 0.5
    scored = [r for r in records if r["screen_score"] is not None]
    assert all(-1 <= r["screen_score"] <= 0 and -1 <= r["full_score"] <= 0 for r in scored)
    assert summary["spearman"] > 0.8
    # the survivors' holdout scores are the objective of a full backtest with the same options
    survivor = next(r for r in records if r["survivor"])
    config = next(c for c in discover(folder).configurations() if c.name == survivor["name"])
    candles = sample_market(bars=9000, seed=7, timeframe="15m")
    index = candles.frame.index
    first = int(index.searchsorted(pd.Timestamp(summary["periods"]["holdout"]["first"])))
    if config.strategy.name == "LogisticDirection":
        config = type(config)(config.strategy, {**config.params, "fraction": 0.5}, config.name)
    job = baseline_job(config, candles, start=first, stop=len(index), cash=10_000.0, commission=0.001,
                       objective="max-drawdown", slippage=0.0005, fraction=0.5)
    assert run_many([job], progress=False)[0]["score"] == pytest.approx(survivor["holdout_score"], abs=1e-12)


def test_cli_unknown_objective_exits_2_with_one_line(tmp_path, capsys):
    code = cli.main(["screen", str(ROOT / "strategies"), "--sample-bars", "3000", "--objective", "sharp",
                     "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "unknown objective" in err[0]
