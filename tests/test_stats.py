"""Performance statistics, the deflated Sharpe ratio and the probability of overfitting."""

import math

import numpy as np
import pandas as pd
import pytest

from distillbt.errors import InputError
from distillbt.stats import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    performance_stats,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    return_summary,
)

DAYS = pd.date_range("2021-01-01", periods=5, freq="1D", tz="UTC")


def test_stats_of_a_hand_made_curve():
    # Returns +10 %, -10 %, +10 %, +10 %: mean 0.05, sample std 0.1, downside deviation
    # sqrt(0.1² / 4) = 0.05, deepest fall 110 → 99 = 10 %.
    equity = [100.0, 110.0, 99.0, 108.9, 119.79]
    stats = performance_stats(equity, DAYS, positions=[0, 1, 1, 0, 2],
                              trade_pnls=[10.0, -5.0, 20.0, -5.0])
    year = math.sqrt(365.25)
    assert stats["total_return_pct"] == pytest.approx(19.79)
    assert stats["cagr_pct"] == pytest.approx(100 * (1.1979 ** (365.25 / 4) - 1))
    assert stats["sharpe"] == pytest.approx(0.5 * year)
    assert stats["sortino"] == pytest.approx(1.0 * year)
    assert stats["max_drawdown_pct"] == pytest.approx(10.0)
    assert stats["n_trades"] == 4
    assert stats["win_rate_pct"] == pytest.approx(50.0)
    assert stats["profit_factor"] == pytest.approx(30.0 / 10.0)
    assert stats["exposure_pct"] == pytest.approx(60.0)
    assert stats["bars_per_year"] == pytest.approx(365.25)
    assert stats["kurtosis"] == pytest.approx(
        np.mean((np.array([0.05, -0.15, 0.05, 0.05])) ** 4) / 0.0075**2)


def test_annualisation_follows_the_bar_interval():
    times = pd.date_range("2021-01-01", periods=100, freq="15min", tz="UTC")
    equity = 100 * np.cumprod(1 + np.tile([0.01, -0.005], 50))
    stats = performance_stats(equity, times)
    assert stats["bars_per_year"] == pytest.approx(365.25 * 96)
    r = equity[1:] / equity[:-1] - 1
    assert stats["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(365.25 * 96))
    assert performance_stats(equity, times, bars_per_year=252)["sharpe"] == pytest.approx(
        r.mean() / r.std(ddof=1) * math.sqrt(252))


def test_undefined_statistics_are_nan():
    stats = performance_stats([100.0] * 5, DAYS)
    assert stats["total_return_pct"] == 0 and stats["max_drawdown_pct"] == 0
    for key in ("sharpe", "sortino", "win_rate_pct", "profit_factor", "exposure_pct"):
        assert math.isnan(stats[key]), key
    assert stats["n_trades"] == 0
    assert performance_stats([1.0, 2.0], DAYS[:2], trade_pnls=[3.0])["profit_factor"] == math.inf
    with pytest.raises(InputError, match="times has 4 values for 5"):
        performance_stats([1.0] * 5, DAYS[:4])


def test_dsr_reproduces_the_paper_example():
    # Bailey & López de Prado (2014): annualised SR 2.5 over 1,250 days, best of 100 trials
    # whose annualised Sharpe ratios have variance 0.5, skew -3, kurtosis 10.
    daily_sr = 2.5 / math.sqrt(250)
    assert expected_max_sharpe(0.5 / 250, 100) == pytest.approx(0.1132, abs=1e-4)
    trials = _trials(100, std=math.sqrt(0.5 / 250))
    dsr = deflated_sharpe_ratio(daily_sr, trials, 1250, -3.0, 10.0)
    assert dsr == pytest.approx(0.9004, abs=1e-3)


def test_dsr_is_monotonic():
    trials = _trials(50, std=0.05)
    by_sharpe = [deflated_sharpe_ratio(sr, trials, 500, 0.0, 3.0) for sr in (0.05, 0.1, 0.15, 0.2)]
    assert np.all(np.diff(by_sharpe) > 0)
    by_trials = [deflated_sharpe_ratio(0.15, _trials(n, std=0.05), 500) for n in (2, 10, 100, 1000)]
    assert np.all(np.diff(by_trials) < 0)
    # A single trial is not deflated: DSR = PSR against 0.
    assert deflated_sharpe_ratio(0.1, [0.1], 500) == pytest.approx(
        probabilistic_sharpe_ratio(0.1, 0.0, 500))


def test_expected_max_matches_simulation():
    rng = np.random.default_rng(0)
    simulated = rng.standard_normal((20_000, 100)).max(axis=1).mean()  # ≈ 2.508
    assert expected_max_sharpe(1.0, 100) == pytest.approx(simulated, abs=0.05)
    assert expected_max_sharpe(1.0, 1) == 0.0


def test_pbo_near_zero_when_one_configuration_dominates():
    rng = np.random.default_rng(1)
    returns = rng.normal(0.0, 0.01, size=(1600, 10))
    returns[:, 3] += 0.005  # a real edge, half a standard deviation per bar
    result = probability_of_backtest_overfitting(returns, n_splits=16)
    assert result["n_combinations"] == 12_870
    assert result["pbo"] < 0.01
    assert len(result["logits"]) == 12_870


def test_pbo_near_one_half_for_noise():
    # One matrix gives a noisy estimate (its combinations share rows); average over seeds.
    pbos = [
        probability_of_backtest_overfitting(
            np.random.default_rng(seed).normal(0.0, 0.01, size=(400, 20)), n_splits=8)["pbo"]
        for seed in range(40)
    ]
    assert np.mean(pbos) == pytest.approx(0.5, abs=0.1)


def test_pbo_samples_combinations_when_there_are_too_many():
    returns = np.random.default_rng(2).normal(size=(200, 5))
    a = probability_of_backtest_overfitting(returns, n_splits=20, max_combinations=500, seed=3)
    b = probability_of_backtest_overfitting(returns, n_splits=20, max_combinations=500, seed=3)
    assert a["n_combinations"] == 500 and a["pbo"] == b["pbo"]


@pytest.mark.parametrize("matrix, kwargs, message", [
    (np.zeros((100, 1)), {}, "N >= 2"),
    (np.zeros((100, 3)), {"n_splits": 5}, "even integer"),
    (np.zeros((10, 3)), {"n_splits": 16}, "at least 2 per split"),
    (np.full((100, 3), np.nan), {}, "NaN"),
])
def test_pbo_rejects_bad_input(matrix, kwargs, message):
    with pytest.raises(InputError, match=message):
        probability_of_backtest_overfitting(matrix, **kwargs)


def _trials(n: int, *, std: float) -> np.ndarray:
    """n Sharpe ratios with exactly the given sample standard deviation."""
    x = np.random.default_rng(n).standard_normal(n)
    return (x - x.mean()) / x.std(ddof=1) * std


def test_return_summary_keeps_what_dsr_and_pbo_need():
    rng = np.random.default_rng(3)
    equity = 100 * np.exp(np.cumsum(rng.normal(0.0005, 0.01, 5_000)))
    equity = np.concatenate([[100.0], equity])
    s = return_summary(equity, blocks=64)
    r = np.diff(np.log(equity))
    assert s["n_obs"] == len(r)
    assert s["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1))
    assert s["kurtosis"] == pytest.approx(3.0, abs=0.3)
    # block sums partition the returns: nothing lost, nothing counted twice
    assert len(s["block_returns"]) == 64
    assert s["block_returns"].sum() == pytest.approx(r.sum())
    short = return_summary(equity[:10], blocks=64)
    assert len(short["block_returns"]) == 9
