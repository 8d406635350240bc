"""The regime labeller: causality, training-only fitting, agreement with the sample market's
known regimes, persistence as plain data, bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from distillbt.data.sample import REGIMES, sample_market
from distillbt.errors import InputError
from distillbt.regimes import (
    REGIME_NAMES,
    TrendVolatilityLabeller,
    _mixture_split,
    regime_agreement,
)


@pytest.fixture(scope="module")
def candles():
    return sample_market(bars=5_000, seed=21)


@pytest.fixture(scope="module")
def fitted(candles):
    return TrendVolatilityLabeller().fit(candles.frame.iloc[:3_000])


def _perturb_after(frame: pd.DataFrame, t: int, seed: int) -> pd.DataFrame:
    """Candles after row ``t`` rescaled by a random factor per row (each candle stays valid)."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    later = len(out) - t - 1
    price = rng.uniform(0.5, 2.0, later)
    for col in ("open", "high", "low", "close"):
        out.iloc[t + 1:, out.columns.get_loc(col)] *= price
    out.iloc[t + 1:, out.columns.get_loc("volume")] *= rng.uniform(0.0, 5.0, later)
    return out


def test_names_follow_the_sample_market():
    assert REGIME_NAMES == REGIMES == ("bull", "bear", "sideways", "volatile", "crash")


@pytest.mark.parametrize("t", [500, 959, 960, 2_999, 3_000, 4_321])
def test_label_at_t_ignores_later_candles(candles, fitted, t):
    before = fitted.predict(candles)
    after = fitted.predict(_perturb_after(candles.frame, t, seed=t))
    np.testing.assert_array_equal(after.cat.codes[: t + 1], before.cat.codes[: t + 1])
    stats_before = fitted.statistics(candles).iloc[: t + 1].to_numpy()
    stats_after = fitted.statistics(_perturb_after(candles.frame, t, seed=t)).iloc[: t + 1]
    np.testing.assert_array_equal(stats_after.to_numpy(), stats_before)
    # Not vacuous: the change reaches the statistics right after t.
    assert not np.array_equal(
        fitted.statistics(_perturb_after(candles.frame, t, seed=t)).iloc[t + 1:].to_numpy(),
        fitted.statistics(candles).iloc[t + 1:].to_numpy(), equal_nan=True)


def test_thresholds_depend_on_the_training_period_only(candles, fitted):
    # The same training candles followed by a completely different "future".
    changed = _perturb_after(candles.frame, 2_999, seed=1)
    refit = TrendVolatilityLabeller().fit(changed.iloc[:3_000])
    assert refit.thresholds_ == fitted.thresholds_
    assert refit.train_shares_ == fitted.train_shares_
    # ...and the thresholds do respond to the period given (fit is not a constant).
    other = TrendVolatilityLabeller().fit(candles.frame.iloc[2_000:])
    assert other.thresholds_ != fitted.thresholds_


def test_predict_output(candles, fitted):
    labels = fitted.predict(candles)
    assert isinstance(labels.dtype, pd.CategoricalDtype)
    assert tuple(labels.cat.categories) == REGIME_NAMES
    assert labels.index.equals(candles.frame.index)
    warm = fitted.warmup
    assert warm == 960
    assert labels.iloc[:warm].isna().all() and labels.iloc[warm:].notna().all()
    assert fitted.n_train_ == 3_000 - warm
    assert sum(fitted.train_shares_.values()) == pytest.approx(1.0)
    np.testing.assert_array_equal(
        TrendVolatilityLabeller().fit_predict(candles.frame.iloc[:3_000]).cat.codes,
        labels.iloc[:3_000].cat.codes,
    )


def test_plain_frame_with_any_index_is_accepted(candles, fitted):
    frame = candles.frame.reset_index(drop=True)
    labels = TrendVolatilityLabeller().fit(frame.iloc[:3_000]).predict(frame)
    np.testing.assert_array_equal(labels.cat.codes, fitted.predict(candles).cat.codes)


def test_fixed_high_vol_share_is_a_training_quantile(candles):
    labeller = TrendVolatilityLabeller(high_vol_share=0.2).fit(candles)
    hot = labeller.train_shares_["volatile"] + labeller.train_shares_["crash"]
    assert hot == pytest.approx(0.2, abs=0.002)


def test_mixture_split_finds_the_valley():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0.0, 1.0, 80_000), rng.normal(6.0, 1.0, 20_000)])
    # Equal spreads: densities cross where 0.8·φ(x) = 0.2·φ(x − 6), at 3 + ln(4)/6.
    assert _mixture_split(x) == pytest.approx(3 + np.log(4) / 6, abs=0.05)


def test_agreement_with_the_sample_markets_true_regimes():
    """Fit on the first 60 % of 200k bars, score the last 40 % (seeds 1–5, not used to tune).

    Measured: raw 0.598 0.549 0.593 0.551 0.642, mean 0.587 ± 0.038; after the best renaming
    identical (the names mean what they say); always-the-majority-regime scores 0.32 on average.
    Causal windows lag every regime switch, so 70 % is out of reach (see bench_regimes.py).
    """
    raw, hot_recall = [], []
    for seed in (1, 2, 3, 4, 5):
        candles = sample_market(bars=200_000, seed=seed)
        n_train = 120_000
        labeller = TrendVolatilityLabeller().fit(candles.frame.iloc[:n_train])
        labels = labeller.predict(candles).iloc[n_train:]
        true = candles.true_regimes.iloc[n_train:]
        scores = regime_agreement(true, labels)
        assert scores["mapped"] - scores["raw"] < 0.01
        raw.append(scores["raw"])
        hot_true = true.isin(["volatile", "crash"]).to_numpy()
        hot_pred = labels.isin(["volatile", "crash"]).to_numpy()
        hot_recall.append(hot_pred[hot_true].mean())
    assert min(raw) >= 0.50
    assert np.mean(raw) >= 0.55
    assert np.mean(hot_recall) >= 0.80  # turbulence is the easy part: measured 0.88


def test_regime_agreement_counts_and_mapping():
    true = pd.Series(["bull", "bull", "bear", "sideways", None, "crash"])
    swapped = ["bear", "bear", "bull", "sideways", "bull", None]
    scores = regime_agreement(true, swapped)
    assert scores["rows"] == 4
    assert scores["raw"] == pytest.approx(0.25)
    assert scores["mapped"] == pytest.approx(1.0)
    assert scores["mapping"]["bear"] == "bull" and scores["mapping"]["bull"] == "bear"
    assert scores["confusion"].loc["bull", "bear"] == 2
    with pytest.raises(InputError, match="labels"):
        regime_agreement(true, swapped[:3])
    with pytest.raises(InputError, match="no row"):
        regime_agreement([None, None], ["bull", None])


def test_to_dict_round_trip_predicts_identically(candles, fitted):
    spec = json.loads(json.dumps(fitted.to_dict(), allow_nan=False))  # plain JSON, no pickle
    loaded = TrendVolatilityLabeller.from_dict(spec)
    np.testing.assert_array_equal(loaded.predict(candles).cat.codes,
                                  fitted.predict(candles).cat.codes)
    assert loaded.get_params() == fitted.get_params()
    assert loaded.thresholds_ == fitted.thresholds_

    custom = TrendVolatilityLabeller(trend_window=300, high_vol_share=0.1).fit(candles)
    again = TrendVolatilityLabeller.from_dict(json.loads(json.dumps(custom.to_dict())))
    np.testing.assert_array_equal(again.predict(candles).cat.codes,
                                  custom.predict(candles).cat.codes)
    assert repr(again) == "TrendVolatilityLabeller(trend_window=300, high_vol_share=0.1)"


def test_init_only_stores_and_set_params():
    labeller = TrendVolatilityLabeller(trend_window="nonsense")  # validated in fit, not here
    assert labeller.trend_window == "nonsense"
    assert labeller.set_params(trend_window=100) is labeller and labeller.trend_window == 100
    with pytest.raises(InputError, match="unknown parameter"):
        labeller.set_params(window=3)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"trend_window": 1}, "trend_window"),
        ({"vol_window": 2.5}, "vol_window"),
        ({"high_vol_share": 1.0}, "high_vol_share"),
        ({"crash_share": 0}, "crash_share"),
        ({"bull_share": 0.6, "bear_share": 0.5}, "below 1"),
        ({"range_share": -0.1}, "range_share"),
        ({"range_trend_factor": 0.5}, "range_trend_factor"),
    ],
)
def test_bad_parameters(candles, params, message):
    with pytest.raises(InputError, match=message) as info:
        TrendVolatilityLabeller(**params).fit(candles)
    assert "\n" not in str(info.value)


def test_bad_input(candles, fitted):
    with pytest.raises(InputError, match="not fitted"):
        TrendVolatilityLabeller().predict(candles)
    with pytest.raises(InputError, match="warm-up"):
        TrendVolatilityLabeller().fit(candles.frame.iloc[:1_000])
    with pytest.raises(InputError, match="missing column"):
        fitted.predict(candles.frame.drop(columns="close"))
    with pytest.raises(InputError, match="format"):
        TrendVolatilityLabeller.from_dict({"format": "pickle"})
    spec = fitted.to_dict()
    del spec["thresholds"]["bull_trend"]
    with pytest.raises(InputError, match="malformed"):
        TrendVolatilityLabeller.from_dict(spec)
    spec = fitted.to_dict()
    spec["regimes"] = ["up", "down"]
    with pytest.raises(InputError, match="regimes"):
        TrendVolatilityLabeller.from_dict(spec)
    spec = fitted.to_dict()
    spec["params"]["trend_window"] = 0
    with pytest.raises(InputError, match="trend_window"):
        TrendVolatilityLabeller.from_dict(spec)


def test_range_rule_can_be_switched_off(candles):
    off = TrendVolatilityLabeller(range_share=0).fit(candles)
    on = TrendVolatilityLabeller().fit(candles)
    assert off.thresholds_["narrow_range"] is None
    assert off.train_shares_["sideways"] < on.train_shares_["sideways"]
    text = json.dumps(off.to_dict(), allow_nan=False)  # strict JSON: no NaN or Infinity
    loaded = TrendVolatilityLabeller.from_dict(json.loads(text))
    np.testing.assert_array_equal(loaded.predict(candles).cat.codes, off.predict(candles).cat.codes)
