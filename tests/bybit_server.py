"""A loopback HTTP server that speaks enough of Bybit's v5 public REST API for
the real ccxt ``bybit`` client (test infrastructure, standard library only).

Usage::

    with BybitV5Server(now_ms=...) as server:
        server.add_candles("linear", "BTCUSDT", "15", make_candles(t0, 500, 900_000))
        ex = ccxt.bybit({"enableRateLimit": False,
                         "options": {"fetchMarkets": {"types": ["spot", "linear", "inverse"]}}})
        for key in ex.urls["api"]:
            ex.urls["api"][key] = server.url
        ex.fetch_ohlcv("BTC/USDT:USDT", "15m", since=t0, limit=1000)

Endpoints (GET only; everything else is HTTP 404 with a Bybit-like JSON error):

* ``/v5/market/kline``            -- candles held via :meth:`BybitV5Server.add_candles`
* ``/v5/market/instruments-info`` -- instruments for the configured markets
* ``/v5/market/time``             -- the server clock

Kline semantics (mirroring Bybit):

* ``list`` is newest first, every value a string; envelope
  ``{"retCode":0,"retMsg":"OK","result":{...},"retExtInfo":{},"time":now_ms}``.
* ``category`` defaults to ``linear`` when absent (as Bybit documents).
* The window is ``[start, end]`` (both inclusive, ``end`` defaults to now).  With
  ``include_candle_containing_start`` (default True) the candle that *contains* a
  mid-interval ``start`` is included too -- Bybit does this (see the comment in
  ccxt's ``bybit.fetch_ohlcv`` / ccxt issue 26736); with an interval-aligned
  ``start`` it makes no difference.
* Only ``start`` given: the oldest ``limit`` candles from ``start``.  Only ``end``
  or neither: the newest ``limit`` candles up to ``end``.  Both given and more
  than ``limit`` candles in the window: governed by ``range_anchor`` -- "end"
  (default: the newest ``limit`` ones, which is the harsher behaviour for a
  client that pages forward and what we believe Bybit does) or "start".
* Candles whose start time is after ``now_ms`` are never served (they cannot
  exist yet); the candle containing ``now_ms`` (unfinished) *is* served if held.
* ``limit`` default 200; ``limit`` > 1000 or < 1 -> retCode 10001.  Unknown symbol
  -> retCode 10001 "Not supported symbols"; unknown interval -> retCode 10001
  "Invalid period!".
"""
from __future__ import annotations

import bisect
import calendar
import datetime as _dt
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "BybitV5Server",
    "make_candles",
    "DEFAULT_MARKETS",
    "FAULTS",
    "INTERVAL_MS",
]

DEFAULT_MARKETS = [
    ("spot", "BTCUSDT", "BTC", "USDT"),
    ("linear", "BTCUSDT", "BTC", "USDT"),
    ("inverse", "BTCUSD", "BTC", "USD"),
    ("linear", "ETHUSDT", "ETH", "USDT"),
]

#: Bybit interval code -> length in ms ("M" is calendar months, see _candle_end).
INTERVAL_MS = {
    "1": 60_000,
    "3": 180_000,
    "5": 300_000,
    "15": 900_000,
    "30": 1_800_000,
    "60": 3_600_000,
    "120": 7_200_000,
    "240": 14_400_000,
    "360": 21_600_000,
    "720": 43_200_000,
    "D": 86_400_000,
    "W": 604_800_000,
    "M": 31 * 86_400_000,  # nominal only
}

#: Fault name -> short description.  ``http403`` is an extra beyond the brief:
#: it is what Bybit really sends when an IP exceeds its rate limit.
FAULTS = {
    "http429": "HTTP 429, JSON body retCode 10006 'Too many visits!'",
    "http403": "HTTP 403, text body 'access too frequent' (Bybit's IP rate limit)",
    "http500": "HTTP 500, HTML body",
    "http503": "HTTP 503, HTML body",
    "retcode10006": "HTTP 200, retCode 10006 'Too many visits!'",
    "retcode10001": "HTTP 200, retCode 10001 'params error'",
    "retcode10016": "HTTP 200, retCode 10016 'System error. Please try again later.'",
    "http502json": "HTTP 502 with a JSON body retCode 10016 (a gateway that speaks JSON)",
    "truncated": "HTTP 200, application/json, JSON body cut in the middle",
    "overlap": "normal answer plus up to 5 candles before start and one duplicate",
    "slow": "sleep `slow_seconds` then answer normally",
}

CATEGORIES = ("spot", "linear", "inverse")
_MAX_LIMIT = 1000
_DEFAULT_LIMIT = 200


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------
def _fmt(value) -> str:
    """Format a number the way Bybit does: a plain decimal string."""
    if isinstance(value, bool):
        raise TypeError("bool is not a price")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        text = repr(value)
        if "e" in text or "E" in text:
            text = format(value, ".12f").rstrip("0").rstrip(".")
        return text
    return str(value)


def _next_month_ms(ms: int) -> int:
    d = _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.timezone.utc)
    year, month = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000


def _candle_end(open_ms: int, interval: str) -> int:
    """Exclusive end of the candle opening at ``open_ms``."""
    if interval == "M":
        return _next_month_ms(open_ms)
    return open_ms + INTERVAL_MS[interval]


def make_candles(start_ms: int, count: int, interval_ms: int, *, seed=0,
                 skip: set[int] | None = None) -> list[list]:
    """Deterministic, realistic candles ``[start, o, h, l, c, volume, turnover]``.

    Candle ``i`` opens at ``start_ms + i * interval_ms``; indices in ``skip`` are
    left out (gaps).  Prices follow a seeded geometric random walk with each
    open equal to the previous close; OHLC is always valid (high >= max(o, c),
    low <= min(o, c), all > 0) and volume > 0.  Prices are rounded to 0.01,
    volume to 1e-4, turnover to 0.01, so they survive a str/float round trip.
    """
    skip = set(skip or ())
    rng = random.Random(f"distillbt-candles-{seed}")
    price = 20_000.0 + 20_000.0 * rng.random()
    vol_scale = 0.002 * (interval_ms / 60_000) ** 0.5
    out: list[list] = []
    for i in range(count):
        o = round(price, 2)
        c = round(max(o * (1.0 + rng.gauss(0.0, vol_scale)), 0.01), 2)
        h = round(max(o, c) * (1.0 + abs(rng.gauss(0.0, vol_scale / 2))), 2)
        lo = round(max(min(o, c) * (1.0 - abs(rng.gauss(0.0, vol_scale / 2))), 0.01), 2)
        h = max(h, o, c)
        lo = min(lo, o, c)
        volume = round(rng.uniform(0.5, 50.0) * (interval_ms / 60_000) ** 0.5, 4)
        volume = max(volume, 0.0001)
        turnover = round(volume * (o + h + lo + c) / 4.0, 2)
        price = c
        if i in skip:
            continue
        out.append([start_ms + i * interval_ms, o, h, lo, c, volume, turnover])
    return out


def _instrument(category: str, symbol: str, base: str, quote: str, extra: dict | None) -> dict:
    """An instrument in the exact shape ccxt's bybit parsers read."""
    cheap = base not in ("BTC",)
    tick = "0.01" if cheap else "0.10"
    if category == "spot":
        info = {
            "symbol": symbol,
            "baseCoin": base,
            "quoteCoin": quote,
            "innovation": "0",
            "status": "Trading",
            "marginTrading": "both",
            "stTag": "0",
            "lotSizeFilter": {
                "basePrecision": "0.00001" if cheap else "0.000001",
                "quotePrecision": "0.0000001",
                "minOrderQty": "0.00062" if cheap else "0.000048",
                "maxOrderQty": "4250" if cheap else "71.73956243",
                "minOrderAmt": "1",
                "maxOrderAmt": "2000000",
            },
            "priceFilter": {"tickSize": "0.01"},
            "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
        }
    else:
        linear = category == "linear"
        info = {
            "symbol": symbol,
            "contractType": "LinearPerpetual" if linear else "InversePerpetual",
            "status": "Trading",
            "baseCoin": base,
            "quoteCoin": quote,
            "launchTime": "1585526400000",
            "deliveryTime": "0",
            "deliveryFeeRate": "",
            "priceScale": "2",
            "leverageFilter": {
                "minLeverage": "1",
                "maxLeverage": "100.00",
                "leverageStep": "0.01",
            },
            "priceFilter": {
                "minPrice": "0.05" if cheap else "0.10",
                "maxPrice": "199999.80",
                "tickSize": tick if linear else "0.50",
            },
            "lotSizeFilter": (
                {
                    "maxOrderQty": "7240.00" if cheap else "1190.000",
                    "minOrderQty": "0.01" if cheap else "0.001",
                    "qtyStep": "0.01" if cheap else "0.001",
                    "postOnlyMaxOrderQty": "7240.00" if cheap else "1190.000",
                    "maxMktOrderQty": "724.00" if cheap else "119.000",
                    "minNotionalValue": "5",
                }
                if linear
                else {
                    "maxOrderQty": "10000000",
                    "minOrderQty": "1",
                    "qtyStep": "1",
                    "postOnlyMaxOrderQty": "10000000",
                    "maxMktOrderQty": "1000000",
                    "minNotionalValue": "",
                }
            ),
            "unifiedMarginTrade": True,
            "fundingInterval": 480,
            "settleCoin": quote if linear else base,
            "copyTrading": "both" if linear else "none",
            "upperFundingRate": "0.005",
            "lowerFundingRate": "-0.005",
            "isPreListing": False,
            "preListingInfo": None,
            "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
            "displayName": "",
        }
    if extra:
        info.update(extra)
    return info


# ----------------------------------------------------------------------------
# the server
# ----------------------------------------------------------------------------
class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):  # quiet: clients time out on purpose
        pass


class _Reply(Exception):
    """Internal: raised to short-circuit with an error envelope."""

    def __init__(self, ret_code: int, ret_msg: str, status: int = 200):
        super().__init__(ret_msg)
        self.ret_code = ret_code
        self.ret_msg = ret_msg
        self.status = status


class BybitV5Server:
    """Loopback Bybit v5 REST server.  See the module docstring."""

    def __init__(self, *, markets=DEFAULT_MARKETS, now_ms: int | None = None, seed: int = 0):
        # markets: iterable of (category, symbol_id, base, quote[, extra_fields_dict])
        self.markets = [tuple(m) for m in markets]
        for m in self.markets:
            if m[0] not in CATEGORIES:
                raise ValueError(f"unknown category {m[0]!r} in markets")
        self._fixed_now = None if now_ms is None else int(now_ms)
        self.seed = seed
        self._rng = random.Random(seed)
        self.slow_seconds = 2.0
        self.include_candle_containing_start = True
        self.range_anchor = "end"  # or "start": which side wins when start+end span > limit
        self.requests: list[dict] = []
        self._faults: list[str] = []
        self._symbol_faults: dict[str, list[str]] = {}  # symbol id -> faults (inject_for)
        self._store: dict[tuple[str, str, str], dict[int, list]] = {}
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- clock ---------------------------------------------------------------
    @property
    def now_ms(self) -> int:
        """Fixed clock if ``now_ms`` was given (or assigned), else wall-clock time."""
        if self._fixed_now is not None:
            return self._fixed_now
        return int(time.time() * 1000)

    @now_ms.setter
    def now_ms(self, value: int | None) -> None:
        self._fixed_now = None if value is None else int(value)

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> "BybitV5Server":
        if self._httpd is not None:
            return self
        self._stopping.clear()
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = _HTTPServer(("127.0.0.1", 0), Handler)
        host, port = self._httpd.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"BybitV5Server:{port}", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()  # wakes "slow" handlers
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "BybitV5Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- data ----------------------------------------------------------------
    def add_candles(self, category: str, symbol_id: str, interval: str, candles) -> None:
        """Store candles ``[start_ms, o, h, l, c, volume, turnover]`` (later ones
        with the same start time replace earlier ones)."""
        if category not in CATEGORIES:
            raise ValueError(f"unknown category {category!r}")
        interval = str(interval)
        if interval not in INTERVAL_MS:
            raise ValueError(f"unknown Bybit interval {interval!r}")
        rows = []
        for c in candles:
            c = list(c)
            if len(c) != 7:
                raise ValueError(f"candle must have 7 fields, got {c!r}")
            c[0] = int(c[0])
            rows.append(c)
        with self._lock:
            bucket = self._store.setdefault((category, symbol_id, interval), {})
            for c in rows:
                bucket[c[0]] = c

    def candles(self, category, symbol_id, interval) -> list[list]:
        """Everything held for the series, oldest first (copies)."""
        with self._lock:
            bucket = self._store.get((category, symbol_id, str(interval)), {})
            return [list(bucket[k]) for k in sorted(bucket)]

    # -- faults & log --------------------------------------------------------
    def inject(self, *faults: str) -> None:
        """Queue faults for the next /v5/market/kline requests, one per request."""
        for f in faults:
            if f not in FAULTS:
                raise ValueError(f"unknown fault {f!r}; known: {sorted(FAULTS)}")
        with self._lock:
            self._faults.extend(faults)

    def inject_for(self, symbol_id: str, *faults: str) -> None:
        """Queue faults for the next /v5/market/kline requests of ``symbol_id`` only (one per
        request, before the shared queue of :meth:`inject`): one symbol's failures while
        others are fetched at the same time."""
        for f in faults:
            if f not in FAULTS:
                raise ValueError(f"unknown fault {f!r}; known: {sorted(FAULTS)}")
        with self._lock:
            self._symbol_faults.setdefault(symbol_id, []).extend(faults)

    @property
    def pending_faults(self) -> list[str]:
        with self._lock:
            return list(self._faults)

    def kline_requests(self) -> list[dict]:
        """/v5/market/kline requests that got a normal (retCode 0) answer,
        including ones delivered late ("slow") or sloppily ("overlap")."""
        with self._lock:
            return [r for r in self.requests
                    if r["path"] == "/v5/market/kline" and r["status"] == 200
                    and r.get("retCode") == 0]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- request handling (called from handler threads) ----------------------
    def _symbols(self, category: str) -> set[str]:
        syms = {m[1] for m in self.markets if m[0] == category}
        with self._lock:
            syms.update(k[1] for k in self._store if k[0] == category)
        return syms

    def _envelope(self, result, ret_code=0, ret_msg="OK") -> dict:
        return {"retCode": ret_code, "retMsg": ret_msg, "result": result,
                "retExtInfo": {}, "time": self.now_ms}

    def _handle(self, method: str, raw_path: str):
        """Return (entry, status, headers, body_bytes, delay_seconds)."""
        parts = urlsplit(raw_path)
        path = parts.path
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        entry = {"path": path, "params": params, "status": None, "fault": None,
                 "retCode": None, "method": method, "at": time.monotonic()}
        with self._lock:
            self.requests.append(entry)
            fault = None
            own = self._symbol_faults.get(params.get("symbol"))
            if method == "GET" and path == "/v5/market/kline" and own:
                fault = own.pop(0)
            elif method == "GET" and path == "/v5/market/kline" and self._faults:
                fault = self._faults.pop(0)
        entry["fault"] = fault
        headers = {"Content-Type": "application/json; charset=utf-8"}
        delay = 0.0
        status = 200
        try:
            if method != "GET" or path not in _ROUTES:
                raise _Reply(10017, f"route not found: {method} {path}", status=404)
            if fault is not None:
                payload = self._fault_response(fault, path, params, entry, headers)
                if payload is not None:
                    return payload
                if fault == "slow":
                    delay = float(self.slow_seconds)
            result = getattr(self, _ROUTES[path])(params, fault)
            body = self._envelope(result)
        except _Reply as r:
            status = r.status
            body = self._envelope({}, r.ret_code, r.ret_msg)
        entry["status"] = status
        entry["retCode"] = body["retCode"]
        data = json.dumps(body, separators=(",", ":")).encode()
        return entry, status, headers, data, delay

    def _fault_response(self, fault, path, params, entry, headers):
        def done(status, body: bytes, ret_code=None, content_type=None):
            entry["status"] = status
            entry["retCode"] = ret_code
            if content_type:
                headers["Content-Type"] = content_type
            return entry, status, headers, body, 0.0

        def env(code, msg):
            return json.dumps(self._envelope({}, code, msg), separators=(",", ":")).encode()

        limit_headers = {
            "X-Bapi-Limit": "600",
            "X-Bapi-Limit-Status": "0",
            "X-Bapi-Limit-Reset-Timestamp": str(self.now_ms + 1000),
        }
        if fault == "http429":
            headers.update(limit_headers)
            return done(429, env(10006, "Too many visits!"), 10006)
        if fault == "http403":
            return done(403, b"access too frequent", None, "text/plain; charset=utf-8")
        if fault in ("http500", "http503"):
            code = int(fault[4:])
            reason = "Internal Server Error" if code == 500 else "Service Temporarily Unavailable"
            html = (f"<html><head><title>{code} {reason}</title></head><body><center>"
                    f"<h1>{code} {reason}</h1></center><hr><center>nginx</center></body></html>")
            return done(code, html.encode(), None, "text/html")
        if fault == "retcode10006":
            headers.update(limit_headers)
            return done(200, env(10006, "Too many visits!"), 10006)
        if fault == "retcode10001":
            return done(200, env(10001, "params error"), 10001)
        if fault == "retcode10016":
            return done(200, env(10016, "System error. Please try again later."), 10016)
        if fault == "http502json":
            return done(502, env(10016, "System error. Please try again later."), 10016)
        if fault == "truncated":
            try:
                full = json.dumps(self._envelope(self._kline(params, None)),
                                  separators=(",", ":")).encode()
            except _Reply as r:
                full = env(r.ret_code, r.ret_msg)
            cut = max(1, len(full) // 2)
            return done(200, full[:cut], None)
        return None  # "overlap" / "slow": answer normally

    # -- endpoints -----------------------------------------------------------
    def _time(self, params, fault):
        now = self.now_ms
        return {"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)}

    def _instruments(self, params, fault):
        category = params.get("category", "")
        if category == "option":
            return {"category": "option", "list": [], "nextPageCursor": ""}
        if category not in CATEGORIES:
            raise _Reply(10001, "params error: category is invalid")
        limit_max = 1000
        default_limit = 500
        try:
            limit = int(params.get("limit", default_limit))
        except ValueError:
            raise _Reply(10001, "params error: limit is invalid") from None
        if limit < 1 or limit > limit_max:
            raise _Reply(10001, "params error: limit is invalid")
        items = []
        for m in self.markets:
            cat, symbol, base, quote = m[:4]
            if cat != category:
                continue
            info = _instrument(cat, symbol, base, quote, m[4] if len(m) > 4 else None)
            items.append(info)
        status = params.get("status")
        if status:
            items = [i for i in items if i.get("status") == status]
        if params.get("symbol"):
            items = [i for i in items if i["symbol"] == params["symbol"]]
        if params.get("baseCoin"):
            items = [i for i in items if i["baseCoin"] == params["baseCoin"]]
        result = {"category": category, "list": items}
        if category != "spot":
            cursor = params.get("cursor") or ""
            try:
                offset = int(cursor.split("=", 1)[1]) if cursor else 0
            except (IndexError, ValueError):
                raise _Reply(10001, "params error: cursor is invalid") from None
            page = items[offset:offset + limit]
            nxt = offset + limit
            result["list"] = page
            result["nextPageCursor"] = f"offset={nxt}" if nxt < len(items) else ""
        return result

    def _kline(self, params, fault):
        category = params.get("category") or "linear"
        symbol = params.get("symbol", "")
        interval = params.get("interval", "")
        if category not in CATEGORIES:
            raise _Reply(10001, "params error: category is invalid")
        if not symbol:
            raise _Reply(10001, "params error: symbol is required")
        if not interval:
            raise _Reply(10001, "params error: interval is required")
        if symbol not in self._symbols(category):
            raise _Reply(10001, "Not supported symbols")
        if interval not in INTERVAL_MS:
            raise _Reply(10001, "Invalid period!")

        def as_int(name, default):
            raw = params.get(name)
            if raw is None or raw == "":
                return default
            try:
                return int(raw)
            except ValueError:
                raise _Reply(10001, f"params error: {name} is invalid") from None

        limit = as_int("limit", _DEFAULT_LIMIT)
        if limit < 1 or limit > _MAX_LIMIT:
            raise _Reply(10001, "params error: limit must be in [1, 1000]")
        start = as_int("start", None)
        end = as_int("end", None)
        now = self.now_ms
        hi = now if end is None else min(end, now)

        series = self.candles(category, symbol, interval)
        opens = [c[0] for c in series]
        stop = bisect.bisect_right(opens, hi)
        begin = 0
        if start is not None:
            begin = bisect.bisect_left(opens, start)
            if (self.include_candle_containing_start and begin > 0
                    and _candle_end(opens[begin - 1], interval) > start):
                begin -= 1
        window = series[begin:stop] if begin < stop else []
        if start is not None and (end is None or self.range_anchor == "start"):
            chosen = window[:limit]
        else:
            chosen = window[-limit:]

        if fault == "overlap" and series:
            first_open = chosen[0][0] if chosen else (start if start is not None else hi)
            idx = bisect.bisect_left(opens, first_open)
            extra = series[max(0, idx - 5):idx]
            chosen = extra + chosen
            if chosen:
                dup = self._rng.randrange(len(chosen))
                chosen = chosen[:dup + 1] + [chosen[dup]] + chosen[dup + 1:]

        rows = [[_fmt(v) if i else str(int(v)) for i, v in enumerate(c)]
                for c in reversed(chosen)]
        return {"symbol": symbol, "category": category, "list": rows}


_ROUTES = {
    "/v5/market/kline": "_kline",
    "/v5/market/instruments-info": "_instruments",
    "/v5/market/time": "_time",
}


class _Handler(BaseHTTPRequestHandler):
    owner: BybitV5Server
    server_version = "BybitV5Server/1.0"

    def log_message(self, format, *args):  # quiet
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        owner = self.owner
        _entry, status, headers, body, delay = owner._handle(self.command, self.path)
        if delay > 0 and owner._stopping.wait(delay):
            return  # server stopping: drop the connection
        try:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            pass  # the client gave up (e.g. "slow" vs. a short timeout)

    do_GET = _serve
    do_POST = _serve
    do_PUT = _serve
    do_DELETE = _serve
