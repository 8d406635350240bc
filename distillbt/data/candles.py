"""The candle contract and the one validation every loader goes through.

Candles are a pandas DataFrame with a UTC ``DatetimeIndex`` named ``time`` and float64 columns
``open high low close volume``: sorted, unique, one interval. :class:`Candles` carries the
frame together with what must travel with it (symbol, timeframe, source, whether it is
synthetic, the gaps found). Build one only through :func:`validate_candles`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import CandleValidationError, InputError
from .timeframes import timeframe_from_ms, timeframe_ms

__all__ = ["COLUMNS", "Candles", "validate_candles", "find_gaps"]

COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
_PRICES = ("open", "high", "low", "close")


@dataclass(frozen=True, eq=False)
class Candles:
    """Validated candles and their provenance.

    Attributes
    ----------
    frame : DataFrame
        UTC-indexed, float64 ``open high low close volume``; sorted, unique, one interval.
    symbol, timeframe, source : str
        What the candles are, their interval (``"15m"``) and where they came from.
    synthetic : bool
        True for the embedded sample market; reports label such figures as synthetic.
    gaps : DataFrame
        One row per gap (``after``, ``before``, ``missing`` candles); exchanges have them and
        nothing is invented to fill them.
    true_regimes : Series or None
        The simulator's regime name for every candle (sample market only).
    """

    frame: pd.DataFrame
    symbol: str
    timeframe: str
    source: str
    synthetic: bool = False
    gaps: pd.DataFrame = field(default_factory=lambda: _empty_gaps())
    true_regimes: pd.Series | None = None

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def start(self) -> pd.Timestamp:
        """Open time of the first candle."""
        return self.frame.index[0]

    @property
    def end(self) -> pd.Timestamp:
        """Open time of the last candle."""
        return self.frame.index[-1]

    @property
    def missing_candles(self) -> int:
        """How many candles the gaps leave out."""
        return int(self.gaps["missing"].sum()) if len(self.gaps) else 0

    def rows(self, rows: slice, *, source: str | None = None) -> "Candles":
        """The candles ``frame.iloc[rows]`` (their true regimes too), validated, with the same
        provenance (``source`` to say how they were cut)."""
        frame = self.frame.iloc[rows]
        if frame.empty:
            raise InputError(f"no candles in rows {rows.start}:{rows.stop} of {len(self)}")
        true = self.true_regimes.iloc[rows] if self.true_regimes is not None else None
        return validate_candles(frame, symbol=self.symbol, source=source or self.source,
                                timeframe=self.timeframe, synthetic=self.synthetic, true_regimes=true)

    def summary(self) -> dict:
        """Plain-dict summary (for printing and JSON): rows, range, interval, gaps."""
        return {
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "source": self.source,
            "synthetic": self.synthetic,
            "rows": len(self),
            "first": self.start.isoformat(),
            "last": self.end.isoformat(),
            "gaps": len(self.gaps),
            "missing_candles": self.missing_candles,
        }


def _empty_gaps() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "after": pd.Series([], dtype="datetime64[ns, UTC]"),
            "before": pd.Series([], dtype="datetime64[ns, UTC]"),
            "missing": pd.Series([], dtype="int64"),
        }
    )


def find_gaps(index: pd.DatetimeIndex, step_ms: int) -> pd.DataFrame:
    """Gaps in a sorted index of candle open times with interval ``step_ms``."""
    if len(index) < 2:
        return _empty_gaps()
    ns = index.asi8
    steps = np.diff(ns) // (step_ms * 1_000_000)
    where = np.flatnonzero(steps > 1)
    return pd.DataFrame(
        {
            "after": index[where],
            "before": index[where + 1],
            "missing": (steps[where] - 1).astype("int64"),
        }
    )


def _fail(rule: str, message: str, frame: pd.DataFrame | None = None, row: int | None = None):
    time = None
    if frame is not None and row is not None:
        time = frame.index[row]
        message = f"row {row} ({time}): {message}"
    raise CandleValidationError(f"{message} [rule: {rule}]", rule=rule, row=row, time=time)


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if len(hits) else None


def validate_candles(
    frame: pd.DataFrame,
    *,
    symbol: str,
    source: str,
    timeframe: str | None = None,
    synthetic: bool = False,
    true_regimes: pd.Series | None = None,
) -> Candles:
    """Check ``frame`` against the candle contract and return :class:`Candles`.

    ``frame`` needs a DatetimeIndex (naive times are taken as UTC) and the columns ``open
    high low close volume`` (others are dropped). ``timeframe`` is inferred as the most
    common spacing when not given. Raises :class:`~distillbt.errors.CandleValidationError`
    naming the first offending row, its time and the rule: empty input, missing columns,
    non-numeric values, NaN/inf, non-positive prices, high below low, high below
    max(open, close), low above min(open, close), negative volume, duplicate or unsorted
    timestamps, spacing that is not a whole number of intervals (mixed intervals). Gaps
    (whole missing intervals) are reported in ``Candles.gaps``, never filled.
    """
    if frame is None or len(frame) == 0:
        _fail("non-empty", "empty input: no candles")
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        _fail("columns", f"missing column(s) {', '.join(missing)}; found {list(frame.columns)}")
    if not isinstance(frame.index, pd.DatetimeIndex):
        _fail("datetime index", f"the index must hold timestamps, not {frame.index.dtype}")

    index = frame.index
    if index.hasnans:
        _fail("timestamp", "missing or unparseable timestamp", frame, _first(index.isna()))
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    try:
        index = index.as_unit("ns").rename("time")
    except (OverflowError, ValueError):  # OutOfBoundsDatetime: beyond 1677..2262
        lo, hi = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
        _fail("timestamp", f"time outside the supported range {lo.date()} .. {hi.date()}",
              frame, _first(np.asarray((index < lo) | (index > hi))))

    data = {}
    for col in COLUMNS:
        values = frame[col]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            numeric = pd.to_numeric(values, errors="coerce")
            bad = _first((numeric.isna() & values.notna()).to_numpy())
            if bad is not None:
                _fail("numeric", f"{col} is not a number: {values.iloc[bad]!r}", frame, bad)
            values = numeric
        data[col] = values.to_numpy(dtype="float64", na_value=np.nan)
    clean = pd.DataFrame(data, index=index)

    for col in COLUMNS:
        bad = _first(~np.isfinite(data[col]))
        if bad is not None:
            _fail("finite", f"{col} is {data[col][bad]} (NaN/inf not allowed)", clean, bad)
    for col in _PRICES:
        bad = _first(data[col] <= 0)
        if bad is not None:
            _fail("price>0", f"{col} is {data[col][bad]:g}, prices must be positive", clean, bad)
    o, h, lo, c, v = (data[col] for col in COLUMNS)
    bad = _first(h < lo)
    if bad is not None:
        _fail("high>=low", f"high {h[bad]:g} is below low {lo[bad]:g}", clean, bad)
    bad = _first(h < np.maximum(o, c))
    if bad is not None:
        _fail("high>=max(open,close)",
              f"high {h[bad]:g} is below max(open, close) {max(o[bad], c[bad]):g}", clean, bad)
    bad = _first(lo > np.minimum(o, c))
    if bad is not None:
        _fail("low<=min(open,close)",
              f"low {lo[bad]:g} is above min(open, close) {min(o[bad], c[bad]):g}", clean, bad)
    bad = _first(v < 0)
    if bad is not None:
        _fail("volume>=0", f"volume is {v[bad]:g}, must not be negative", clean, bad)

    ns = index.asi8
    steps = np.diff(ns)
    bad = _first(steps == 0)
    if bad is not None:
        _fail("unique timestamps", f"duplicate timestamp (same as row {bad})", clean, bad + 1)
    bad = _first(steps < 0)
    if bad is not None:
        _fail("sorted timestamps",
              f"timestamp goes back in time (row {bad} is {index[bad]})", clean, bad + 1)

    if timeframe is not None:
        step_ms = timeframe_ms(timeframe)
    elif len(steps):
        values, counts = np.unique(steps, return_counts=True)
        step_ns = int(values[np.argmax(counts)])
        if step_ns < 1_000_000:
            _fail("interval",
                  f"candles only {pd.Timedelta(step_ns, unit='ns')} apart: an interval must be "
                  f"at least 1 ms", clean, _first(steps == step_ns) + 1)
        step_ms = step_ns // 1_000_000
        timeframe = timeframe_from_ms(step_ms)
    else:
        _fail("interval", "cannot infer the candle interval from a single candle; give a timeframe")
    bad = _first(steps % (step_ms * 1_000_000) != 0)
    if bad is not None:
        gap = pd.Timedelta(int(steps[bad]), unit="ns")
        _fail("one interval",
              f"mixed intervals: {gap} after the previous candle is not a whole number of "
              f"{timeframe} intervals", clean, bad + 1)

    return Candles(
        frame=clean,
        symbol=symbol,
        timeframe=timeframe,
        source=source,
        synthetic=synthetic,
        gaps=find_gaps(index, step_ms),
        true_regimes=true_regimes,
    )
