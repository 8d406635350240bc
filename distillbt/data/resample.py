"""Resample candles to a longer interval (15m → 1h, 4h, 1d...), without inventing candles.

A coarse candle is built from the base candles whose open time falls in its interval
(intervals aligned to the Unix epoch, as exchanges align them): open of the first, highest
high, lowest low, close of the last, summed volume. Only *complete* coarse candles are kept —
every base candle of the interval present — so a gap or the unfinished interval at either end
never yields a candle that looks whole but is not. The result goes through
:func:`~distillbt.data.candles.validate_candles` like every other source.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError
from .candles import Candles, validate_candles
from .timeframes import timeframe_ms

__all__ = ["resample_candles"]


def resample_candles(candles: Candles, timeframe: str) -> Candles:
    """``candles`` aggregated to ``timeframe`` (a whole multiple of their own interval).

    Returns the candles themselves when ``timeframe`` equals theirs. Raises
    :class:`~distillbt.errors.InputError` when ``timeframe`` is shorter or not a multiple,
    or when no complete coarse candle remains.
    """
    base_ms, target_ms = timeframe_ms(candles.timeframe), timeframe_ms(timeframe)
    if target_ms == base_ms:
        return candles
    if target_ms < base_ms or target_ms % base_ms:
        raise InputError(f"cannot resample {candles.timeframe} candles to {timeframe}: the new "
                         f"interval must be a whole multiple of {candles.timeframe}")
    per = target_ms // base_ms
    frame = candles.frame
    bucket = frame.index.asi8 // (target_ms * 1_000_000)
    _, starts, counts = np.unique(bucket, return_index=True, return_counts=True)
    complete = counts == per
    if not complete.any():
        raise InputError(f"{len(frame)} {candles.timeframe} candles hold no complete {timeframe} "
                         f"candle ({per} in a row, aligned to the interval)")
    values = {c: frame[c].to_numpy() for c in ("open", "high", "low", "close", "volume")}
    stops = starts + counts
    out = pd.DataFrame(
        {
            "open": values["open"][starts][complete],
            "high": np.maximum.reduceat(values["high"], starts)[complete],
            "low": np.minimum.reduceat(values["low"], starts)[complete],
            "close": values["close"][stops - 1][complete],
            "volume": np.add.reduceat(values["volume"], starts)[complete],
        },
        index=pd.DatetimeIndex(bucket[starts][complete] * target_ms * 1_000_000, tz="UTC"),
    )
    starts, stops = starts[complete], stops[complete]
    true = None
    if candles.true_regimes is not None:
        # the regime of most of the coarse candle's base candles (the first on a tie)
        codes = candles.true_regimes.cat.codes.to_numpy()
        modes = [np.bincount(codes[a:b] + 1).argmax() - 1 for a, b in zip(starts, stops)]
        true = pd.Series(pd.Categorical.from_codes(np.array(modes, dtype="int8"),
                                                   categories=candles.true_regimes.cat.categories),
                         index=out.index.as_unit("ns").rename("time"), name="regime")
    return validate_candles(out, symbol=candles.symbol, source=f"{candles.source} resampled to {timeframe}",
                            timeframe=timeframe, synthetic=candles.synthetic, true_regimes=true)
