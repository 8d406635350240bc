"""Bybit v5 candles through ccxt: forward pagination, retries, and a replaceable base URL.

ccxt speaks the protocol (URLs, signing, error codes → typed exceptions, parsing); this module
adds what ccxt leaves to the caller for bulk history: it paginates itself forward from
``since`` to ``until`` in windows of at most 1000 candles (ccxt's ``paginate`` option anchors
at the wall clock and silently caps the number of calls), retries what ccxt calls transient,
refuses answers that are not the JSON envelope it expects (ccxt returns a garbled 200 body as
an empty page, which must never pass for "no more data"), and drops the unfinished candle.
"""

from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import ccxt
import numpy as np

from ..errors import (
    ExchangeRejectedError,
    ExchangeUnavailableError,
    UnknownSymbolError,
    UnknownTimeframeError,
    first_line,
)
from .symbols import category_of
from .timeframes import timeframe_ms

log = logging.getLogger(__name__)

__all__ = ["BybitClient", "Page", "API_URL_ENV", "category_of"]

#: Environment variable that replaces Bybit's REST base address (testnet, mirror, proxy, tests).
API_URL_ENV = "DISTILLBT_BYBIT_URL"

# ccxt's own transient family: all are ccxt.NetworkError subclasses.
_RETRYABLE = (ccxt.NetworkError,)
# Bybit codes ccxt maps to a plain ExchangeError although Bybit says "try again later".
_TRANSIENT_RET_CODES = ("10016",)


class _MalformedResponse(Exception):
    """A 200 answer that is not Bybit's JSON envelope (truncated, HTML from a proxy...)."""


@dataclass(frozen=True)
class Page:
    """Finished candles of one request window and the span of time the window settled.

    ``rows`` is an (n, 6) float64 array ``[time_ms, open, high, low, close, volume]``, oldest
    first, unique, inside ``[start_ms, end_ms)``; ``end_ms`` stops at the first unfinished
    candle, so a later fetch asks for that candle again.
    """

    rows: np.ndarray
    start_ms: int
    end_ms: int


class BybitClient:
    """Bybit v5 market data through ccxt.

    Parameters (keyword-only)
    -------------------------
    api_url : str, optional
        Replaces Bybit's REST base address for every endpoint ccxt calls. Defaults to the
        ``DISTILLBT_BYBIT_URL`` environment variable, then Bybit itself.
    timeout_ms : int
        Per-request timeout handed to ccxt.
    max_retries : int
        Attempts after the first for transient failures (ccxt's NetworkError family: rate
        limits, DDoS protection, timeouts, 5xx / exchange not available) and garbled answers.
    backoff_s, max_backoff_s : float
        Exponential backoff with full jitter: attempt k sleeps up to ``backoff_s * 2**k``.
    params : dict, optional
        Extra query parameters passed through to every kline request (ccxt's escape hatch),
        e.g. ``{"price": "mark"}`` is *not* supported; raw Bybit fields are.
    exchange_options : dict, optional
        Merged into the ccxt constructor config.
    """

    id = "bybit"
    #: Capabilities, as data (ccxt style).
    has = {"spot": True, "linear": True, "inverse": True, "option": False}
    #: Most candles one kline request returns.
    max_limit = 1000

    def __init__(
        self,
        *,
        api_url: str | None = None,
        timeout_ms: int = 10_000,
        max_retries: int = 6,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        params: dict | None = None,
        exchange_options: dict | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.api_url = api_url or os.environ.get(API_URL_ENV) or None
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.params = dict(params or {})
        self.requests_made = 0
        self._sleep = sleep
        self._jitter = random.Random()
        self._loaded_categories: set[str] = set()
        self._known_markets: dict[str, dict] = {}
        config = {"enableRateLimit": True, "timeout": timeout_ms, **(exchange_options or {})}
        self.exchange = ccxt.bybit(config)
        if self.api_url:
            base = self.api_url.rstrip("/")
            for key in self.exchange.urls["api"]:
                self.exchange.urls["api"][key] = base

    # -- capabilities -------------------------------------------------------------------
    @property
    def timeframes(self) -> tuple[str, ...]:
        """Intervals this client serves (Bybit's, less the calendar month)."""
        return tuple(tf for tf in self.exchange.timeframes if not tf.endswith("M"))

    def check_timeframe(self, timeframe: str) -> int:
        """Milliseconds in ``timeframe``; :class:`UnknownTimeframeError` if Bybit lacks it."""
        if timeframe not in self.timeframes:
            raise UnknownTimeframeError(
                f"unknown timeframe {timeframe!r} for bybit: choose one of {', '.join(self.timeframes)}"
            )
        return timeframe_ms(timeframe)

    def market(self, symbol: str) -> dict:
        """The ccxt market of ``symbol``, loading only its category's instruments once."""
        category = category_of(symbol)
        if category not in self._loaded_categories:
            self.exchange.options["fetchMarkets"] = {"types": [category]}
            markets = self._call(lambda: self.exchange.load_markets(reload=True))
            self._loaded_categories.add(category)
            # load_markets(reload=True) replaces the table: keep earlier categories' markets.
            self._known_markets.update(markets)
            self.exchange.set_markets(list(self._known_markets.values()))
        market = self.exchange.markets.get(symbol)
        if market is None:
            raise UnknownSymbolError(f"unknown symbol {symbol!r}: bybit lists no {category} market by that name")
        return market

    # -- candles --------------------------------------------------------------------------
    def iter_pages(
        self, symbol: str, timeframe: str, since_ms: int, until_ms: int | None = None
    ) -> Iterator[Page]:
        """Finished candles in ``[since_ms, until_ms)``, one :class:`Page` per request.

        ``until_ms`` defaults to now. Windows are consecutive and aligned to the interval, so
        the pages tile the range; an empty page means Bybit has no candles there (before the
        listing, or an outage), never a dropped answer.
        """
        step = self.check_timeframe(timeframe)
        market = self.market(symbol)
        category = category_of(symbol)
        until_ms = self.exchange.milliseconds() if until_ms is None else int(until_ms)
        cursor = -(-int(since_ms) // step) * step  # first interval boundary at or after since
        listed_ms = market.get("created")
        if listed_ms and cursor < (listed_ms // step) * step < until_ms:
            # Nothing exists before the listing: settle that span without asking for it.
            listed_ms = (listed_ms // step) * step
            yield Page(rows=np.empty((0, 6)), start_ms=cursor, end_ms=listed_ms)
            cursor = listed_ms
        while cursor < until_ms:
            window_end = min(cursor + self.max_limit * step, until_ms)
            request = {
                "category": category,
                "symbol": market["id"],
                "interval": self.exchange.timeframes[timeframe],
                "start": cursor,
                "end": window_end - 1,  # Bybit's end is inclusive
                "limit": self.max_limit,
                **self.params,
            }
            result, server_ms = self._kline(request)
            rows = self._parse(result, market, timeframe)
            # A page may overlap its neighbours or run past the window; the window decides.
            rows = rows[(rows[:, 0] >= cursor) & (rows[:, 0] < window_end)]
            finished_end = min(window_end, (server_ms // step) * step)
            rows = rows[rows[:, 0] < finished_end]
            yield Page(rows=rows, start_ms=cursor, end_ms=max(finished_end, cursor))
            if finished_end < window_end:
                return  # the rest of the range has not happened yet
            cursor = window_end

    def _kline(self, request: dict) -> tuple[dict, int]:
        def call():
            response = self.exchange.publicGetV5MarketKline(request)
            result = response.get("result") if isinstance(response, dict) else None
            if not isinstance(result, dict) or not isinstance(result.get("list"), list):
                raise _MalformedResponse(
                    f"bybit kline answer is not the v5 JSON envelope: {str(response)[:80]!r}"
                )
            server_ms = int(response.get("time") or self.exchange.milliseconds())
            return result, server_ms

        return self._call(call)

    def _parse(self, result: dict, market: dict, timeframe: str) -> np.ndarray:
        parsed = self.exchange.parse_ohlcvs(result["list"], market, timeframe)
        rows = np.array(parsed, dtype="float64").reshape(-1, 6)
        if len(rows) and np.isnan(rows).any():
            raise ExchangeRejectedError(
                f"bybit sent a candle with missing fields for {market['symbol']}: {result['list'][0]!r}"
            )
        _, first = np.unique(rows[:, 0], return_index=True)  # sorted and de-duplicated
        return rows[first]

    def _call(self, fn):
        """Run ``fn`` with retries on transient failures; map ccxt errors to ours."""
        for attempt in range(self.max_retries + 1):
            try:
                self.requests_made += 1
                return fn()
            except (ccxt.BaseError, _MalformedResponse) as error:
                if not _is_transient(error):
                    raise self._typed(error) from error
                last = error
                if attempt < self.max_retries:
                    delay = min(self.max_backoff_s, self.backoff_s * 2**attempt)
                    wait = self._jitter.uniform(0, delay)
                    log.warning("bybit: %s: %s; retry %d of %d in %.1f s", type(error).__name__,
                                first_line(error, limit=300), attempt + 1, self.max_retries, wait)
                    self._sleep(wait)
        raise ExchangeUnavailableError(
            f"bybit still failing after {self.max_retries + 1} attempts: "
            f"{type(last).__name__}: {first_line(last, limit=300)}"
        ) from last

    @staticmethod
    def _typed(error: Exception) -> Exception:
        """Our exception for a ccxt error that retrying will not fix."""
        text = first_line(error, limit=300)
        if isinstance(error, ccxt.BadSymbol):
            return UnknownSymbolError(f"unknown symbol: {text}")
        if isinstance(error, ccxt.BadRequest):
            if "symbol" in text.lower():
                return UnknownSymbolError(f"unknown symbol: bybit says {text}")
            if "period" in text.lower() or "interval" in text.lower():
                return UnknownTimeframeError(f"unknown interval: bybit says {text}")
            return ExchangeRejectedError(f"bybit rejected the request: {text}")
        return ExchangeRejectedError(f"bybit error: {type(error).__name__}: {text}")


def _is_transient(error: Exception) -> bool:
    if isinstance(error, (*_RETRYABLE, _MalformedResponse)):
        return True
    # Exactly ExchangeError (not a subclass such as BadRequest): ccxt's catch-all for codes it
    # does not classify, e.g. 10016 "System error. Please try again later."
    return type(error) is ccxt.ExchangeError and any(
        f'"retCode":{code}' in str(error).replace(" ", "") for code in _TRANSIENT_RET_CODES
    )
