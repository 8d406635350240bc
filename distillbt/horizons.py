"""Multi-horizon model strategies: one model per candle interval, trading their mean prediction.

A :class:`~distillbt.strategy.ModelStrategy` with ``horizons=("1h", "4h")`` trading 15m
candles fits its model three times — on the 15m candles and on the same candles resampled to
1h and 4h (complete, epoch-aligned candles only; :func:`~distillbt.data.resample.resample_candles`)
or on the matching parts of a multi-horizon distilled set (``distill --timeframes``) — and
trades the mean of the three predictions. A coarse candle's prediction is used from the close
of its last base candle on (never earlier: it is computed from that candle's close), for at
most one coarse interval (a missing coarse candle leaves the mean undefined, not stale), so
the signal stays causal. The mean is undefined (no position) until every interval's features
are warm.

Predictions are averaged as they come: probabilities for a ``"direction"`` strategy,
standardised returns (each interval's return divided by its own training standard deviation)
for a ``"return"`` one — a mean of z-scores, which the strategy's thresholds read as they read
one.
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .data.candles import Candles, validate_candles
from .data.resample import resample_candles
from .data.timeframes import timeframe_from_ms, timeframe_ms
from .errors import InputError

__all__ = ["FittedEnsemble", "check_horizons", "frame_timeframe", "resampled_frame"]


def frame_timeframe(candles) -> str:
    """The candle interval of :class:`Candles` (theirs) or of a time-indexed frame (its most
    common spacing)."""
    if isinstance(candles, Candles):
        return candles.timeframe
    index = candles.index
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 2:
        raise InputError("a multi-horizon model needs candles with a time index (at least two)")
    steps = np.diff(index.as_unit("ns").asi8) // 1_000_000
    values, counts = np.unique(steps, return_counts=True)
    return timeframe_from_ms(int(values[np.argmax(counts)]))


def check_horizons(base: str, horizons) -> tuple[str, ...]:
    """``horizons`` as a tuple of interval names, each a longer whole multiple of ``base``."""
    if isinstance(horizons, str):
        horizons = tuple(h.strip() for h in horizons.split(",") if h.strip())
    out = tuple(str(h) for h in horizons)
    base_ms = timeframe_ms(base)
    for h in out:
        ms = timeframe_ms(h)
        if ms <= base_ms or ms % base_ms:
            raise InputError(f"horizon {h} must be a longer whole multiple of the candles' {base}")
    if len(set(out)) != len(out):
        raise InputError(f"horizons repeat an interval: {', '.join(out)}")
    return out


def resampled_frame(frame: pd.DataFrame, base: str, timeframe: str) -> pd.DataFrame:
    """``frame`` (time-indexed ``base`` candles) resampled to ``timeframe``: complete coarse
    candles only, indexed by their open time."""
    candles = validate_candles(frame[["open", "high", "low", "close", "volume"]], symbol="-", source="feed",
                               timeframe=base)
    return resample_candles(candles, timeframe).frame


@dataclass(frozen=True, eq=False)
class FittedEnsemble:
    """Models of one strategy fitted at several candle intervals (``timeframes[0]``: the
    interval it trades; ``members`` in the same order), trading their mean prediction.

    It stands wherever a :class:`~distillbt.strategy.FittedModel` does (``fitted=``,
    ``vectorised``, the screen): ``signal`` gives one prediction per base candle, and
    ``strategy``, ``fit_key``, ``target``... are the trading interval's model's.
    """

    timeframes: tuple
    members: tuple

    def __post_init__(self):
        if len(self.timeframes) != len(self.members) or len(self.members) < 2:
            raise InputError("an ensemble needs one model per interval, two intervals at least")

    def __getattr__(self, name):
        # strategy, fit_key, target, horizon, feature_names... of the trading interval's model
        if name in ("timeframes", "members") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.members[0], name)

    @property
    def notes(self) -> tuple:
        joined = [f"mean prediction of models at {', '.join(self.timeframes)}"]
        for tf, member in zip(self.timeframes, self.members):
            joined += [f"{tf}: {note}" for note in member.notes]
        return tuple(joined)

    def signal(self, candles, *, feature_set=None) -> np.ndarray:
        """One mean prediction per base candle of ``candles`` (time-indexed), NaN where any
        interval's is undefined. ``feature_set``: precomputed features of the base candles."""
        from .features import ohlcv_frame

        frame = ohlcv_frame(candles)
        base = self.timeframes[0]
        # Rule variants of one fit (a threshold grid) ask for the same candles' coarse
        # predictions in turn: resampling and coarse features are computed once per candles.
        memo = _COARSE.setdefault(self, {})
        key = _candles_key(frame)
        if key not in memo:
            memo.clear()  # only the latest candles: a screen asks for one series at a time
            memo[key] = [_coarse_signal(member, frame, base, tf)
                         for tf, member in zip(self.timeframes[1:], self.members[1:])]
        columns = [self.members[0].signal(frame, feature_set=feature_set), *memo[key]]
        stacked = np.vstack(columns)
        out = stacked.mean(axis=0)
        out[~np.isfinite(stacked).all(axis=0)] = np.nan
        return out


#: Per ensemble (weakly held, never pickled): the coarse predictions of the latest candles.
_COARSE: "weakref.WeakKeyDictionary[FittedEnsemble, dict]" = weakref.WeakKeyDictionary()


def _candles_key(frame: pd.DataFrame) -> tuple:
    """Identifies candles by their times and values (a digest: same range, other prices differ)."""
    digest = hashlib.blake2b(np.ascontiguousarray(pd.DatetimeIndex(frame.index).asi8).tobytes(), digest_size=16)
    digest.update(np.ascontiguousarray(frame[["open", "high", "low", "close", "volume"]].to_numpy()).tobytes())
    return len(frame), digest.hexdigest()


def _coarse_signal(member, frame: pd.DataFrame, base: str, timeframe: str) -> np.ndarray:
    """``member``'s predictions on ``frame`` resampled to ``timeframe``, on the base candles:
    each from the base candle that closes its coarse candle, for one coarse interval."""
    try:
        coarse = resampled_frame(frame, base, timeframe)
    except InputError:  # no complete coarse candle yet: nothing to say
        return np.full(len(frame), np.nan)
    prediction = member.signal(coarse)
    lag = pd.Timedelta(milliseconds=timeframe_ms(timeframe) - timeframe_ms(base))
    known = pd.DataFrame({"time": (coarse.index + lag).as_unit("ns"), "prediction": prediction})
    wanted = pd.DataFrame({"time": frame.index.as_unit("ns")})
    merged = pd.merge_asof(wanted, known, on="time", direction="backward",
                           tolerance=pd.Timedelta(milliseconds=timeframe_ms(timeframe) - 1))
    return merged["prediction"].to_numpy(dtype="float64")
