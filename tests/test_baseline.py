"""The one full-backtest baseline: a bounded warm-up gives the whole history's score."""

from pathlib import Path

import pytest

from distillbt.backtest import run_many
from distillbt.baseline import baseline_job, warmup_bars
from distillbt.data.sample import sample_market
from distillbt.discovery import Configuration, configuration_name, discover

ROOT = Path(__file__).resolve().parents[1]
START, STOP = 7_000, 10_000


@pytest.fixture(scope="module")
def candles():
    return sample_market(bars=12_000, seed=5)


def _first_configuration_of_each_strategy():
    firsts = {}
    for config in discover(ROOT / "strategies").configurations():
        firsts.setdefault(config.strategy.name, config)
    return list(firsts.values())


def _bounded_and_whole(configs, candles):
    jobs = []
    for config in configs:
        jobs.append(baseline_job(config, candles, start=START, stop=STOP, cash=10_000.0, commission=0.001))
        jobs.append(baseline_job(config, candles, start=START, stop=STOP, cash=10_000.0, commission=0.001,
                                 warmup=START))
    results = run_many(jobs, n_jobs=2, progress=False)
    return list(zip(configs, results[::2], results[1::2]))


def test_bounded_warmup_scores_like_the_whole_history_on_every_shipped_strategy(candles):
    pairs = _bounded_and_whole(_first_configuration_of_each_strategy(), candles)
    assert len(pairs) == 10
    for config, bounded, whole in pairs:
        assert bounded["error"] is None and whole["error"] is None, config.name
        assert whole["warmup_bars"] == START
        assert bounded["warmup_bars"] == warmup_bars(config, timeframe=candles.timeframe) < START
        assert bounded["score"] == pytest.approx(whole["score"], abs=1e-9), config.name
        assert [t["entry_time"] for t in bounded["trades"]] == [t["entry_time"] for t in whole["trades"]]


def test_model_strategies_are_fitted_outside_backtrader_once_per_fit(candles):
    configs = [c for c in discover(ROOT / "strategies").configurations() if c.strategy.name == "RidgeMomentum"]
    same_fit = [c for c in configs if c.params.get("alpha") == configs[0].params.get("alpha")
                and c.params.get("lookbacks") == configs[0].params.get("lookbacks")]
    assert len(same_fit) >= 2  # rule variants of one model
    start = START + 1  # a fit no earlier test made in this process
    jobs = [baseline_job(c, candles, start=start, stop=STOP, cash=10_000.0, commission=0.001) for c in same_fit]
    assert all(job.fit_until == start for job in jobs)
    results = run_many(jobs, progress=False)
    assert results[0]["fit_seconds"] > 0
    assert all(r["fit_seconds"] == 0.0 for r in results[1:])  # the worker's fit is shared
    assert all("fitted" not in r["params"] for r in results)  # results stay plain data


def test_multi_horizon_warmup_counts_the_coarse_windows(candles):
    config = _first_configuration_of_each_strategy()[-4]  # RidgeMomentum
    assert config.strategy.name == "RidgeMomentum"
    params = {**config.params, "horizons": ("1h",)}
    coarse = Configuration(config.strategy, params, configuration_name(config.strategy.name, params))
    assert warmup_bars(coarse, timeframe=candles.timeframe) >= 4 * warmup_bars(config, timeframe=candles.timeframe)
    (_, bounded, whole), = _bounded_and_whole([coarse], candles)
    assert bounded["error"] is None and whole["error"] is None
    assert bounded["score"] == pytest.approx(whole["score"], abs=1e-9)
