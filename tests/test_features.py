"""Features and targets: causality, definitions, warm-up, standardisation, chronological split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from distillbt.data.sample import sample_market
from distillbt.errors import InputError
from distillbt.features import (
    FEATURE_DEFAULTS,
    Standardizer,
    chronological_split,
    make_features,
    valid_rows,
)

DEFAULT_NAMES = (
    "ret_1", "ret_2", "ret_4", "ret_8", "ret_16", "ret_32",
    "vol_16", "vol_96", "vol_ratio_16_96",
    "volume_ratio_16", "volume_z_16", "volume_ratio_96", "volume_z_96",
    "hl_range", "body", "upper_wick", "lower_wick",
    "ma_dist_16", "ma_dist_64", "ma_dist_256",
)


@pytest.fixture(scope="module")
def candles():
    return sample_market(bars=3_000, seed=5)


@pytest.fixture(scope="module")
def fs(candles):
    return make_features(candles)


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


@pytest.mark.parametrize("t", [0, 40, 255, 256, 1500, 2998])
def test_features_at_or_before_t_ignore_later_candles(candles, fs, t):
    changed = make_features(_perturb_after(candles.frame, t, seed=t))
    # Bit-for-bit: rolling windows end at the current row and run in time order.
    np.testing.assert_array_equal(changed.X.iloc[: t + 1].to_numpy(), fs.X.iloc[: t + 1].to_numpy())
    # The target at t is log(close[t+1] / close[t]): it uses the candle after t by definition,
    # so only targets before t must be unchanged.
    np.testing.assert_array_equal(changed.target.iloc[:t].to_numpy(), fs.target.iloc[:t].to_numpy())
    if t < len(candles) - 1:
        # Not a vacuous check: the perturbation does reach the target at t and later features.
        assert changed.target.iloc[t] != fs.target.iloc[t]
        assert not np.array_equal(changed.X.iloc[t + 1:].to_numpy(), fs.X.iloc[t + 1:].to_numpy(),
                                  equal_nan=True)


def test_names_shape_and_index(candles, fs):
    assert fs.names == DEFAULT_NAMES
    assert tuple(fs.X.columns) == fs.names
    assert fs.X.shape == (len(candles), len(DEFAULT_NAMES))
    assert fs.X.index.equals(candles.frame.index)
    assert fs.target.index.equals(candles.frame.index)
    assert (fs.X.dtypes == "float64").all()
    assert dict(FEATURE_DEFAULTS)["ma_windows"] == (16, 64, 256)


def test_custom_windows_name_the_columns(candles):
    fs = make_features(candles, return_lags=(3,), vol_windows=(10,), volume_windows=(5, 7),
                       ma_windows=(12,))
    assert fs.names == ("ret_3", "vol_10", "volume_ratio_5", "volume_z_5", "volume_ratio_7",
                        "volume_z_7", "hl_range", "body", "upper_wick", "lower_wick", "ma_dist_12")
    assert fs.warmup == 11  # ma_dist_12 needs vol_10, first complete at row 10; SMA_12 at 11


def test_warmup_rows_are_nan_and_later_rows_complete(fs):
    assert fs.warmup == 255  # SMA over 256 candles is first complete at row 255
    X = fs.X.to_numpy()
    assert np.isnan(X[: fs.warmup]).any(axis=1).all()
    assert np.isfinite(X[fs.warmup:]).all()
    ok = valid_rows(fs)
    assert not ok[: fs.warmup].any() and ok[fs.warmup:-1].all() and not ok[-1]


def test_values_match_their_definitions(candles, fs):
    f = candles.frame
    o, h, lo, c, v = (f[col].to_numpy() for col in ("open", "high", "low", "close", "volume"))
    t = 1_000
    r = np.diff(np.log(c))  # r[k] is the return of candle k + 1
    assert fs.X["ret_4"].iloc[t] == pytest.approx(np.log(c[t] / c[t - 4]), rel=1e-12)
    assert fs.X["vol_16"].iloc[t] == pytest.approx(np.std(r[t - 16:t], ddof=1), rel=1e-9)
    vol96 = np.std(r[t - 96:t], ddof=1)
    assert fs.X["vol_ratio_16_96"].iloc[t] == pytest.approx(np.std(r[t - 16:t], ddof=1) / vol96,
                                                            rel=1e-9)
    sma = c[t - 63:t + 1].mean()
    assert fs.X["ma_dist_64"].iloc[t] == pytest.approx(np.log(c[t] / sma) / (vol96 * 8), rel=1e-8)
    assert fs.X["volume_ratio_16"].iloc[t] == pytest.approx(np.log(v[t] / v[t - 15:t + 1].mean()),
                                                            rel=1e-9)
    lv = np.log(v[t - 95:t + 1])
    assert fs.X["volume_z_96"].iloc[t] == pytest.approx((lv[-1] - lv.mean()) / lv.std(ddof=1),
                                                        rel=1e-9)
    assert fs.X["hl_range"].iloc[t] == pytest.approx(np.log(h[t] / lo[t]), rel=1e-12)
    # Body and wicks share the candle's range between them.
    shares = fs.X["upper_wick"] + fs.X["lower_wick"] + fs.X["body"].abs()
    np.testing.assert_allclose(shares.to_numpy(), 1.0, atol=1e-9)
    assert fs.X["body"].iloc[t] == pytest.approx((c[t] - o[t]) / (h[t] - lo[t]), rel=1e-12)
    expected = np.log(c[1:] / c[:-1])
    # log(c1) - log(c0) and log(c1 / c0) round differently in the last bits.
    np.testing.assert_allclose(fs.target.to_numpy()[:-1], expected, rtol=0, atol=1e-14)
    assert np.isnan(fs.target.iloc[-1]) and np.isnan(fs.direction.iloc[-1])
    target = fs.target.to_numpy()[:-1]
    np.testing.assert_array_equal(fs.direction.to_numpy()[:-1], (target > 0).astype(float))


def test_flat_candles_and_zero_volume_stay_finite():
    n = 400
    close = np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, n))) * 100
    frame = pd.DataFrame({"open": close, "high": close * 1.01, "low": close * 0.99,
                          "close": close, "volume": np.full(n, 10.0)})
    frame.loc[50, ["open", "high", "low", "close"]] = frame.loc[50, "close"]  # high == low
    frame.loc[[0, 100, 101, 300], "volume"] = 0.0
    fs = make_features(frame)  # a plain frame with a RangeIndex is accepted
    row = fs.X.loc[50]
    assert (row["body"], row["upper_wick"], row["lower_wick"]) == (0.0, 0.0, 0.0)
    volume_cols = [n for n in fs.names if n.startswith("volume")]
    assert np.isfinite(fs.X[volume_cols].iloc[fs.warmup:].to_numpy()).all()
    # Zero volume is floored at the smallest volume traded so far (10): "usual" volume.
    assert fs.X["volume_ratio_16"].loc[100] == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("kwargs", "frame_change", "message"),
    [
        ({}, lambda f: f.drop(columns="volume"), "missing column"),
        ({}, lambda f: f.assign(close=-f["close"]), "positive"),
        ({}, lambda f: f.assign(volume=-1.0), "negative"),
        ({}, lambda f: f.assign(open=np.nan), "NaN"),
        ({}, lambda f: f.iloc[:0], "empty"),
        ({"return_lags": ()}, None, "return_lags"),
        ({"vol_windows": (1,)}, None, "vol_windows"),
        ({"ma_windows": (16, 16)}, None, "duplicates"),
        ({"volume_windows": "16"}, None, "volume_windows"),
    ],
)
def test_bad_input_is_one_line_input_error(candles, kwargs, frame_change, message):
    frame = candles.frame if frame_change is None else frame_change(candles.frame)
    with pytest.raises(InputError, match=message) as info:
        make_features(frame, **kwargs)
    assert "\n" not in str(info.value)


def test_not_a_frame_is_rejected():
    with pytest.raises(InputError, match="Candles or a DataFrame"):
        make_features([1, 2, 3])


# ---------------------------------------------------------------------------- Standardizer


def test_standardizer_uses_training_statistics_only(candles, fs):
    ok = valid_rows(fs)
    X = fs.X[ok]
    train, test = slice(0, 1500), slice(1500, None)
    scaler = Standardizer().fit(X.iloc[train])
    raw_train = X.iloc[train].to_numpy()
    mean, sd = raw_train.mean(axis=0), raw_train.std(axis=0)
    np.testing.assert_allclose(scaler.mean_, mean, rtol=1e-12)
    np.testing.assert_allclose(scaler.scale_, sd, rtol=1e-12)
    expected = (X.iloc[test].to_numpy() - mean) / sd
    np.testing.assert_allclose(scaler.transform(X.iloc[test]), expected, rtol=1e-12)
    # Candles after the training period, however different, change nothing learned from it.
    last_train_row = int(np.flatnonzero(ok)[train.stop - 1])
    other = make_features(_perturb_after(candles.frame, last_train_row + 1, seed=3))
    refit = Standardizer().fit(other.X[ok].iloc[train])
    np.testing.assert_array_equal(refit.mean_, scaler.mean_)
    np.testing.assert_array_equal(refit.scale_, scaler.scale_)
    assert not np.allclose(Standardizer().fit(other.X[ok]).mean_, Standardizer().fit(X).mean_)
    assert list(scaler.feature_names_in_) == list(fs.names)
    assert scaler.n_features_in_ == len(fs.names)


def test_standardizer_zero_variance_clip_and_inverse():
    rng = np.random.default_rng(1)
    X = np.column_stack([rng.normal(3, 2, 500), np.full(500, 7.0)])
    scaler = Standardizer(clip=2.0)
    Z = scaler.fit_transform(X)
    assert scaler.scale_[1] == 1.0 and np.all(Z[:, 1] == 0.0)
    assert Z.max() == 2.0 and Z.min() == -2.0
    inside = np.abs((X[:, 0] - scaler.mean_[0]) / scaler.scale_[0]) < 2.0
    np.testing.assert_allclose(scaler.inverse_transform(Z)[inside], X[inside], rtol=1e-12)
    plain = Standardizer().fit(X)
    np.testing.assert_allclose(plain.inverse_transform(plain.transform(X)), X, rtol=1e-12)
    assert repr(scaler) == "Standardizer(clip=2.0)"
    assert np.isnan(plain.transform(np.array([[np.nan, 7.0]]))[0, 0])  # NaN passes through


@pytest.mark.parametrize(
    ("make", "call", "message"),
    [
        (lambda: Standardizer(), lambda s: s.transform(np.ones((2, 2))), "not fitted"),
        (lambda: Standardizer(), lambda s: s.fit(np.array([[1.0, np.nan]])), "NaN"),
        (lambda: Standardizer(), lambda s: s.fit(np.ones(3)), "2-D"),
        (lambda: Standardizer(), lambda s: s.fit(np.ones((0, 2))), "zero rows"),
        (lambda: Standardizer(clip=0), lambda s: s.fit(np.ones((3, 2))), "clip"),
        (lambda: Standardizer(), lambda s: s.fit(np.ones((3, 2))).transform(np.ones((3, 3))),
         "features"),
    ],
)
def test_standardizer_bad_input(make, call, message):
    with pytest.raises(InputError, match=message):
        call(make())


# ---------------------------------------------------------------------- chronological_split


def test_split_is_ordered_with_embargo(fs):
    train, val, test = chronological_split(len(fs.X), gap=10)
    assert (train.start, val.start - train.stop, test.start - val.stop, test.stop) == (0, 10, 10,
                                                                                       3_000)
    sizes = np.array([train.stop - train.start, val.stop - val.start, test.stop - test.start])
    assert sizes.sum() == 3_000 - 20
    np.testing.assert_allclose(sizes / sizes.sum(), (0.6, 0.2, 0.2), atol=1e-3)
    assert fs.X.index[train][-1] < fs.X.index[val][0] < fs.X.index[test][0]
    assert chronological_split(fs.X.index) == chronological_split(3_000)
    assert chronological_split(10, fractions=(0.5, 0.5)) == (slice(0, 5), slice(5, 10))
    assert chronological_split(4, fractions=(1.0,)) == (slice(0, 4),)


@pytest.mark.parametrize(
    ("n", "kwargs", "message"),
    [
        (100, {"fractions": (0.5, 0.4)}, "sum to 1"),
        (100, {"fractions": (1.2, -0.2)}, "positive"),
        (100, {"fractions": ()}, "non-empty"),
        (100, {"fractions": ("a", "b")}, "numbers"),
        (100, {"gap": -1}, "gap"),
        (5, {"gap": 2}, "too few"),
        (2, {}, "too few"),
        ("abc", {"fractions": (0.5, 0.5), "gap": 3}, "too few"),
        (None, {}, "row count"),
    ],
)
def test_split_bad_input(n, kwargs, message):
    with pytest.raises(InputError, match=message):
        chronological_split(n, **kwargs)
