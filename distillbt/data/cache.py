"""Local Parquet cache of exchange candles, updated incrementally and written atomically.

One file per exchange / category / symbol / timeframe::

    <root>/bybit/linear/BTC-USDT-USDT/15m.parquet

The file's schema metadata (key ``distillbt``) records the unified symbol and the spans of
time already asked of the exchange (``covered``), so a later fetch asks only for what is
missing — including spans where the exchange had no candles (before a listing, outages).
Every write goes to a temporary file beside the target, is flushed to disk, then renamed over
it: an interrupted write leaves the previous file whole.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import platformdirs
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import CacheError, CandleValidationError, first_line
from .candles import COLUMNS, Candles, validate_candles

__all__ = ["CandleCache", "CacheKey", "CacheEntry", "default_cache_dir", "merge_spans", "missing_spans"]

FORMAT_VERSION = 1
_META_KEY = b"distillbt"
CACHE_DIR_ENV = "DISTILLBT_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$DISTILLBT_CACHE_DIR``, else the per-user cache directory (e.g. ~/.cache/distillbt)."""
    return Path(os.environ.get(CACHE_DIR_ENV) or platformdirs.user_cache_dir("distillbt"))


@dataclass(frozen=True)
class CacheKey:
    """What a cache file holds: ``exchange``, ``category`` (spot/linear/inverse), unified
    ``symbol`` and ``timeframe``."""

    exchange: str
    category: str
    symbol: str
    timeframe: str

    @property
    def relative_path(self) -> Path:
        safe_symbol = self.symbol.replace("/", "-").replace(":", "-")
        return Path(self.exchange, self.category, safe_symbol, f"{self.timeframe}.parquet")

    @property
    def source(self) -> str:
        """The ``--data`` spelling of this series, e.g. ``bybit:BTC/USDT:USDT:15m``."""
        return f"{self.exchange}:{self.symbol}:{self.timeframe}"


@dataclass(frozen=True)
class CacheEntry:
    """A cached series: its key, file, candles and the spans already fetched."""

    key: CacheKey
    path: Path
    candles: Candles
    covered: list[tuple[int, int]]


def merge_spans(spans) -> list[tuple[int, int]]:
    """Union of half-open ``[start, end)`` spans, sorted, touching spans joined."""
    merged: list[list[int]] = []
    for start, end in sorted((int(s), int(e)) for s, e in spans if e > s):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def missing_spans(start: int, end: int, covered) -> list[tuple[int, int]]:
    """Parts of ``[start, end)`` not inside any of the ``covered`` spans."""
    gaps, cursor = [], int(start)
    for s, e in merge_spans(covered):
        if e <= cursor:
            continue
        if s >= end:
            break
        if s > cursor:
            gaps.append((cursor, min(s, end)))
        cursor = max(cursor, e)
    if cursor < end:
        gaps.append((cursor, int(end)))
    return gaps


class CandleCache:
    """The candle cache under ``root`` (default :func:`default_cache_dir`)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()

    def path(self, key: CacheKey) -> Path:
        return self.root / key.relative_path

    def read(self, key: CacheKey) -> CacheEntry | None:
        """The cached series, or None when nothing is cached for ``key``."""
        path = self.path(key)
        return self._read_path(path) if path.exists() else None

    def write(self, key: CacheKey, frame: pd.DataFrame, covered) -> Path:
        """Atomically replace the file of ``key`` with ``frame`` and its covered spans."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "format_version": FORMAT_VERSION,
            "exchange": key.exchange,
            "category": key.category,
            "symbol": key.symbol,
            "timeframe": key.timeframe,
            "covered": [list(span) for span in merge_spans(covered)],
            "written_at": pd.Timestamp.now(tz="UTC").isoformat(),
        }
        table = pa.Table.from_pandas(frame.loc[:, list(COLUMNS)], preserve_index=True)
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), _META_KEY: json.dumps(meta).encode()}
        )
        _atomic_write_parquet(table, path)
        return path

    def entries(self) -> list[CacheEntry]:
        """Every readable cached series; damaged files raise :class:`CacheError`."""
        if not self.root.exists():
            return []
        return [self._read_path(p) for p in sorted(self.root.glob("*/*/*/*.parquet"))]

    def _read_path(self, path: Path) -> CacheEntry:
        try:
            table = pq.read_table(path)
            meta = json.loads((table.schema.metadata or {})[_META_KEY])
        except (OSError, pa.ArrowException, KeyError, ValueError) as error:
            raise CacheError(
                f"cache file {path} is damaged ({first_line(error)}); "
                "delete it and fetch again"
            ) from error
        if meta.get("format_version", 0) > FORMAT_VERSION:
            raise CacheError(
                f"cache file {path} was written by a newer distillbt (format "
                f"{meta['format_version']}); upgrade distillbt"
            )
        key = CacheKey(meta["exchange"], meta["category"], meta["symbol"], meta["timeframe"])
        frame = table.to_pandas()
        try:
            if len(frame):
                candles = validate_candles(frame, symbol=key.symbol, timeframe=key.timeframe,
                                           source=f"cache:{key.source}")
            else:
                candles = Candles(frame=frame, symbol=key.symbol, timeframe=key.timeframe,
                                  source=f"cache:{key.source}")
        except CandleValidationError as error:
            raise CacheError(f"cache file {path} holds invalid candles: {error}") from error
        covered = [(int(s), int(e)) for s, e in meta.get("covered", [])]
        return CacheEntry(key=key, path=path, candles=candles, covered=covered)


def _atomic_write_parquet(table: pa.Table, path: Path) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            pq.write_table(table, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def rows_to_frame(rows: np.ndarray) -> pd.DataFrame:
    """Exchange rows ``[time_ms, o, h, l, c, v]`` → a candle frame indexed by UTC time."""
    index = pd.DatetimeIndex(pd.to_datetime(rows[:, 0].astype("int64"), unit="ms", utc=True),
                             name="time").as_unit("ns")
    return pd.DataFrame(rows[:, 1:6], index=index, columns=list(COLUMNS))
