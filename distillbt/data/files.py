"""Candles from local files: CSV (``.csv``, ``.txt``), Parquet (``.parquet``, ``.pq``) and
Feather / Arrow IPC (``.feather``, ``.arrow``).

Accepted formats
----------------
Columns are matched case-insensitively, ignoring spaces, underscores, hyphens and dots
(``"Open time"``, ``open_time`` and ``OpenTime`` are the same column):

======== ===================================================================
column   accepted names
======== ===================================================================
time     ``Datetime``/``date_time``, ``timestamp``, ``open_time``/``"Open time"``,
         ``Date``, ``time`` (first found in that order); in Parquet/Feather a
         ``DatetimeIndex`` stored with the frame is used first. A ``Date`` column of
         calendar dates next to a ``Time`` column of clock times (``09:30``,
         ``09:30:00``) is combined into one timestamp.
open     ``open``, ``o``
high     ``high``, ``h``
low      ``low``, ``l``
close    ``close``, ``c``
volume   ``volume``, ``vol``, ``v`` (required: a file without volume is rejected,
         nothing is invented)
======== ===================================================================

Every other column (``Adj Close``, ``trades``, ``close_time`` ...) is ignored. A Yahoo
Finance CSV (``Date,Open,High,Low,Close,Adj Close,Volume``) loads as it is.

Time values may be

* a datetime column: naive times are taken as UTC, tz-aware times are converted to UTC;
* text: ISO 8601 dates or date-times with or without a UTC offset (``1995-01-03``,
  ``2024-01-01 09:30:00``, ``2024-01-01T09:30:00+02:00``, ``...Z``), or another single
  format pandas can infer from the first value (``01/03/1995`` is read month first);
* numbers (or text made only of digits): Unix epoch times whose unit is chosen by magnitude
  of the median absolute value: below 1e11 seconds, below 1e14 milliseconds, below 1e17
  microseconds, else nanoseconds (so millisecond times before 1973 would be misread as
  seconds). Integers that are all valid ``YYYYMMDD`` dates (e.g. ``19950103``) are read as
  dates, not as seconds in 1970.

The CSV delimiter is the most frequent of ``, ; <tab> |`` in the header line. Rows are never
sorted, de-duplicated or filled: the frame goes through
:func:`~distillbt.data.candles.validate_candles` as read, so unsorted or duplicate timestamps
are rejected and gaps are reported in ``Candles.gaps``.

Errors are one line naming the file: :class:`~distillbt.errors.DataSourceError` when the file
is missing, unreadable, malformed or of an unsupported kind;
:class:`~distillbt.errors.CandleValidationError` (with ``rule``, ``row``, ``time``) when its
columns or values break the candle contract (``rule`` ``"columns"`` for a missing time or
price/volume column, ``"timestamp"`` for an unparseable time).
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CandleValidationError, DataSourceError, first_line
from .candles import COLUMNS, Candles, validate_candles
from .timeframes import timeframe_ms

__all__ = ["SUPPORTED_SUFFIXES", "load_file"]

SUPPORTED_SUFFIXES: tuple[str, ...] = (".csv", ".txt", ".parquet", ".pq", ".feather", ".arrow")

_CSV = (".csv", ".txt")
_PARQUET = (".parquet", ".pq")
_FEATHER = (".feather", ".arrow")

#: Normalised time-column names, most specific first.
_TIME_NAMES: tuple[str, ...] = ("datetime", "timestamp", "opentime", "date", "time")
#: Normalised spellings of each candle column.
_ALIASES: dict[str, tuple[str, ...]] = {
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c"),
    "volume": ("volume", "vol", "v"),
}
_TIME_HELP = "Date, Datetime, date_time, time, timestamp, open_time or 'Open time'"

_NUMBER_RE = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_CLOCK_RE = r"\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
_EPOCH_FACTOR = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
_NS_LIMIT = float(np.iinfo(np.int64).max)


def _norm(name) -> str:
    """Column name as compared: lower case without spaces, underscores, hyphens or dots."""
    return re.sub(r"[\s_\-.]+", "", str(name)).lower()


def load_file(path, *, symbol: str | None = None, timeframe: str | None = None) -> Candles:
    """Load candles from a CSV, Parquet or Feather file and validate them.

    Parameters
    ----------
    path : str or os.PathLike
        The file; its suffix (case-insensitive) chooses the reader, see
        :data:`SUPPORTED_SUFFIXES`. Accepted columns and time formats are described in this
        module's docstring.
    symbol : str, optional
        Defaults to the file name without its suffix (``ETH_BTC-5m.feather`` → ``ETH_BTC-5m``).
    timeframe : str, optional
        The candle interval (``"5m"``, ``"1d"``); inferred as the most common spacing when not
        given. Gaps are reported against it.

    Returns
    -------
    Candles
        ``source`` is ``"file:<path>"``.

    Raises
    ------
    DataSourceError
        Missing or unreadable file, unsupported suffix, malformed CSV.
    CandleValidationError
        No time column, a missing price or volume column, unparseable timestamps, or any rule
        of :func:`~distillbt.data.candles.validate_candles`.
    UnknownTimeframeError
        ``timeframe`` is not an interval name.
    """
    if timeframe is not None:
        timeframe_ms(timeframe)  # fail on a bad interval name before reading anything
    name = os.fspath(path)
    file = Path(name)
    if symbol is None:
        symbol = file.stem
    source = f"file:{name}"

    raw = _read(file, name)
    frame = _to_candle_frame(raw, name)
    try:
        return validate_candles(frame, symbol=symbol, source=source, timeframe=timeframe)
    except CandleValidationError as e:
        raise CandleValidationError(f"{name}: {e}", rule=e.rule, row=e.row, time=e.time) from e


# --------------------------------------------------------------------------------- reading


def _read(file: Path, name: str) -> pd.DataFrame:
    if not file.exists():
        raise DataSourceError(f"{name}: file not found")
    if not file.is_file():
        raise DataSourceError(f"{name}: not a file")
    suffix = file.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DataSourceError(
            f"{name}: unsupported file type {file.suffix or '(no suffix)'!r}; "
            f"expected one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    kind = "CSV"
    try:
        if suffix in _CSV:
            return _read_csv(file, name)
        if suffix in _PARQUET:
            kind = "Parquet"
            return pd.read_parquet(file)
        kind = "Feather/Arrow"
        return pd.read_feather(file)
    except DataSourceError:
        raise
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DataSourceError(f"{name}: malformed CSV: {first_line(e)}") from e
    except UnicodeDecodeError as e:
        raise DataSourceError(f"{name}: cannot read as UTF-8 text: {first_line(e)}") from e
    except OSError as e:
        raise DataSourceError(f"{name}: cannot read: {e.strerror or first_line(e)}") from e
    except Exception as e:  # pyarrow's ArrowInvalid & co: damaged or not that format
        raise DataSourceError(f"{name}: cannot read as {kind}: {first_line(e)}") from e


def _read_csv(file: Path, name: str) -> pd.DataFrame:
    with open(file, encoding="utf-8-sig", newline="") as handle:
        header = ""
        for line in handle:
            if line.strip():
                header = line
                break
    if not header:
        raise DataSourceError(f"{name}: malformed CSV: the file is empty")
    counts = {sep: header.count(sep) for sep in (",", ";", "\t", "|")}
    sep = max(counts, key=counts.get) if max(counts.values()) else ","
    return pd.read_csv(file, sep=sep, encoding="utf-8-sig")


# ------------------------------------------------------------------------------- columns


def _to_candle_frame(raw: pd.DataFrame, name: str) -> pd.DataFrame:
    """Pick the time and candle columns of ``raw``; return them with a DatetimeIndex."""
    index_times = None
    if isinstance(raw.index, pd.DatetimeIndex):
        index_times = raw.index
    elif not isinstance(raw.index, pd.RangeIndex) or raw.index.name is not None:
        raw = raw.reset_index()  # a stored index (e.g. epoch ints named "timestamp")

    by_key: dict[str, list] = {}
    for column in raw.columns:
        by_key.setdefault(_norm(column), []).append(column)

    def pick(keys) -> object | None:
        for key in keys:
            found = by_key.get(key, [])
            if len(found) > 1:
                raise CandleValidationError(
                    f"{name}: ambiguous columns {found}: they are the same column spelt "
                    f"differently [rule: columns]",
                    rule="columns",
                )
            if found:
                return found[0]
        return None

    picked = {col: pick(aliases) for col, aliases in _ALIASES.items()}
    time_col = None if index_times is not None else pick(_TIME_NAMES)
    found = list(map(str, raw.columns))
    if index_times is None and time_col is None and not any(picked.values()):
        raise CandleValidationError(
            f"{name}: no time, price or volume column recognised in {found} "
            f"(does the file have a header row?) [rule: columns]",
            rule="columns",
        )
    missing = [col for col, column in picked.items() if column is None]
    if missing:
        raise CandleValidationError(
            f"{name}: missing column(s) {', '.join(missing)}; found {found} [rule: columns]",
            rule="columns",
        )

    if index_times is not None:
        times = pd.DatetimeIndex(index_times)
        times = times.tz_localize("UTC") if times.tz is None else times.tz_convert("UTC")
    else:
        if time_col is None:
            raise CandleValidationError(
                f"{name}: no time column: expected one of {_TIME_HELP}; found {found} "
                f"[rule: columns]",
                rule="columns",
            )
        values = raw[time_col]
        clock = pick(("time",))
        if _norm(time_col) == "date" and clock is not None and _is_clock(raw[clock]):
            values = values.astype("string").str.strip() + " " + raw[clock].astype("string")
            time_col = f"{time_col} + {clock}"
        times = _parse_times(values, name, time_col)

    data = {col: raw[found].to_numpy() for col, found in picked.items()}
    return pd.DataFrame(data, index=times, columns=list(COLUMNS))


def _is_clock(values: pd.Series) -> bool:
    if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
        return False
    text = values.dropna().astype(str).str.strip()
    return len(text) > 0 and bool(text.str.fullmatch(_CLOCK_RE).all())


# --------------------------------------------------------------------------------- times


def _bad_time(name: str, column, row: int, value, why: str = "cannot parse time"):
    raise CandleValidationError(
        f"{name}: row {row}: {why} {value!r} in column {column!r} [rule: timestamp]",
        rule="timestamp",
        row=row,
    )


def _parse_times(values: pd.Series, name: str, column) -> pd.DatetimeIndex:
    """Time column → UTC DatetimeIndex (NaT where the value is missing)."""
    values = values.reset_index(drop=True)
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    if pd.api.types.is_bool_dtype(values):
        raise CandleValidationError(
            f"{name}: time column {column!r} holds booleans, not times [rule: timestamp]",
            rule="timestamp",
        )
    if pd.api.types.is_numeric_dtype(values):
        return _from_numbers(values, name, column)

    if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
        # objects: datetime.date, Timestamp, mixed...
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return pd.DatetimeIndex(pd.to_datetime(values, utc=True))
        except (ValueError, TypeError, OverflowError):
            values = values.map(lambda v: v if v is None or v != v else str(v))

    text = values.astype("string").str.strip()
    text = text.mask(text == "")
    present = text.notna().to_numpy()
    if present.any() and bool(text[present].str.fullmatch(_NUMBER_RE).all()):
        return _from_numbers(pd.to_numeric(text), name, column)
    return _from_text(text, name, column)


def _from_text(text: pd.Series, name: str, column) -> pd.DatetimeIndex:
    for fmt in ("ISO8601", None):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "could not infer format" chatter
                return pd.DatetimeIndex(pd.to_datetime(text, utc=True, format=fmt))
        except (ValueError, TypeError, OverflowError):
            continue
    present = text.notna().to_numpy()
    best = None
    for fmt in ("ISO8601", None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                parsed = pd.to_datetime(text, utc=True, format=fmt, errors="coerce")
            except (ValueError, TypeError, OverflowError):
                continue
        bad = np.flatnonzero(parsed.isna().to_numpy() & present)
        if len(bad) and (best is None or len(bad) < len(best)):
            best = bad
    row = int(best[0]) if best is not None else int(np.flatnonzero(present)[0])
    _bad_time(name, column, row, text.iloc[row])


def _from_numbers(values: pd.Series, name: str, column) -> pd.DatetimeIndex:
    """Epoch numbers (unit by magnitude) or YYYYMMDD integers → UTC DatetimeIndex."""
    numbers = values.to_numpy(dtype="float64", na_value=np.nan)
    finite = np.isfinite(numbers)
    bad = np.flatnonzero(~finite & ~np.isnan(numbers))
    if len(bad):
        _bad_time(name, column, int(bad[0]), values.iloc[int(bad[0])], "not a time:")
    if not finite.any():
        return pd.DatetimeIndex(np.full(len(numbers), np.datetime64("NaT", "ns"))).tz_localize(
            "UTC")

    whole = bool(np.all(numbers[finite] == np.round(numbers[finite])))
    if whole and np.all((numbers[finite] >= 1000_01_01) & (numbers[finite] <= 2999_12_31)):
        as_text = pd.Series(numbers).map(lambda v: f"{v:.0f}" if v == v else None)
        parsed = pd.to_datetime(as_text, format="%Y%m%d", errors="coerce", utc=True)
        if not bool((parsed.isna().to_numpy() & finite).any()):
            return pd.DatetimeIndex(parsed)

    magnitude = float(np.median(np.abs(numbers[finite])))
    unit = ("s" if magnitude < 1e11 else "ms" if magnitude < 1e14
            else "us" if magnitude < 1e17 else "ns")
    factor = _EPOCH_FACTOR[unit]
    if pd.api.types.is_integer_dtype(values) and not values.hasnans:
        ints = values.to_numpy(dtype="int64")
        over = np.flatnonzero(np.abs(ints) > (np.iinfo(np.int64).max // factor))
        if len(over):
            _bad_time(name, column, int(over[0]), values.iloc[int(over[0])],
                      f"epoch time (in {unit}) out of range:")
        ns = ints * factor
    else:
        scaled = numbers * factor
        over = np.flatnonzero(finite & (np.abs(scaled) >= _NS_LIMIT))
        if len(over):
            _bad_time(name, column, int(over[0]), values.iloc[int(over[0])],
                      f"epoch time (in {unit}) out of range:")
        ns = np.where(finite, np.round(scaled), 0).astype("int64")
        ns[~finite] = np.iinfo(np.int64).min  # NaT
    return pd.DatetimeIndex(ns.view("M8[ns]")).tz_localize("UTC")
