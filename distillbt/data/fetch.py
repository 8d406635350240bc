"""Fetch exchange candles into the cache, asking only for what is missing."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..errors import InputError
from .bybit import BybitClient
from .cache import CacheKey, CandleCache, missing_spans, rows_to_frame
from .candles import Candles, validate_candles
from .symbols import category_of

__all__ = ["fetch_candles", "FetchReport", "to_ms"]


@dataclass(frozen=True)
class FetchReport:
    """What a fetch did. Times are UTC; ``seconds`` is wall time."""

    key: CacheKey
    path: Path
    candles: Candles
    fetched_candles: int
    requests: int
    asked_spans: list[tuple[int, int]] = field(default_factory=list)
    seconds: float = 0.0

    def summary_lines(self) -> list[str]:
        """Human summary; the last line is the cache file's path."""
        c = self.candles
        asked = ", ".join(f"{_iso(s)} → {_iso(e)}" for s, e in self.asked_spans) or "nothing (cache up to date)"
        lines = [
            f"{self.key.exchange} {self.key.category} {self.key.symbol} {self.key.timeframe}: "
            f"fetched {self.fetched_candles} new candles in {self.requests} requests ({self.seconds:.1f} s)",
            f"asked for: {asked}",
        ]
        if len(c):
            lines.append(f"cached: {len(c)} candles, {c.start.isoformat()} → {c.end.isoformat()}")
            lines.append(f"gaps: {len(c.gaps)} ({c.missing_candles} missing candles)")
        else:
            lines.append("cached: no candles in the range asked (not listed yet?)")
        lines.append(str(self.path))
        return lines


def to_ms(value, *, name: str = "time") -> int:
    """Epoch milliseconds of a date/time (ISO text, Timestamp, or epoch ms); naive means UTC."""
    if isinstance(value, (int, np.integer)):
        return int(value)
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as error:
        raise InputError(f"{name}: cannot read {value!r} as a date (use e.g. 2024-01-31)") from error
    if stamp is pd.NaT:
        raise InputError(f"{name}: {value!r} is not a date")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.value // 1_000_000)


def _iso(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").isoformat()


def fetch_candles(
    symbol: str,
    timeframe: str,
    *,
    since,
    until=None,
    cache_dir=None,
    api_url: str | None = None,
    client: BybitClient | None = None,
    progress: bool = True,
    checkpoint_pages: int = 50,
) -> FetchReport:
    """Bring the cache of ``symbol``/``timeframe`` up to ``[since, until)`` from Bybit.

    Only spans not fetched before are requested; new candles are merged with the cached ones
    (an exchange candle replaces a cached one with the same time); the result is validated
    and written atomically every ``checkpoint_pages`` requests and at the end, so an
    interrupted fetch keeps what it had. ``until`` defaults to now; the unfinished candle is
    never stored. Raises :class:`~distillbt.errors.UnknownSymbolError`,
    :class:`~distillbt.errors.UnknownTimeframeError`,
    :class:`~distillbt.errors.ExchangeError` subclasses, or
    :class:`~distillbt.errors.CandleValidationError` if the exchange sent broken candles
    (the cache is then left as it was).
    """
    started = time.perf_counter()
    client = client or BybitClient(api_url=api_url)
    step = client.check_timeframe(timeframe)
    key = CacheKey(client.id, category_of(symbol), symbol, timeframe)
    since_ms = to_ms(since, name="since")
    until_ms = min(to_ms(until, name="until") if until is not None else 2**62,
                   client.exchange.milliseconds())
    if until_ms <= since_ms:
        raise InputError(f"empty range: until ({_iso(until_ms)}) is not after since ({_iso(since_ms)})")

    cache = CandleCache(cache_dir)
    entry = cache.read(key)
    frame = entry.candles.frame if entry else rows_to_frame(np.empty((0, 6)))
    covered = list(entry.covered) if entry else []
    spans = missing_spans(since_ms, until_ms, covered)
    requests_before = client.requests_made
    pending: list[np.ndarray] = []
    fetched = 0
    path = cache.path(key)

    def checkpoint():
        nonlocal frame, pending
        if pending:
            new = rows_to_frame(np.concatenate(pending))
            merged = pd.concat([frame, new])
            frame = merged[~merged.index.duplicated(keep="last")].sort_index()
            pending = []
        if len(frame):
            validate_candles(frame, symbol=symbol, timeframe=timeframe, source=f"{client.id}:{key.category}")
        return cache.write(key, frame, covered)

    if spans:
        client.market(symbol)  # unknown symbols fail here, before any kline request
        total = sum(-(-(e - s) // step) for s, e in spans)
        with tqdm(total=total, unit="candle", unit_scale=True, disable=not progress,
                  desc=f"{symbol} {timeframe}", leave=False) as bar:
            pages = 0
            for span_start, span_end in spans:
                for page in client.iter_pages(symbol, timeframe, span_start, span_end):
                    pending.append(page.rows)
                    covered.append((page.start_ms, page.end_ms))
                    fetched += len(page.rows)
                    bar.update((page.end_ms - page.start_ms) // step)
                    pages += 1
                    if pages % checkpoint_pages == 0:
                        checkpoint()
        path = checkpoint()

    candles = cache.read(key).candles
    return FetchReport(
        key=key, path=path, candles=candles, fetched_candles=fetched,
        requests=client.requests_made - requests_before, asked_spans=spans,
        seconds=time.perf_counter() - started,
    )
