"""The embedded sample market: determinism, regime chain, candle shape, stylised facts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kurtosis, spearmanr

from distillbt.data.sample import (
    DEFAULT_MEAN_REGIME_BARS,
    DEFAULT_REGIME_SHARES,
    REGIMES,
    sample_market,
)
from distillbt.errors import InputError, UnknownTimeframeError


@pytest.fixture(scope="module")
def market():
    return sample_market(bars=400_000, seed=11)


def _log_returns(candles) -> np.ndarray:
    return np.diff(np.log(candles.frame["close"].to_numpy()))


def _share_sd(shares: dict, mean_bars: dict, bars: int) -> dict:
    """Sampling s.d. of each regime's fraction of bars (renewal-reward approximation).

    Segment k is drawn with probability ∝ share/mean and lasts a geometric number of bars, so
    the fraction in regime j is a sum over ~bars/E segments of L·(1[k=j] − share_j).
    """
    rate = {k: shares[k] / mean_bars[k] for k in REGIMES}
    total = sum(rate.values())
    mean_segment = 1 / total
    out = {}
    for j in REGIMES:
        second_moment = sum(
            rate[k] / total * (2 * mean_bars[k] ** 2 - mean_bars[k])
            * ((k == j) - shares[j]) ** 2
            for k in REGIMES
        )
        out[j] = math.sqrt(second_moment / (mean_segment * bars))
    return out


def test_same_seed_same_market_other_seed_other_market():
    a = sample_market(bars=5_000, seed=3)
    b = sample_market(bars=5_000, seed=3)
    c = sample_market(bars=5_000, seed=4)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    pd.testing.assert_series_equal(a.true_regimes, b.true_regimes)
    assert not np.allclose(a.frame["close"], c.frame["close"])


def test_default_regime_shares_within_sampling_error(market):
    observed = market.true_regimes.value_counts(normalize=True)
    sd = _share_sd(DEFAULT_REGIME_SHARES, DEFAULT_MEAN_REGIME_BARS, len(market))
    for name in REGIMES:
        assert abs(observed[name] - DEFAULT_REGIME_SHARES[name]) < 4 * sd[name], name


def test_custom_shares_and_durations_are_honoured():
    shares = {"bull": 0.1, "bear": 0.4, "sideways": 0.2, "volatile": 0.3}
    mean_bars = {"bull": 10, "bear": 40, "sideways": 20, "volatile": 5, "crash": 80}
    candles = sample_market(bars=200_000, seed=5, regime_shares=shares,
                            mean_regime_bars=mean_bars)
    regimes = candles.true_regimes
    observed = regimes.value_counts(normalize=True)
    assert observed["crash"] == 0  # left out of the shares: never occurs
    sd = _share_sd({**shares, "crash": 0.0}, mean_bars, len(candles))
    for name, share in shares.items():
        assert abs(observed[name] - share) < 4 * sd[name], name

    # A run of one regime is a geometric number of geometric segments (self-transitions are
    # allowed), so its mean length is mean_bars / (1 - probability of drawing it again).
    codes = regimes.cat.codes.to_numpy()
    starts = np.flatnonzero(np.diff(codes, prepend=-1))
    run_lengths = np.diff(np.append(starts, len(codes)))
    rate = {k: shares[k] / mean_bars[k] for k in shares}
    for name in shares:
        again = rate[name] / sum(rate.values())
        expected = mean_bars[name] / (1 - again)
        runs = run_lengths[codes[starts] == REGIMES.index(name)][:-1]
        assert abs(runs.mean() / expected - 1) < 0.1, name


def test_candle_invariants_and_index(market):
    f = market.frame
    o, h, lo, c, v = (f[col].to_numpy() for col in ("open", "high", "low", "close", "volume"))
    assert (np.minimum.reduce([o, h, lo, c]) > 0).all()
    assert (h >= np.maximum(o, c)).all()
    assert (lo <= np.minimum(o, c)).all()
    assert (v > 0).all()
    np.testing.assert_array_equal(o[1:], c[:-1])  # open is the previous close
    assert o[0] == 20_000.0
    assert str(f.index.tz) == "UTC"
    assert f.index[0] == pd.Timestamp("2020-01-01", tz="UTC")
    assert (np.diff(f.index.asi8) == 15 * 60 * 10**9).all()
    assert len(market.gaps) == 0


def test_volatility_clusters_and_tails_are_fat(market):
    r = _log_returns(market)
    magnitude = np.abs(r)
    assert np.corrcoef(magnitude[:-1], magnitude[1:])[0, 1] > 0.1
    assert kurtosis(r) > 1  # excess kurtosis


def test_regimes_are_distinguishable(market):
    r = pd.Series(_log_returns(market))
    regime = market.true_regimes.iloc[1:].to_numpy()
    mean = r.groupby(regime, observed=True).mean()
    vol = r.groupby(regime, observed=True).std()
    assert mean["bull"] > 0 > mean["bear"]
    assert vol["volatile"] > vol["sideways"] and vol["crash"] > vol["sideways"]
    log_range = np.log(market.frame["high"] / market.frame["low"]).to_numpy()
    assert log_range[market.true_regimes == "crash"].mean() > \
        log_range[market.true_regimes == "sideways"].mean()


def test_predictability_is_small_but_real(market):
    r = _log_returns(market)
    lag1 = spearmanr(r[:-1], r[1:]).statistic
    assert 0 < lag1 < 0.1

    # A linear predictor fitted on the first half, scored on the second half.
    half = len(r) // 2
    slope, intercept = np.polyfit(r[: half - 1], r[1:half], 1)
    ic = spearmanr(slope * r[half:-1] + intercept, r[half + 1:]).statistic
    assert 0 < ic < 0.1


def test_prices_stay_plausible_over_a_million_bars():
    for seed in (1, 2, 3):
        close = sample_market(bars=1_000_000, seed=seed).frame["close"].to_numpy()
        assert 1e-3 < close[-1] / 20_000 < 1e3, seed
        assert np.isfinite(close).all() and close.min() > 0


def test_volatility_and_volume_follow_the_timeframe():
    fifteen = sample_market(bars=20_000, seed=2)
    hourly = sample_market(bars=20_000, seed=2, timeframe="1h")
    ratio = np.std(_log_returns(hourly)) / np.std(_log_returns(fifteen))
    assert ratio == pytest.approx(2.0, rel=0.01)  # same draws, scale sqrt(4)
    assert hourly.frame["volume"].mean() / fifteen.frame["volume"].mean() == pytest.approx(4.0)
    assert hourly.timeframe == "1h"
    assert (np.diff(hourly.frame.index.asi8) == 3600 * 10**9).all()


def test_labelled_synthetic_with_true_regimes():
    candles = sample_market(bars=1_000, seed=9, start="2021-06-01 12:00")
    assert candles.synthetic is True
    assert candles.source.startswith("sample") and "seed=9" in candles.source
    assert candles.symbol == "SAMPLE/USD" and candles.timeframe == "15m"
    assert candles.start == pd.Timestamp("2021-06-01 12:00", tz="UTC")
    regimes = candles.true_regimes
    assert regimes.index.equals(candles.frame.index)
    assert isinstance(regimes.dtype, pd.CategoricalDtype)
    assert tuple(regimes.cat.categories) == REGIMES


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bars": 1},
        {"bars": 2.5},
        {"bars": True},
        {"seed": -1},
        {"regime_shares": {"moon": 1.0}},
        {"regime_shares": {"bull": -0.1, "bear": 1.0}},
        {"regime_shares": {"bull": 0.0}},
        {"regime_shares": {"bull": float("nan")}},
        {"mean_regime_bars": {"crash": 0.5}},
        {"mean_regime_bars": {"moon": 10}},
        {"timeframe": "15x"},
        {"start": "not a date"},
        {"start": "2262-04-11"},  # the timestamps would overflow
        {"start_price": 0.0},
        {"start_price": float("inf")},
    ],
)
def test_bad_arguments_raise_input_error(kwargs):
    with pytest.raises(InputError) as info:
        sample_market(**{"bars": 1_000, **kwargs})
    assert "\n" not in str(info.value)


def test_bad_timeframe_is_an_unknown_timeframe_error():
    with pytest.raises(UnknownTimeframeError):
        sample_market(bars=100, timeframe="fortnight")


def test_arguments_are_keyword_only():
    with pytest.raises(TypeError):
        sample_market(100)


def test_rows_cuts_candles_and_their_true_regimes():
    market = sample_market(bars=3_000, seed=4)
    head = market.rows(slice(0, 1_000), source="cut")
    assert len(head) == 1_000 and head.source == "cut" and head.symbol == market.symbol
    assert head.end == market.frame.index[999] and head.timeframe == market.timeframe
    assert head.true_regimes.equals(market.true_regimes.iloc[:1_000])
    with pytest.raises(InputError, match="no candles"):
        market.rows(slice(3_000, None))
