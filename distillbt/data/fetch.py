"""Fetch exchange candles into the cache, asking only for what is missing."""

from __future__ import annotations

import copy
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..errors import DataSourceError, DistillbtError, ExchangeError, InputError, first_line
from .bybit import BybitClient
from .cache import CacheKey, CandleCache, missing_spans, rows_to_frame
from .candles import Candles, validate_candles
from .symbols import category_of
from .timeframes import timeframe_ms

__all__ = ["fetch_candles", "FetchReport", "to_ms", "fetch_many", "FetchManyReport", "SymbolResult",
           "read_symbols_file", "split_symbols", "DEFAULT_CONCURRENCY"]

log = logging.getLogger(__name__)

#: Symbols fetched at once by :func:`fetch_many` (threads sharing one rate-limited client).
DEFAULT_CONCURRENCY = 4


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


def _time_range(client: BybitClient, since, until) -> tuple[int, int]:
    """``[since, until)`` in epoch ms, ``until`` capped at now; InputError when empty."""
    since_ms = to_ms(since, name="since")
    until_ms = min(to_ms(until, name="until") if until is not None else 2**62,
                   client.exchange.milliseconds())
    if until_ms <= since_ms:
        raise InputError(f"empty range: until ({_iso(until_ms)}) is not after since ({_iso(since_ms)})")
    return since_ms, until_ms


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
    on_progress: Callable[[int, int], None] | None = None,
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

    ``on_progress(total, done)``, when given, is told the candle intervals to settle (once,
    ``done`` 0) and then each page's (``total`` 0): :func:`fetch_many` sums them in one bar.
    """
    started = time.perf_counter()
    client = client or BybitClient(api_url=api_url)
    step = client.check_timeframe(timeframe)
    key = CacheKey(client.id, category_of(symbol), symbol, timeframe)
    since_ms, until_ms = _time_range(client, since, until)

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
        if on_progress is not None:
            on_progress(total, 0)
        with tqdm(total=total, unit="candle", unit_scale=True, disable=not progress,
                  desc=f"{symbol} {timeframe}", leave=False) as bar:
            pages = 0
            for span_start, span_end in spans:
                for page in client.iter_pages(symbol, timeframe, span_start, span_end):
                    pending.append(page.rows)
                    covered.append((page.start_ms, page.end_ms))
                    fetched += len(page.rows)
                    bar.update((page.end_ms - page.start_ms) // step)
                    if on_progress is not None:
                        on_progress(0, (page.end_ms - page.start_ms) // step)
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


# -- several symbols -------------------------------------------------------------------------
@dataclass(frozen=True)
class SymbolResult:
    """One symbol of a :func:`fetch_many` run: its :class:`FetchReport`, or the one-line
    ``error`` (and its exception type's name, ``error_type``) that stopped it."""

    symbol: str
    timeframe: str
    report: FetchReport | None = None
    error: str | None = None
    error_type: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def line(self) -> str:
        """``BTC/USDT:USDT 15m: 2,880 candles (2,880 new), 2024-01-01 00:00 → 2024-01-30 23:45``:
        the cached series after the run (all of it, not only the range asked) and how many of
        its candles this run brought; or ``SYMBOL TF: FAILED: why``."""
        head = f"{self.symbol} {self.timeframe}:"
        if not self.ok:
            return f"{head} FAILED: {self.error}"
        c, new = self.report.candles, self.report.fetched_candles
        if not len(c):
            return f"{head} 0 candles: none in the range asked (not listed yet?)"
        gaps = f", {len(c.gaps)} gaps ({c.missing_candles:,} missing candles)" if len(c.gaps) else ""
        return (f"{head} {len(c):,} candles ({new:,} new), {_when(c.start, self.timeframe)} → "
                f"{_when(c.end, self.timeframe)}{gaps}")

    def to_dict(self) -> dict:
        out = {"symbol": self.symbol, "timeframe": self.timeframe, "ok": self.ok, "error": self.error,
               "error_type": self.error_type}
        if self.report is not None:
            c = self.report.candles
            out.update(candles=len(c), fetched_candles=self.report.fetched_candles,
                       requests=self.report.requests, path=str(self.report.path),
                       first=c.start.isoformat() if len(c) else None,
                       last=c.end.isoformat() if len(c) else None,
                       gaps=len(c.gaps), missing_candles=c.missing_candles)
        return out


@dataclass(frozen=True)
class FetchManyReport:
    """What :func:`fetch_many` did: one :class:`SymbolResult` per symbol, in the order given."""

    timeframe: str
    results: list[SymbolResult]
    requests: int
    seconds: float
    cache_root: Path

    @property
    def failed(self) -> list[SymbolResult]:
        return [r for r in self.results if not r.ok]

    @property
    def succeeded(self) -> list[SymbolResult]:
        return [r for r in self.results if r.ok]

    def summary_lines(self) -> list[str]:
        """One line per symbol, then one line for the run (how many failed, if any)."""
        lines = [r.line() for r in self.results]
        n, failed = len(self.results), self.failed
        new = sum(r.report.fetched_candles for r in self.succeeded)
        done = f"{new:,} new candles in {self.requests} requests ({self.seconds:.1f} s); cache: {self.cache_root}"
        if not failed:
            lines.append(f"{n} of {n} symbols fetched: {done}")
        elif len(failed) == n:
            lines.append(f"{n} of {n} symbols failed: nothing fetched")
        else:
            lines.append(f"{len(failed)} of {n} symbols failed ({', '.join(r.symbol for r in failed)}); "
                         f"the other {n - len(failed)} fetched: {done}")
        return lines

    def to_dict(self) -> dict:
        return {"timeframe": self.timeframe, "symbols": [r.to_dict() for r in self.results],
                "failed": len(self.failed), "requests": self.requests, "seconds": self.seconds,
                "cache": str(self.cache_root)}


class _Interrupted(Exception):
    """Raised inside a worker once the run was interrupted: stop at the next page."""


def split_symbols(text: str) -> list[str]:
    """``"BTC/USDT:USDT, ETH/USDT:USDT"`` → the symbols, in order; InputError when empty."""
    symbols = [part.strip() for part in str(text).split(",") if part.strip()]
    if not symbols:
        raise InputError(f"no symbols in {text!r}: give them comma-separated, e.g. BTC/USDT:USDT,ETH/USDT:USDT")
    return symbols


def read_symbols_file(path) -> list[str]:
    """Symbols from a text file: one per line (commas also separate), ``#`` starts a comment,
    blank lines are skipped. Raises :class:`~distillbt.errors.DataSourceError` when the file
    cannot be read, :class:`~distillbt.errors.InputError` when it names no symbol."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise DataSourceError(f"cannot read symbols file {path}: {first_line(error)}") from error
    symbols = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            symbols += [part.strip() for part in line.split(",") if part.strip()]
    if not symbols:
        raise InputError(f"symbols file {path} names no symbol (one per line; # starts a comment)")
    return symbols


def fetch_many(
    symbols: Iterable[str],
    timeframe: str,
    *,
    since,
    until=None,
    cache_dir=None,
    api_url: str | None = None,
    client: BybitClient | None = None,
    progress: bool = True,
    concurrency: int = DEFAULT_CONCURRENCY,
    checkpoint_pages: int = 50,
) -> FetchManyReport:
    """Bring the cache of every symbol of ``symbols`` up to ``[since, until)`` (one
    :func:`fetch_candles` each), ``concurrency`` symbols at a time.

    A symbol that fails — not a unified symbol, unknown to the exchange, an exchange error
    that outlasted the retries, candles that break the contract, a damaged cache file — is
    reported in its :class:`SymbolResult` and the others go on; its cache file is left as
    its last checkpoint left it (a good cache is never replaced by a failing fetch). What is
    wrong for every symbol — the timeframe, the range — raises before anything is fetched.
    Duplicate symbols are fetched once. One progress bar for the run (in candle intervals).

    Concurrency: the symbols run on a few threads sharing ONE :class:`BybitClient`, hence one
    ccxt exchange object — one rate limiter (ccxt's ``enableRateLimit``: requests at least
    ``rateLimit`` ms apart, made safe for threads here) and one HTTP connection pool — and
    each request keeps the client's retries with backoff. A kline request waits on the
    network far longer than the 20 ms ccxt spaces Bybit's requests by, so overlapping a few
    symbols' requests fills that budget where one symbol at a time would leave it idle,
    while the whole run stays within ccxt's limit (at most 50 requests/s against Bybit's
    600 per 5 s per IP for market data). Markets are loaded before the threads start, once
    per category, and only for symbols with something to fetch.
    """
    started = time.perf_counter()
    symbols = list(dict.fromkeys(str(s).strip() for s in symbols))
    if not symbols or not all(symbols):
        raise InputError("no symbols to fetch")
    if isinstance(concurrency, bool) or not isinstance(concurrency, (int, np.integer)) or concurrency < 1:
        raise InputError(f"concurrency must be an integer >= 1, not {concurrency!r}")
    client = client or BybitClient(api_url=api_url)
    client.check_timeframe(timeframe)  # one interval for every symbol: a bad one fails the run
    since_ms, until_ms = _time_range(client, since, until)
    cache = CandleCache(cache_dir)
    _share_rate_limit(client.exchange)
    requests_before = client.requests_made

    results: dict[str, SymbolResult] = {}
    todo: list[str] = []
    category_errors: dict[str, DistillbtError] = {}
    for symbol in symbols:  # in this thread: ccxt's market table is loaded one category at a time
        try:
            category = category_of(symbol)
            entry = cache.read(CacheKey(client.id, category, symbol, timeframe))
            if missing_spans(since_ms, until_ms, entry.covered if entry else []):
                if category in category_errors:
                    raise category_errors[category]
                try:
                    client.market(symbol)
                except ExchangeError as error:  # the category's list could not be had: not again
                    category_errors[category] = error
                    raise
            todo.append(symbol)
        except DistillbtError as error:
            results[symbol] = _failed(symbol, timeframe, error)

    lock, stop = threading.Lock(), threading.Event()
    counts = {"requests": client.requests_made - requests_before, "done": 0}
    bar = tqdm(total=0, unit="candle", unit_scale=True, disable=not progress or not todo,
               desc=f"{len(todo)} symbol{'s' if len(todo) != 1 else ''} {timeframe}")

    def advance(total: int, done: int) -> None:
        if stop.is_set():
            raise _Interrupted()
        with lock:
            if total:
                bar.total += total
                bar.refresh()
            if done:
                bar.update(done)

    def one(symbol: str) -> SymbolResult:
        view = copy.copy(client)  # same exchange (rate limiter, connections), own request count
        view.requests_made = 0
        try:
            report = fetch_candles(symbol, timeframe, since=since_ms, until=until_ms, cache_dir=cache.root,
                                   client=view, progress=False, checkpoint_pages=checkpoint_pages,
                                   on_progress=advance)
            result = SymbolResult(symbol, timeframe, report=report)
        except DistillbtError as error:
            result = _failed(symbol, timeframe, error)
        except _Interrupted:
            raise
        except Exception as error:  # noqa: BLE001 - one symbol's surprise must not lose the others
            log.debug("fetch %s %s failed", symbol, timeframe, exc_info=True)
            result = _failed(symbol, timeframe, error, with_type=True)
        with lock:
            counts["requests"] += view.requests_made
            counts["done"] += 1
            bar.set_postfix_str(f"{counts['done']}/{len(todo)} symbols done", refresh=True)
        return result

    try:
        if concurrency == 1 or len(todo) <= 1:
            for symbol in todo:
                results[symbol] = one(symbol)
        else:
            pool = ThreadPoolExecutor(max_workers=min(concurrency, len(todo)), thread_name_prefix="fetch")
            try:
                futures = {symbol: pool.submit(one, symbol) for symbol in todo}
                for symbol, future in futures.items():
                    results[symbol] = future.result()
            except BaseException:
                stop.set()  # running workers stop at their next page; queued ones never start
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            pool.shutdown(wait=True)
    finally:
        bar.close()
    return FetchManyReport(timeframe=timeframe, results=[results[s] for s in symbols],
                           requests=counts["requests"], seconds=time.perf_counter() - started,
                           cache_root=cache.root)


def _failed(symbol: str, timeframe: str, error: BaseException, *, with_type: bool = False) -> SymbolResult:
    return SymbolResult(symbol, timeframe, error=first_line(error, with_type=with_type, limit=300),
                        error_type=type(error).__name__)


def _share_rate_limit(exchange) -> None:
    """Make ccxt's throttle hold for threads sharing ``exchange``.

    ccxt (sync) sleeps until ``rateLimit`` ms after the last request's timestamp, but two
    threads can read the same timestamp and fire together. Here one thread at a time waits
    its turn and stamps the time before letting the next one look.
    """
    if getattr(exchange, "distillbt_shared_throttle", False):
        return
    lock = threading.Lock()
    throttle = exchange.throttle

    def shared_throttle(cost=None):
        with lock:
            throttle(cost)
            exchange.lastRestRequestTimestamp = exchange.milliseconds()

    exchange.throttle = shared_throttle
    exchange.distillbt_shared_throttle = True


def _when(stamp: pd.Timestamp, timeframe: str) -> str:
    """A candle's time, to the minute (the day for daily and longer candles), UTC."""
    return stamp.strftime("%Y-%m-%d" if timeframe_ms(timeframe) >= 86_400_000 else "%Y-%m-%d %H:%M")
