"""Model signals computed inside Backtrader, from the bars it has delivered so far.

A full backtest of a :class:`~distillbt.strategy.ModelStrategy` must be an *independent*
check of the vectorised screen, not a replay of it: if the features leaked the future, a
backtest that precomputed them with the screen's code would leak it identically and the two
executions would still agree. So inside Backtrader the strategy reads its decisions from
:class:`ModelSignal`, an indicator that

- computes the model's features with a **second implementation** (:class:`CausalFeatures`),
  written from the definitions in :mod:`distillbt.features`' docstring with plain numpy over
  windows that end at the row being computed — it never calls
  :func:`~distillbt.features.make_features`;
- standardises them with the fitted scaler and calls the fitted estimator
  (:meth:`FittedModel.predict <distillbt.strategy.FittedModel.predict>`) on those rows only;
- turns each prediction into a target with the strategy's ``position_rule``.

Backtrader computes an indicator two ways and promises they agree: ``once(start, end)``
(``runonce=True``, the full backtests' mode) fills rows ``start..end-1`` in one batch, and
``next()`` (``runonce=False``) fills the current row. Here ``once`` reads the line arrays only
up to ``end - 1`` (copies of that prefix, so a later bar is not even in reach) and each row
``i`` only reads bars ``i - lookback + 1 .. i``; ``next`` reads the last ``lookback`` bars
through ``line.get``. Both call the same row code, so they give the same values, and the
tests run the shipped strategies both ways. A decision at bar ``t`` therefore uses bars
``<= t`` only, whatever the preloaded feed holds after ``t``.

Why an indicator and not a loop in the strategy's ``next``: in ``runonce`` mode Backtrader
hands the indicator whole ranges, so features and predictions are computed in numpy batches
(the speed of the old precompute) while still reading only each row's past; in ``next``
mode the same code runs one row at a time.

What differs from the vectorised path, on purpose
-------------------------------------------------
- Rolling statistics are computed per window (two-pass mean and ``ddof=1`` standard deviation,
  as pandas' ``rolling().std()`` the vectorised path uses) rather than with pandas' running
  sums; values agree to rounding (~1e-13 relative), not bit for bit. A window of equal values
  has a standard deviation of exactly 0 on both sides (pandas special-cases it; here the
  window's range is checked).
- The zero-volume floor ("the smallest positive volume seen so far") depends on the whole
  history. Here "so far" means *since the first bar fed to Backtrader*: with a bounded
  warm-up (``run_backtest(..., warmup_bars=k)``) the floor starts at the first fed bar, while
  ``make_features`` over the full candles starts at the first candle. The two differ only
  when a zero-volume candle falls inside the warm-up before a smaller positive volume was
  seen in it — and then the Backtrader side is the causal one for what it was given.
- The position rule is given the predictions of every bar up to the newest row (in ``once``
  up to ``end - 1``, in ``next`` up to the current bar), so any causal rule gives in
  Backtrader what it gives over the whole array in the vectorised path.

Multi-horizon models (:class:`~distillbt.horizons.FittedEnsemble`) are causal here too: each
coarse candle is built from the delivered base bars of its epoch-aligned interval once the
last of them has closed (complete intervals only, as
:func:`~distillbt.data.resample.resample_candles` builds them), its features come from the
coarse candles completed so far, and its prediction is used from that bar for at most one
coarse interval — the rule of :mod:`distillbt.horizons`, computed from the past only.
"""

from __future__ import annotations

import array
import datetime as _dt
import math

import backtrader as bt
import numpy as np

from .errors import InputError
from .features import FEATURE_DEFAULTS

__all__ = ["CausalFeatures", "ModelSignal", "volume_floor"]

#: Rows computed at once by :meth:`CausalFeatures.rows`: bounds the window matrices'
#: memory (rows × window × 8 bytes) without making numpy's per-call cost matter.
BLOCK = 4096

_CANDLE_SHAPES = ("hl_range", "body", "upper_wick", "lower_wick")
_EPOCH_DAYNUM = bt.date2num(_dt.datetime(1970, 1, 1))


def volume_floor(volume: np.ndarray, smallest: float = math.inf) -> np.ndarray:
    """The smallest positive volume seen up to each bar (``inf`` before the first), starting
    from ``smallest`` (what earlier bars left). Each value reads only that bar and earlier."""
    positive = np.where(volume > 0, volume, np.inf)
    positive[:1] = np.minimum(positive[:1], smallest)
    return np.minimum.accumulate(positive)


class CausalFeatures:
    """The features ``names`` under ``options`` (``make_features``' windows), row by row.

    An independent implementation of the table in :mod:`distillbt.features`: every row ``i``
    is computed from the bars ``i - lookback + 1 .. i`` of the arrays it is given (and the
    running volume floor at ``i``), with NaN where a window reaches before the first bar.

    Attributes
    ----------
    names : tuple of str
        The features, in column order.
    lookback : int
        Bars a row reads, itself included: a row with ``lookback - 1`` bars before it has the
        value it would have after any longer history (up to the volume floor).
    """

    def __init__(self, names, options=None):
        options = {**FEATURE_DEFAULTS, **dict(options or {})}
        self.lags = _window_set(options["return_lags"])
        self.vol_windows = _window_set(options["vol_windows"])
        self.volume_windows = _window_set(options["volume_windows"])
        self.ma_windows = _window_set(options["ma_windows"])
        self.longest_vol = max(self.vol_windows)
        shortest = min(self.vol_windows)
        known = {f"ret_{k}": k + 1 for k in self.lags}
        known.update({f"vol_{w}": w + 1 for w in self.vol_windows})
        if shortest != self.longest_vol:
            known[f"vol_ratio_{shortest}_{self.longest_vol}"] = self.longest_vol + 1
        for w in self.volume_windows:
            known[f"volume_ratio_{w}"] = known[f"volume_z_{w}"] = w
        known.update({name: 1 for name in _CANDLE_SHAPES})
        known.update({f"ma_dist_{w}": max(w, self.longest_vol + 1) for w in self.ma_windows})
        self.names = tuple(str(n) for n in names)
        missing = [n for n in self.names if n not in known]
        if missing:
            raise InputError(f"{', '.join(missing)} not among the features ({', '.join(known)}): "
                             "check features and feature_options")
        self.lookback = max(known[n] for n in self.names)
        # volatilities read: their own features, the ratio's two, the longest for ma_dist
        vols = {w for w in self.vol_windows if f"vol_{w}" in self.names}
        if any(n.startswith("vol_ratio_") for n in self.names):
            vols |= {shortest, self.longest_vol}
        if any(n.startswith("ma_dist_") for n in self.names):
            vols.add(self.longest_vol)
        self._vols = tuple(sorted(vols))

    def rows(self, open_, high, low, close, volume, floor, start: int, end: int) -> np.ndarray:
        """Features of rows ``start..end-1`` of the arrays, shape ``(end - start, len(names))``.

        ``floor``: :func:`volume_floor` of the volumes (same length). Only elements
        ``start - lookback + 1 .. end - 1`` are read.
        """
        out = np.empty((max(end - start, 0), len(self.names)))
        for a in range(start, end, BLOCK):
            b = min(a + BLOCK, end)
            # Local copies from the first bar the block's windows reach: nothing later.
            s = max(0, a - self.lookback + 1)
            cols = self._block(*(np.asarray(x[s:b], dtype="float64") for x in
                                 (open_, high, low, close, volume, floor)), a - s)
            out[a - start:b - start] = np.column_stack([cols[n] for n in self.names])
        return out

    def _block(self, o, h, lo, c, v, floor, first: int) -> dict:
        """Every needed feature of local rows ``first..len(c)-1``."""
        want = set(self.names)
        rows = slice(first, len(c))
        lc = np.log(c)
        r = np.concatenate(([np.nan], lc[1:] - lc[:-1]))  # r[0] has no previous close here
        cols = {}
        for k in self.lags:
            if f"ret_{k}" in want:
                back = np.arange(first, len(c)) - k
                cols[f"ret_{k}"] = np.where(back >= 0, lc[rows] - lc[np.maximum(back, 0)], np.nan)
        vols = {w: _rolling(r, first, w, _std) for w in self._vols}
        cols.update({f"vol_{w}": vols[w] for w in self.vol_windows if f"vol_{w}" in want})
        for name in want:
            if name.startswith("vol_ratio_"):
                s, l = (int(x) for x in name[len("vol_ratio_"):].split("_"))
                with np.errstate(divide="ignore", invalid="ignore"):
                    cols[name] = _finite_or_nan(vols[s] / vols[l])
        if any(n.startswith("volume_") for n in want):
            # A zero volume takes the smallest positive volume so far; none yet: a neutral 1.
            fv = np.where(v > 0, v, floor)
            fv = np.where(np.isinf(fv), 1.0, fv)
            lv = np.log(fv)
            for w in self.volume_windows:
                if f"volume_ratio_{w}" in want:
                    cols[f"volume_ratio_{w}"] = lv[rows] - np.log(_rolling(fv, first, w, _mean))
                if f"volume_z_{w}" in want:
                    mean = _rolling(lv, first, w, _mean)
                    sd = _rolling(lv, first, w, _std)
                    with np.errstate(divide="ignore", invalid="ignore"):
                        z = np.where(sd > 0, (lv[rows] - mean) / sd, 0.0)
                    z[np.isnan(mean)] = np.nan
                    cols[f"volume_z_{w}"] = z
        if want & set(_CANDLE_SHAPES):
            o_, h_, l_, c_ = o[rows], h[rows], lo[rows], c[rows]
            span = h_ - l_
            flat = span == 0
            safe = np.where(flat, 1.0, span)
            cols["hl_range"] = np.log(h_ / l_)
            cols["body"] = np.where(flat, 0.0, (c_ - o_) / safe)
            cols["upper_wick"] = np.where(flat, 0.0, (h_ - np.maximum(o_, c_)) / safe)
            cols["lower_wick"] = np.where(flat, 0.0, (np.minimum(o_, c_) - l_) / safe)
        for w in self.ma_windows:
            if f"ma_dist_{w}" in want:
                sma = _rolling(c, first, w, _mean)
                with np.errstate(divide="ignore", invalid="ignore"):
                    cols[f"ma_dist_{w}"] = _finite_or_nan(
                        np.log(c[rows] / sma) / (vols[self.longest_vol] * math.sqrt(w)))
        return cols


def _window_set(value) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),)
    return tuple(int(v) for v in value)


def _mean(windows: np.ndarray) -> np.ndarray:
    return windows.mean(axis=1)


def _std(windows: np.ndarray) -> np.ndarray:
    """Sample standard deviation (ddof=1) per window; exactly 0 for a window of equal values
    (a two-pass mean of equal values can miss them by an ulp and leave a spurious spread)."""
    mean = windows.mean(axis=1)
    dev = windows - mean[:, None]
    sd = np.sqrt(np.einsum("ij,ij->i", dev, dev) / (windows.shape[1] - 1))
    # Only a spread at rounding level can come from equal values: check those windows alone.
    tiny = np.flatnonzero(sd <= 1e-12 * np.abs(mean))
    if len(tiny):
        same = windows[tiny].max(axis=1) == windows[tiny].min(axis=1)
        sd[tiny[same]] = 0.0
    return sd


def _rolling(x: np.ndarray, first: int, w: int, stat) -> np.ndarray:
    """``stat`` of the ``w`` values ending at each row ``first..len(x)-1`` of ``x``; NaN where
    the window would start before ``x[0]`` (NaN inside a window propagates)."""
    out = np.full(len(x) - first, np.nan)
    begin = max(first, w - 1)
    if begin < len(x):
        view = np.lib.stride_tricks.sliding_window_view(x, w)[begin - w + 1:]
        out[begin - first:] = stat(view)
    return out


def _finite_or_nan(values: np.ndarray) -> np.ndarray:
    values[~np.isfinite(values)] = np.nan
    return values


def _ms(daynums) -> np.ndarray:
    """Backtrader's float day numbers as UTC epoch milliseconds (their float error ~10 µs)."""
    days = np.asarray(daynums, dtype="float64") - _EPOCH_DAYNUM
    return np.round(days * 86_400_000).astype("int64")


class _Model:
    """One fitted model and the bars it reads: features, floor state, lookback."""

    def __init__(self, fitted):
        self.fitted = fitted
        self.features = CausalFeatures(fitted.feature_names, fitted.feature_options)

    def predict(self, X: np.ndarray) -> np.ndarray:
        out = np.full(len(X), np.nan)
        ok = np.isfinite(X).all(axis=1)
        if ok.any():
            out[ok] = self.fitted.predict(X[ok])
        return out

    def signal(self, arrays: dict, start: int, end: int) -> np.ndarray:
        """Predictions of rows ``start..end-1`` of the arrays (bars ``0..end-1``)."""
        floor = volume_floor(arrays["volume"][:end])
        X = self.features.rows(arrays["open"], arrays["high"], arrays["low"], arrays["close"],
                               arrays["volume"], floor, start, end)
        return self.predict(X)


class _Coarse:
    """A coarser interval of an ensemble: candles built from delivered base bars, one
    prediction per completed candle, each held for at most one coarse interval."""

    def __init__(self, member, base: str, timeframe: str):
        from .data.timeframes import timeframe_ms

        self.model = _Model(member)
        self.ms = timeframe_ms(timeframe)
        self.per = self.ms // timeframe_ms(base)
        # Bar by bar (next): the open interval and what has completed so far.
        self.bucket, self.count = None, 0
        self.bar = None  # open, high, low, close, volume of the open interval
        self.done = {k: [] for k in ("open", "high", "low", "close", "volume")}
        self.smallest, self.floors = math.inf, []  # volume floor now and at each candle
        self.known = (math.nan, None)  # (prediction, time of the bar that completed it)

    def batch(self, arrays: dict, times: np.ndarray, start: int, end: int) -> np.ndarray:
        """Coarse predictions on base rows ``start..end-1`` from bars ``0..end-1``."""
        bucket = times[:end] // self.ms
        starts = np.flatnonzero(np.diff(bucket, prepend=bucket[0] - 1))
        counts = np.diff(np.append(starts, end))
        whole = counts == self.per  # every base bar of the interval has closed
        out = np.full(end - start, np.nan)
        if not whole.any():
            return out
        # As resample_candles aggregates: over every interval, then the complete ones kept.
        coarse = {
            "open": arrays["open"][starts][whole],
            "high": np.maximum.reduceat(arrays["high"][:end], starts)[whole],
            "low": np.minimum.reduceat(arrays["low"][:end], starts)[whole],
            "close": arrays["close"][starts + counts - 1][whole],
            "volume": np.add.reduceat(arrays["volume"][:end], starts)[whole],
        }
        lasts = (starts + counts - 1)[whole]  # the bar that completes each coarse candle
        prediction = self.model.signal(coarse, 0, len(lasts))
        rows = np.arange(start, end)
        latest = np.searchsorted(lasts, rows, side="right") - 1  # last completed at or before
        seen = latest >= 0
        held = np.zeros(len(rows), dtype=bool)
        held[seen] = times[rows[seen]] - times[lasts[latest[seen]]] <= self.ms - 1
        out[held] = prediction[latest[held]]
        return out

    def step(self, o, h, lo, c, v, time) -> float:
        """The coarse prediction at a new base bar (bar-by-bar mode)."""
        bucket = time // self.ms
        if bucket != self.bucket:
            self.bucket, self.count, self.bar = bucket, 0, [o, h, lo, c, v]
        else:
            bar = self.bar
            bar[1], bar[2], bar[3], bar[4] = max(bar[1], h), min(bar[2], lo), c, bar[4] + v
        self.count += 1
        if self.count == self.per:
            for key, value in zip(self.done, self.bar):
                self.done[key].append(value)
            self.known = (self._predict_last(), time)
        prediction, since = self.known
        if since is None or time - since > self.ms - 1:
            return math.nan
        return prediction

    def _predict_last(self) -> float:
        features = self.model.features
        n = len(self.done["close"])
        keep = min(n, features.lookback)
        arrays = {k: np.asarray(v[-keep:], dtype="float64") for k, v in self.done.items()}
        if arrays["volume"][-1] > 0:
            self.smallest = min(self.smallest, arrays["volume"][-1])
        self.floors.append(self.smallest)
        floor = np.asarray(self.floors[-keep:])
        X = features.rows(arrays["open"], arrays["high"], arrays["low"], arrays["close"],
                          arrays["volume"], floor, keep - 1, keep)
        return float(self.model.predict(X)[0])


class ModelSignal(bt.Indicator):
    """A fitted model's target (the line ``target``) at each bar, computed from the bars
    delivered so far (module docstring); :attr:`predictions` holds the model's prediction
    at each bar computed so far.

    One line only: Backtrader advances every line of every indicator at every bar, which is
    most of what an indicator costs a fast strategy; predictions are kept in a plain array.

    Params
    ------
    fitted : FittedModel or FittedEnsemble
        The model.
    rule : callable
        Predictions (1-D array, one per bar from the first) → targets in ``{-1, 0, +1}``
        (the strategy's ``position_rule``); it must be causal: the target of a row may read
        that row's and earlier predictions only. It is given every prediction up to the
        newest row.
    rowwise : bool
        The rule decides each row from that row's prediction alone (the default
        ``position_rule`` does): bar by bar, it is then given the new row only instead of
        the whole history (which makes bar-by-bar mode quadratic in the rule's cost; that
        mode is Backtrader's fallback for short feeds and a test of this indicator).
    """

    lines = ("target",)
    params = (("fitted", None), ("rule", None), ("rowwise", False))

    def __init__(self):
        fitted = self.p.fitted
        members = getattr(fitted, "members", None)
        if members is None:
            self._base, self._coarse = _Model(fitted), []
        else:
            self._base = _Model(members[0])
            base = fitted.timeframes[0]
            self._coarse = [_Coarse(m, base, tf)
                            for tf, m in zip(fitted.timeframes[1:], members[1:])]
        self._smallest = math.inf  # bar by bar: the volume floor so far...
        self._floors = []  # ...and at each bar (a window reads its rows' own floors)
        self._predictions = array.array("d")

    @property
    def predictions(self) -> np.ndarray:
        """The prediction at each bar computed so far (NaN where undefined), a copy."""
        return np.array(self._predictions, dtype="float64")

    # -- runonce: rows start..end-1 in one batch, from bars 0..end-1 ---------------------------
    def once(self, start, end):
        if end <= start:
            return
        data = self.data
        arrays = {name: _prefix(getattr(data.lines, name), end)
                  for name in ("open", "high", "low", "close", "volume")}
        columns = [self._base.signal(arrays, start, end)]
        if self._coarse:
            times = _ms(_prefix(data.lines.datetime, end))
            columns += [c.batch(arrays, times, start, end) for c in self._coarse]
        signal = _combine(columns)
        target = self._targets(signal, start)
        del self._predictions[start:]  # Backtrader asks for consecutive ranges from 0
        self._predictions.extend(_as_line(signal))
        self.lines.target.array[start:end] = _as_line(target)

    # -- bar by bar: the current row from the last ``lookback`` bars --------------------------
    def next(self):
        data = self.data
        features = self._base.features
        size = min(len(data), features.lookback)
        arrays = {name: np.asarray(getattr(data.lines, name).get(size=size), dtype="float64")
                  for name in ("open", "high", "low", "close", "volume")}
        volume = arrays["volume"][-1]
        if volume > 0:
            self._smallest = min(self._smallest, volume)
        self._floors.append(self._smallest)  # each row's floor as it was at that row
        floor = np.asarray(self._floors[-size:])
        X = features.rows(arrays["open"], arrays["high"], arrays["low"], arrays["close"],
                          arrays["volume"], floor, size - 1, size)
        columns = [self._base.predict(X)]
        if self._coarse:
            time = int(_ms(data.lines.datetime[0]))
            bar = (data.open[0], data.high[0], data.low[0], data.close[0], volume)
            columns += [np.array([c.step(*bar, time)]) for c in self._coarse]
        signal = _combine(columns)
        before = len(self) - 1
        del self._predictions[before:]
        target = self._targets(signal, 0 if self.p.rowwise else before)
        self._predictions.append(float(signal[0]))
        self.lines.target[0] = float(target[0])

    def _targets(self, signal: np.ndarray, before: int) -> np.ndarray:
        """Targets of the new rows ``signal``, given to the rule after the ``before``
        predictions of the rows before them (what a causal rule may read)."""
        past = (np.frombuffer(self._predictions, dtype="float64", count=before).copy()
                if before else np.zeros(0))
        history = np.concatenate((past, signal))
        target = np.asarray(self.p.rule(history), dtype="float64").reshape(-1)
        if len(target) != len(history):
            raise InputError(f"position_rule returned {len(target)} targets for "
                             f"{len(history)} predictions")
        return target[before:]


def _prefix(line, end: int) -> np.ndarray:
    """A copy of a line's first ``end`` values: the batch cannot read past them."""
    return np.frombuffer(line.array, dtype="float64", count=end).copy()


def _combine(columns) -> np.ndarray:
    """One model's predictions, or an ensemble's mean (NaN where any interval's is NaN), as
    :meth:`FittedEnsemble.signal <distillbt.horizons.FittedEnsemble.signal>` defines it."""
    if len(columns) == 1:
        return columns[0]
    stacked = np.vstack(columns)
    out = stacked.mean(axis=0)
    out[~np.isfinite(stacked).all(axis=0)] = np.nan
    return out


def _as_line(values: np.ndarray) -> array.array:
    """Values in the type of Backtrader's line buffers, for slice assignment."""
    return array.array("d", np.ascontiguousarray(values, dtype="float64").tobytes())
