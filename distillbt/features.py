"""Features, targets, standardisation and the chronological split.

Every candle becomes one row of features computed from that candle and the candles before it,
never after; the target is the *next* candle's log return::

    fs = make_features(candles)              # FeatureSet: X, target, direction, names, warmup
    ok = valid_rows(fs)                      # finite features and target
    train, val, test = chronological_split(len(fs.X), fractions=(0.6, 0.2, 0.2), gap=256)
    scaler = Standardizer(clip=5.0).fit(fs.X[train][ok[train]])   # training period only
    Z_test = scaler.transform(fs.X[test][ok[test]])

The features (``w`` a window, ``r`` the 1-bar log return ``log(close[t] / close[t-1])``)
----------------------------------------------------------------------------------------
================================ ================================================================
name                             value at candle ``t``
================================ ================================================================
``ret_<lag>``                    ``log(close[t] / close[t-lag])``
``vol_<w>``                      realised volatility: standard deviation of ``r`` over the ``w``
                                 bars ending at ``t``
``vol_ratio_<s>_<l>``            ``vol_<s> / vol_<l>`` (shortest over longest volatility window)
``volume_ratio_<w>``             ``log(volume[t] / mean volume over the w bars ending at t)``
``volume_z_<w>``                 z-score of ``log(volume[t])`` against the mean and standard
                                 deviation of log volume over the ``w`` bars ending at ``t``
                                 (0 when those volumes are all equal)
``hl_range``                     ``log(high / low)``
``body``                         ``(close - open) / (high - low)``, in [-1, 1]
``upper_wick``                   ``(high - max(open, close)) / (high - low)``, in [0, 1]
``lower_wick``                   ``(min(open, close) - low) / (high - low)``, in [0, 1]
``ma_dist_<w>``                  ``log(close / SMA_w(close)) / (vol_<l> · sqrt(w))``: distance
                                 from the moving average in units of the noise expected over
                                 the window (``l`` the longest volatility window)
================================ ================================================================

Body and wick shares are 0 for a candle with ``high == low``. A zero volume is replaced by
the smallest positive volume seen so far (exchanges print zero-volume candles; the logarithm
must stay finite, and looking back keeps it causal); before the first positive volume the
volume features are 0. Where a volatility is exactly 0 (prices frozen for a whole window),
the ratios divided by it are NaN and :func:`valid_rows` drops the row.

Gaps in the candles (``Candles.gaps``) are not filled: a return across a gap spans it, and a
window of ``w`` rows then covers more than ``w`` intervals of time.

Causality: pandas rolling windows end at the current row and are computed in time order, so
changing candles after ``t`` leaves every feature at ``t`` and before bit-for-bit unchanged
(``tests/test_features.py`` checks it). The target at ``t`` uses ``close[t+1]`` by definition.
Full backtests do not use this code: inside Backtrader a model strategy computes its features
with a second, independent implementation of this table from the bars delivered so far
(:mod:`distillbt.live_features`), so the agreement of the two executions also checks these
definitions for look-ahead (``tests/test_live_execution.py``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pandas as pd

from .data.candles import COLUMNS, Candles
from .errors import InputError

__all__ = [
    "FEATURE_DEFAULTS",
    "FeatureSet",
    "make_features",
    "feature_options_key",
    "valid_rows",
    "Standardizer",
    "chronological_split",
    "split_at",
    "ohlcv_frame",
    "feature_warmup",
]

#: Default windows of :func:`make_features`, in bars.
FEATURE_DEFAULTS = MappingProxyType(
    {
        "return_lags": (1, 2, 4, 8, 16, 32),
        "vol_windows": (16, 96),
        "volume_windows": (16, 96),
        "ma_windows": (16, 64, 256),
    }
)


@dataclass(frozen=True, eq=False)
class FeatureSet:
    """Features and targets of a candle series, one row per candle.

    Attributes
    ----------
    X : DataFrame
        Index = candle open times, columns = :attr:`names`, float64.
    target : Series
        Next candle's log return ``log(close[t+1] / close[t])``; NaN on the last row.
    direction : Series
        1.0 where ``target > 0``, 0.0 where ``target <= 0``, NaN where the target is NaN.
    names : tuple of str
        Feature names, in column order.
    warmup : int
        Leading rows whose features are NaN because a window is not yet full.
    """

    X: pd.DataFrame
    target: pd.Series
    direction: pd.Series
    names: tuple[str, ...]
    warmup: int


def ohlcv_frame(candles_or_frame) -> pd.DataFrame:
    """The float64 ``open high low close volume`` frame of :class:`Candles` or a DataFrame.

    A DataFrame is checked for what would make the features meaningless (missing columns,
    non-numeric, NaN/inf, non-positive prices, negative volume) and raises
    :class:`~distillbt.errors.InputError` with one line; its index is kept as it is.
    ``Candles`` were validated when built and are used directly.
    """
    if isinstance(candles_or_frame, Candles):
        return candles_or_frame.frame
    if not isinstance(candles_or_frame, pd.DataFrame):
        raise InputError(
            f"expected Candles or a DataFrame with {' '.join(COLUMNS)}, "
            f"not {type(candles_or_frame).__name__}"
        )
    frame = candles_or_frame
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}; found {list(frame.columns)}")
    if len(frame) == 0:
        raise InputError("no candles: the frame is empty")
    try:
        data = {c: frame[c].to_numpy(dtype="float64", na_value=np.nan) for c in COLUMNS}
    except (TypeError, ValueError):
        raise InputError(f"columns {' '.join(COLUMNS)} must be numeric") from None
    for col, values in data.items():
        if not np.isfinite(values).all():
            raise InputError(f"{col} holds NaN or inf")
    if min(data[c].min() for c in ("open", "high", "low", "close")) <= 0:
        raise InputError("prices must be positive")
    if data["volume"].min() < 0:
        raise InputError("volume must not be negative")
    return pd.DataFrame(data, index=frame.index)


def _windows(name: str, value, *, minimum: int) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value,)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) == 0:
        raise InputError(f"{name} must be a non-empty sequence of integers, not {value!r}")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
            raise InputError(f"{name} must hold integers >= {minimum}, not {value!r}")
        out.append(int(v))
    if len(set(out)) != len(out):
        raise InputError(f"{name} holds duplicates: {value!r}")
    return tuple(out)


def feature_options_key(options) -> tuple:
    """``make_features`` options as a hashable key: the entries that differ from
    :data:`~distillbt.features.FEATURE_DEFAULTS`, windows as tuples, sorted (two strategies
    asking for the same windows share one set)."""
    key = []
    for name, value in dict(options or {}).items():
        if name not in FEATURE_DEFAULTS:  # said here, per configuration, not by a later make_features
            raise InputError(f"unknown feature option {name!r}: choose from {', '.join(FEATURE_DEFAULTS)}")
        windows = (int(value),) if isinstance(value, (int, np.integer)) else tuple(int(v) for v in value)
        if windows != tuple(FEATURE_DEFAULTS.get(name, ())):
            key.append((str(name), windows))
    return tuple(sorted(key))


def make_features(
    candles_or_frame,
    *,
    return_lags: Sequence[int] = FEATURE_DEFAULTS["return_lags"],
    vol_windows: Sequence[int] = FEATURE_DEFAULTS["vol_windows"],
    volume_windows: Sequence[int] = FEATURE_DEFAULTS["volume_windows"],
    ma_windows: Sequence[int] = FEATURE_DEFAULTS["ma_windows"],
) -> FeatureSet:
    """Causal features and next-candle targets (the table is in the module docstring).

    Parameters
    ----------
    candles_or_frame : Candles or DataFrame
        Candles, or a frame with columns ``open high low close volume`` in time order.
    return_lags : sequence of int
        Lags (≥ 1 bar) of the ``ret_<lag>`` log returns.
    vol_windows : sequence of int
        Windows (≥ 2 bars) of the realised volatilities ``vol_<w>``; with two or more, a
        ``vol_ratio_<shortest>_<longest>`` is added, and the longest scales ``ma_dist_<w>``.
    volume_windows : sequence of int
        Windows (≥ 2 bars) of ``volume_ratio_<w>`` and ``volume_z_<w>``.
    ma_windows : sequence of int
        Windows (≥ 2 bars) of the simple moving averages behind ``ma_dist_<w>``.

    Returns
    -------
    FeatureSet
        ``warmup`` is the number of leading rows with NaN features:
        ``max(max(return_lags), max(vol_windows), max(volume_windows) - 1,
        max(ma_windows) - 1)`` (capped at the number of rows).

    Raises
    ------
    InputError
        A bad window or a frame that is not candles (see :func:`ohlcv_frame`).
    """
    lags = _windows("return_lags", return_lags, minimum=1)
    vol_w = _windows("vol_windows", vol_windows, minimum=2)
    volume_w = _windows("volume_windows", volume_windows, minimum=2)
    ma_w = _windows("ma_windows", ma_windows, minimum=2)
    frame = ohlcv_frame(candles_or_frame)

    o, h, lo, c, v = (frame[col].to_numpy() for col in COLUMNS)
    log_c = pd.Series(np.log(c))
    r1 = log_c.diff()
    cols: dict[str, np.ndarray] = {}

    for lag in lags:
        cols[f"ret_{lag}"] = log_c.diff(lag).to_numpy()

    vols = {w: r1.rolling(w).std().to_numpy() for w in vol_w}
    for w in vol_w:
        cols[f"vol_{w}"] = vols[w]
    short, long_ = min(vol_w), max(vol_w)
    if short != long_:
        with np.errstate(divide="ignore", invalid="ignore"):
            cols[f"vol_ratio_{short}_{long_}"] = _nan_inf(vols[short] / vols[long_])

    log_v, floored = _log_volume(v)
    lv = pd.Series(log_v)
    vs = pd.Series(floored)
    for w in volume_w:
        cols[f"volume_ratio_{w}"] = log_v - np.log(vs.rolling(w).mean().to_numpy())
        roll = lv.rolling(w)
        mean, sd = roll.mean().to_numpy(), roll.std().to_numpy()
        # Equal volumes over the window (or none traded yet) have no spread: call it "usual".
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(sd > 0, (log_v - mean) / sd, 0.0)
        z[np.isnan(mean)] = np.nan
        cols[f"volume_z_{w}"] = z

    span = h - lo
    flat = span == 0
    safe = np.where(flat, 1.0, span)
    cols["hl_range"] = np.log(h / lo)
    cols["body"] = np.where(flat, 0.0, (c - o) / safe)
    cols["upper_wick"] = np.where(flat, 0.0, (h - np.maximum(o, c)) / safe)
    cols["lower_wick"] = np.where(flat, 0.0, (np.minimum(o, c) - lo) / safe)

    for w in ma_w:
        sma = pd.Series(c).rolling(w).mean().to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            cols[f"ma_dist_{w}"] = _nan_inf(np.log(c / sma) / (vols[long_] * math.sqrt(w)))

    X = pd.DataFrame(cols, index=frame.index)
    target_values = r1.shift(-1).to_numpy()
    target = pd.Series(target_values, index=frame.index, name="target")
    direction = pd.Series(
        np.where(np.isnan(target_values), np.nan, (target_values > 0).astype("float64")),
        index=frame.index,
        name="direction",
    )
    warmup = min(len(frame), _warmup(lags, vol_w, volume_w, ma_w))
    return FeatureSet(X=X, target=target, direction=direction, names=tuple(X.columns),
                      warmup=warmup)


def feature_warmup(
    *,
    return_lags: Sequence[int] = FEATURE_DEFAULTS["return_lags"],
    vol_windows: Sequence[int] = FEATURE_DEFAULTS["vol_windows"],
    volume_windows: Sequence[int] = FEATURE_DEFAULTS["volume_windows"],
    ma_windows: Sequence[int] = FEATURE_DEFAULTS["ma_windows"],
) -> int:
    """Leading rows :func:`make_features` leaves NaN with these options: every feature is a
    finite window, so a row with this many candles before it has exactly the values it would
    have after any longer history (up to the causal zero-volume floor, see the module
    docstring)."""
    return _warmup(_windows("return_lags", return_lags, minimum=1),
                   _windows("vol_windows", vol_windows, minimum=2),
                   _windows("volume_windows", volume_windows, minimum=2),
                   _windows("ma_windows", ma_windows, minimum=2))


def _warmup(lags, vol_w, volume_w, ma_w) -> int:
    return max(max(lags), max(vol_w), max(volume_w) - 1, max(ma_w) - 1)


def _nan_inf(values: np.ndarray) -> np.ndarray:
    """Division by a zero volatility gives ±inf or NaN; make it NaN so valid_rows drops it."""
    values[~np.isfinite(values)] = np.nan
    return values


def _log_volume(volume: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log volume with zeros floored causally, and the floored volume itself."""
    positive = np.where(volume > 0, volume, np.inf)
    smallest_so_far = np.minimum.accumulate(positive)
    floored = np.where(volume > 0, volume, smallest_so_far)
    # Before the first traded candle there is nothing to compare with: a neutral 1.
    floored = np.where(np.isinf(floored), 1.0, floored)
    return np.log(floored), floored


def valid_rows(fs: FeatureSet) -> np.ndarray:
    """Boolean mask of the rows whose features and target are all finite."""
    return np.isfinite(fs.X.to_numpy()).all(axis=1) & np.isfinite(fs.target.to_numpy())


class Standardizer:
    """Centre and scale features with statistics of the data it is fitted on.

    Fit it on the training period only; validation and test rows are then transformed with
    the training mean and scale, so nothing about them leaks into the model.

    Parameters
    ----------
    clip : float, optional
        Clip standardised values to ``[-clip, clip]`` (fat-tailed returns otherwise dominate
        a linear model or a distance). Default None: no clipping.

    Attributes
    ----------
    mean_, scale_ : ndarray of shape (n_features,)
        Column means and population standard deviations of the fitted data; a column with
        (numerically) zero variance gets scale 1, so it transforms to 0 instead of inf.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame.
    """

    def __init__(self, *, clip: float | None = None):
        self.clip = clip

    def fit(self, X, y=None) -> Standardizer:
        """Learn ``mean_`` and ``scale_`` from ``X`` (rows = samples); ``y`` is ignored."""
        clip = self.clip
        if clip is not None and (
            isinstance(clip, bool) or not isinstance(clip, numbers.Real)
            or not math.isfinite(clip) or clip <= 0
        ):
            raise InputError(f"clip must be a positive number or None, not {clip!r}")
        values = _as_2d(X)
        if len(values) == 0:
            raise InputError("cannot fit a Standardizer on zero rows")
        if not np.isfinite(values).all():
            raise InputError("X holds NaN or inf: fit on valid_rows() only")
        mean = values.mean(axis=0)
        scale = values.std(axis=0)
        # Rounding leaves a constant column a tiny non-zero spread; treat it as zero.
        tiny = 10 * np.finfo("float64").eps * np.maximum(np.abs(mean), 1.0)
        scale[scale <= tiny] = 1.0
        self.mean_, self.scale_ = mean, scale
        self.n_features_in_ = values.shape[1]
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return self

    def transform(self, X) -> np.ndarray:
        """``(X - mean_) / scale_``, clipped to ``±clip``; NaN stays NaN."""
        values = self._check(X)
        out = (values - self.mean_) / self.scale_
        if self.clip is not None:
            np.clip(out, -self.clip, self.clip, out=out)
        return out

    def fit_transform(self, X, y=None) -> np.ndarray:
        """``fit(X).transform(X)``."""
        return self.fit(X).transform(X)

    def inverse_transform(self, Z) -> np.ndarray:
        """``Z * scale_ + mean_`` (clipped values come back clipped)."""
        return self._check(Z) * self.scale_ + self.mean_

    def _check(self, X) -> np.ndarray:
        if not hasattr(self, "mean_"):
            raise InputError("this Standardizer is not fitted yet: call fit() first")
        values = _as_2d(X)
        if values.shape[1] != self.n_features_in_:
            raise InputError(
                f"X has {values.shape[1]} features, the Standardizer was fitted on "
                f"{self.n_features_in_}"
            )
        names = getattr(self, "feature_names_in_", None)
        if names is not None and isinstance(X, pd.DataFrame) and list(X.columns) != list(names):
            raise InputError("X has other columns than the Standardizer was fitted on")
        return values

    def __repr__(self) -> str:
        return "Standardizer()" if self.clip is None else f"Standardizer(clip={self.clip!r})"


def _as_2d(X) -> np.ndarray:
    try:
        values = np.array(X, dtype="float64")  # a copy: the caller's data is never changed
    except (TypeError, ValueError):
        raise InputError("X must be numeric") from None
    if values.ndim != 2:
        raise InputError(f"X must be 2-D (samples × features), got shape {values.shape}")
    return values


def split_at(times, boundaries, *, gap: int = 0) -> tuple[slice, ...]:
    """Consecutive slices of rows cut at the times ``boundaries`` (each the first time of the
    next part), with ``gap`` rows of embargo taken from the end of each part but the last —
    so every part after the first starts exactly at its boundary, the same calendar split for
    every series of a basket. ``times``: the rows' sorted times. Raises
    :class:`~distillbt.errors.InputError` when a part would be empty."""
    index = pd.DatetimeIndex(times)
    cuts = [int(index.searchsorted(pd.Timestamp(t))) for t in boundaries]
    stamps = [pd.Timestamp(t) for t in boundaries]
    if any(b <= a for a, b in zip(stamps, stamps[1:])):
        raise InputError(f"boundaries must increase, not {[str(t) for t in boundaries]}")
    starts, stops = [0, *cuts], [*(c - gap for c in cuts), len(index)]
    parts = tuple(slice(a, b) for a, b in zip(starts, stops))
    names = ("training", "screening", "holdout") if len(parts) == 3 else [f"part {k + 1}" for k in range(len(parts))]
    for name, part in zip(names, parts):
        if part.stop - part.start < 1:
            raise InputError(f"no usable candles in the {name} period (the split at "
                             f"{', '.join(str(t) for t in boundaries)}; usable candles "
                             f"{index[0] if len(index) else '-'} → {index[-1] if len(index) else '-'})")
    return parts


def chronological_split(
    n_or_index, *, fractions: Sequence[float] = (0.6, 0.2, 0.2), gap: int = 0
) -> tuple[slice, ...]:
    """Consecutive slices of rows in time order (train, validation, test by default).

    Parameters
    ----------
    n_or_index : int or sized
        The number of rows, or anything with a length (an index, a frame, a FeatureSet's X).
    fractions : sequence of float
        Positive shares of the rows left after the gaps, one per part, summing to 1.
    gap : int
        Embargo: rows skipped between consecutive parts, so that the targets (and long
        feature windows) at the end of one part do not overlap the next. The next-candle
        target needs ``gap >= 1`` for the last training target to be disjoint from the next
        part's features; a gap of the longest feature window makes the parts share no candle.

    Returns
    -------
    tuple of slice
        ``slice(start, stop)`` per part, in order; ``X.iloc[part]`` or ``array[part]``.

    Raises
    ------
    InputError
        Non-positive or non-finite fractions, fractions not summing to 1, a negative gap, or
        too few rows for every part to get at least one.
    """
    if isinstance(n_or_index, (int, np.integer)) and not isinstance(n_or_index, bool):
        n = int(n_or_index)
    elif hasattr(n_or_index, "__len__"):
        n = len(n_or_index)
    else:
        raise InputError(f"expected a row count or a sized index, not {n_or_index!r}")
    if isinstance(gap, bool) or not isinstance(gap, (int, np.integer)) or gap < 0:
        raise InputError(f"gap must be an integer >= 0, not {gap!r}")
    try:
        shares = np.array(list(fractions), dtype="float64")
    except (TypeError, ValueError):
        raise InputError(f"fractions must be numbers, not {fractions!r}") from None
    if shares.ndim != 1 or len(shares) == 0:
        raise InputError(f"fractions must be a non-empty sequence of numbers, not {fractions!r}")
    if not np.isfinite(shares).all() or (shares <= 0).any():
        raise InputError(f"fractions must all be positive, not {list(fractions)}")
    if abs(shares.sum() - 1.0) > 1e-6:
        raise InputError(f"fractions must sum to 1, not {shares.sum():g}")
    usable = n - gap * (len(shares) - 1)
    bounds = np.rint(np.concatenate(([0.0], np.cumsum(shares))) * max(usable, 0)).astype(int)
    bounds[-1] = max(usable, 0)
    sizes = np.diff(bounds)
    if usable <= 0 or (sizes < 1).any():
        raise InputError(
            f"{n} rows are too few for {len(shares)} parts {list(fractions)} with gap {gap}"
        )
    starts = bounds[:-1] + gap * np.arange(len(shares))
    return tuple(slice(int(s), int(s + k)) for s, k in zip(starts, sizes, strict=True))
