"""Tests for the loopback Bybit v5 server, driven through the REAL ccxt client."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import ccxt
import pytest

try:  # works both with and without tests/ being a package
    from bybit_server import DEFAULT_MARKETS, FAULTS, BybitV5Server, make_candles
except ImportError:  # pragma: no cover
    from tests.bybit_server import DEFAULT_MARKETS, FAULTS, BybitV5Server, make_candles

M15 = 900_000
# a clock 5 minutes into a 15m candle, so the candle containing "now" is unfinished
NOW = 1_700_000_000_000 // M15 * M15 + 5 * 60_000
CUR_OPEN = NOW // M15 * M15          # open time of the unfinished candle
T0 = CUR_OPEN - 2000 * M15           # first stored candle


@pytest.fixture
def server():
    with BybitV5Server(now_ms=NOW) as srv:
        yield srv


def make_exchange(server: BybitV5Server) -> ccxt.bybit:
    ex = ccxt.bybit({
        "enableRateLimit": False,
        "options": {"fetchMarkets": {"types": ["spot", "linear", "inverse"]}},
    })
    for key in list(ex.urls["api"]):
        ex.urls["api"][key] = server.url
    return ex


@pytest.fixture
def exchange(server):
    return make_exchange(server)


@pytest.fixture
def btc15(server):
    """2001 aligned 15m candles ending with the unfinished one, with a few gaps."""
    candles = make_candles(T0, 2001, M15, seed=7, skip={100, 101, 1500})
    server.add_candles("linear", "BTCUSDT", "15", candles)
    return candles


def kline(exchange, **params):
    req = {"category": "linear", "symbol": "BTCUSDT", "interval": "15"}
    req.update({k: v for k, v in params.items() if v is not None})
    return exchange.publicGetV5MarketKline(req)


def opens(response) -> list[int]:
    return [int(row[0]) for row in response["result"]["list"]]


# ---------------------------------------------------------------------------
# make_candles / storage
# ---------------------------------------------------------------------------
def test_make_candles_valid_deterministic_and_gappy():
    a = make_candles(T0, 300, M15, seed=3, skip={5, 6, 299})
    assert a == make_candles(T0, 300, M15, seed=3, skip={5, 6, 299})
    assert a != make_candles(T0, 300, M15, seed=4, skip={5, 6, 299})
    assert len(a) == 297
    stamps = [c[0] for c in a]
    assert T0 + 5 * M15 not in stamps and T0 + 6 * M15 not in stamps
    assert stamps == sorted(stamps) and stamps[0] == T0 and stamps[-1] == T0 + 298 * M15
    for ts, o, h, lo, c, v, qv in a:
        assert ts % M15 == 0
        assert h >= max(o, c) and lo <= min(o, c) and lo > 0
        assert v > 0 and qv > 0


def test_add_candles_sorts_and_replaces(server):
    rows = make_candles(T0, 10, M15)
    server.add_candles("linear", "BTCUSDT", "15", list(reversed(rows)))
    assert server.candles("linear", "BTCUSDT", "15") == rows
    patched = list(rows[3])
    patched[4] = 1.5
    server.add_candles("linear", "BTCUSDT", "15", [patched])
    held = server.candles("linear", "BTCUSDT", "15")
    assert len(held) == 10 and held[3] == patched
    assert server.candles("spot", "BTCUSDT", "15") == []
    with pytest.raises(ValueError):
        server.add_candles("linear", "BTCUSDT", "15m", rows)


# ---------------------------------------------------------------------------
# markets
# ---------------------------------------------------------------------------
def test_load_markets(server, exchange):
    markets = exchange.load_markets()
    assert set(markets) == {"BTC/USDT", "BTC/USDT:USDT", "BTC/USD:BTC", "ETH/USDT:USDT"}

    spot = markets["BTC/USDT"]
    assert (spot["id"], spot["type"], spot["spot"], spot["contract"]) == (
        "BTCUSDT", "spot", True, False)
    assert spot["active"] is True

    for sym, mid in (("BTC/USDT:USDT", "BTCUSDT"), ("ETH/USDT:USDT", "ETHUSDT")):
        m = markets[sym]
        assert (m["id"], m["type"], m["swap"], m["linear"], m["inverse"]) == (
            mid, "swap", True, True, False)
        assert m["settle"] == "USDT" and m["contractSize"] == 1 and m["active"] is True

    inv = markets["BTC/USD:BTC"]
    assert (inv["id"], inv["type"], inv["swap"], inv["linear"], inv["inverse"]) == (
        "BTCUSD", "swap", True, False, True)
    assert inv["settle"] == "BTC"

    # spot: 1 call; linear and inverse: 2 calls each (normal + status=PreLaunch)
    info_calls = [r for r in server.requests if r["path"] == "/v5/market/instruments-info"]
    assert [r["params"] for r in info_calls] == [
        {"category": "spot"},
        {"category": "linear", "limit": "1000"},
        {"category": "linear", "limit": "1000", "status": "PreLaunch"},
        {"category": "inverse", "limit": "1000"},
        {"category": "inverse", "limit": "1000", "status": "PreLaunch"},
    ]
    assert len(server.requests) == 5  # nothing else (no /v5/market/time)


def test_instruments_info_edge_cases(server, exchange):
    opt = exchange.publicGetV5MarketInstrumentsInfo({"category": "option", "baseCoin": "BTC"})
    assert opt["retCode"] == 0 and opt["result"]["list"] == []
    pre = exchange.publicGetV5MarketInstrumentsInfo({"category": "linear", "status": "PreLaunch"})
    assert pre["result"]["list"] == [] and pre["result"]["nextPageCursor"] == ""
    # cursor pagination for derivatives
    page1 = exchange.publicGetV5MarketInstrumentsInfo({"category": "linear", "limit": 1})
    assert [i["symbol"] for i in page1["result"]["list"]] == ["BTCUSDT"]
    cursor = page1["result"]["nextPageCursor"]
    assert cursor
    page2 = exchange.publicGetV5MarketInstrumentsInfo(
        {"category": "linear", "limit": 1, "cursor": cursor})
    assert [i["symbol"] for i in page2["result"]["list"]] == ["ETHUSDT"]
    assert page2["result"]["nextPageCursor"] == ""


def test_custom_markets_and_time(exchange):
    with BybitV5Server(markets=[("linear", "SOLUSDT", "SOL", "USDT")], now_ms=NOW) as srv:
        ex = make_exchange(srv)
        assert list(ex.load_markets()) == ["SOL/USDT:USDT"]
        assert ex.fetch_time() == NOW
        raw = ex.publicGetV5MarketTime()
        assert raw["result"] == {"timeSecond": str(NOW // 1000), "timeNano": str(NOW * 1_000_000)}


# ---------------------------------------------------------------------------
# klines through ccxt.fetch_ohlcv
# ---------------------------------------------------------------------------
def test_fetch_ohlcv_returns_exactly_the_stored_window(server, exchange, btc15):
    since, until = T0 + 50 * M15, T0 + 900 * M15
    got = exchange.fetch_ohlcv("BTC/USDT:USDT", "15m", since=since, limit=1000,
                               params={"until": until})
    want = [c[:6] for c in btc15 if since <= c[0] <= until]
    assert got == want
    assert len(got) == 851 - 2  # the two skipped candles are gaps
    assert [c[0] for c in got] == sorted(c[0] for c in got)
    req = server.kline_requests()[-1]["params"]
    assert req == {"category": "linear", "symbol": "BTCUSDT", "interval": "15",
                   "start": str(since), "end": str(until), "limit": "1000"}


def test_fetch_ohlcv_includes_unfinished_candle(server, exchange, btc15):
    # a candle "from the future" must never be served
    server.add_candles("linear", "BTCUSDT", "15", make_candles(CUR_OPEN + M15, 3, M15, seed=1))
    since = CUR_OPEN - 20 * M15
    got = exchange.fetch_ohlcv("BTC/USDT:USDT", "15m", since=since, limit=1000,
                               params={"until": NOW + 10 * M15})
    assert got[-1][0] == CUR_OPEN  # contains NOW: unfinished, the client must drop it
    assert got == [c[:6] for c in btc15 if c[0] >= since]
    # with no since/until ccxt asks for the newest 200 up to now
    latest = exchange.fetch_ohlcv("BTC/USDT:USDT", "15m")
    assert len(latest) == 200 and latest[-1][0] == CUR_OPEN
    assert server.kline_requests()[-1]["params"] == {
        "category": "linear", "symbol": "BTCUSDT", "interval": "15", "limit": "200"}


def test_fetch_ohlcv_inverse_uses_turnover_as_volume(server, exchange):
    candles = make_candles(T0, 5, M15, seed=2)
    server.add_candles("inverse", "BTCUSD", "15", candles)
    got = exchange.fetch_ohlcv("BTC/USD:BTC", "15m", since=T0, limit=10)
    # ccxt quirk: for inverse markets the "volume" column is Bybit's turnover (index 6)
    assert got == [c[:5] + [c[6]] for c in candles]


def test_fetch_ohlcv_spot_category(server, exchange):
    candles = make_candles(T0, 5, 3_600_000, seed=5)
    server.add_candles("spot", "BTCUSDT", "60", candles)
    got = exchange.fetch_ohlcv("BTC/USDT", "1h", since=T0, limit=10)
    assert got == [c[:6] for c in candles]
    assert server.kline_requests()[-1]["params"]["category"] == "spot"


# ---------------------------------------------------------------------------
# kline protocol details (implicit API)
# ---------------------------------------------------------------------------
def test_kline_envelope_strings_and_newest_first(server, exchange, btc15):
    resp = kline(exchange, start=T0, end=T0 + 4 * M15)
    assert resp["retCode"] == 0 and resp["retMsg"] == "OK" and resp["retExtInfo"] == {}
    assert resp["time"] == NOW
    assert resp["result"]["category"] == "linear" and resp["result"]["symbol"] == "BTCUSDT"
    rows = resp["result"]["list"]
    assert all(isinstance(v, str) for row in rows for v in row)
    assert opens(resp) == [T0 + i * M15 for i in (4, 3, 2, 1, 0)]
    first = btc15[0]
    assert [float(v) for v in rows[-1]] == [float(v) for v in first]


def test_kline_window_selection(server, exchange, btc15):
    held = [c[0] for c in btc15]
    # only start: the oldest `limit` from start
    assert opens(kline(exchange, start=T0, limit=3)) == held[:3][::-1]
    # only end: the newest `limit` up to end
    end = T0 + 10 * M15
    assert opens(kline(exchange, end=end, limit=3)) == [end, end - M15, end - 2 * M15]
    # neither: newest up to now (includes the unfinished candle), default limit 200
    resp = kline(exchange)
    assert len(opens(resp)) == 200 and opens(resp)[0] == CUR_OPEN
    # both, window larger than limit: anchored at end (range_anchor="end")
    assert opens(kline(exchange, start=T0, end=end, limit=3)) == [end, end - M15, end - 2 * M15]
    server.range_anchor = "start"
    assert opens(kline(exchange, start=T0, end=end, limit=3)) == held[:3][::-1]
    # mid-interval start: the candle containing it comes back too (like Bybit)
    assert opens(kline(exchange, start=T0 + M15 + 1, limit=2)) == [T0 + 2 * M15, T0 + M15]
    server.include_candle_containing_start = False
    assert opens(kline(exchange, start=T0 + M15 + 1, limit=2)) == [T0 + 3 * M15, T0 + 2 * M15]
    # gaps stay gaps
    assert opens(kline(exchange, start=T0 + 99 * M15, end=T0 + 102 * M15)) == [
        T0 + 102 * M15, T0 + 99 * M15]
    # known symbol without data: empty list
    assert kline(exchange, symbol="ETHUSDT")["result"]["list"] == []
    # category defaults to linear
    no_category = {"symbol": "BTCUSDT", "interval": "15", "limit": 1}
    assert opens(exchange.publicGetV5MarketKline(no_category)) == [CUR_OPEN]


def test_kline_errors(server, exchange, btc15):
    with pytest.raises(ccxt.BadRequest, match="limit"):
        kline(exchange, limit=1001)
    # ccxt does not clamp limit either
    with pytest.raises(ccxt.BadRequest):
        exchange.fetch_ohlcv("BTC/USDT:USDT", "15m", since=T0, limit=1001)
    with pytest.raises(ccxt.BadSymbol, match="Not supported symbols"):  # BadSymbol < BadRequest
        kline(exchange, symbol="DOGEUSDT")
    with pytest.raises(ccxt.BadSymbol):
        kline(exchange, category="spot", symbol="BTCUSD")
    with pytest.raises(ccxt.BadRequest, match="Invalid period"):
        kline(exchange, interval="15m")
    assert server.kline_requests() == []
    klines = [r for r in server.requests if r["path"] == "/v5/market/kline"]
    assert [(r["status"], r["retCode"]) for r in klines] == [(200, 10001)] * 5


def test_unknown_path_is_404(server, exchange):
    with pytest.raises(ccxt.BadRequest):  # JSON body retCode 10017 -> BadRequest in ccxt
        exchange.publicGetV5MarketMarkPriceKline(
            {"category": "linear", "symbol": "BTCUSDT", "interval": "1"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(server.url + "/nope?x=1", timeout=5)
    assert info.value.code == 404
    assert json.loads(info.value.read())["retCode"] == 10017
    assert [(r["path"], r["status"]) for r in server.requests] == [
        ("/v5/market/mark-price-kline", 404), ("/nope", 404)]
    assert server.requests[-1]["params"] == {"x": "1"}


# ---------------------------------------------------------------------------
# faults
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("fault, exc, status", [
    ("http429", ccxt.RateLimitExceeded, 429),       # JSON body retCode 10006 -> exact map
    ("http403", ccxt.RateLimitExceeded, 403),       # bybit's httpExceptions['403']
    ("http500", ccxt.ExchangeNotAvailable, 500),    # HTML body -> base httpExceptions
    ("http503", ccxt.ExchangeNotAvailable, 503),
    ("retcode10006", ccxt.RateLimitExceeded, 200),
    ("retcode10001", ccxt.BadRequest, 200),
])
def test_fault_exceptions(server, exchange, btc15, fault, exc, status):
    server.inject(fault)
    with pytest.raises(exc) as info:
        kline(exchange, start=T0, limit=5)
    if exc is not ccxt.BadRequest:
        assert isinstance(info.value, ccxt.NetworkError)  # i.e. retryable in ccxt's hierarchy
    else:
        assert not isinstance(info.value, ccxt.NetworkError)
    entry = server.requests[-1]
    assert (entry["path"], entry["status"], entry["fault"]) == ("/v5/market/kline", status, fault)
    assert server.kline_requests() == []
    # the fault was consumed: the next request is normal
    assert opens(kline(exchange, start=T0, limit=5))[-1] == T0
    assert len(server.kline_requests()) == 1 and server.requests[-1]["fault"] is None


def test_faults_apply_in_order_one_per_kline_request(server, exchange, btc15):
    server.inject("retcode10006", "http500", "retcode10001")
    assert server.pending_faults == ["retcode10006", "http500", "retcode10001"]
    exchange.load_markets()  # non-kline requests do not consume faults
    assert server.pending_faults == ["retcode10006", "http500", "retcode10001"]
    for exc in (ccxt.RateLimitExceeded, ccxt.ExchangeNotAvailable, ccxt.BadRequest):
        with pytest.raises(exc):
            kline(exchange, start=T0)
    assert server.pending_faults == []
    assert [r["fault"] for r in server.requests if r["path"] == "/v5/market/kline"] == [
        "retcode10006", "http500", "retcode10001"]


def test_unknown_fault_raises_and_queues_nothing(server):
    with pytest.raises(ValueError):
        server.inject("http429", "meteor")
    assert server.pending_faults == []
    assert set(FAULTS) >= {"http429", "http500", "http503", "retcode10006", "truncated",
                           "overlap", "slow", "retcode10001"}


def test_slow_times_out(server, exchange, btc15):
    exchange.timeout = 500
    server.inject("slow")
    t = time.monotonic()
    with pytest.raises(ccxt.RequestTimeout):
        kline(exchange, start=T0, limit=5)
    assert time.monotonic() - t < server.slow_seconds
    entry = server.requests[-1]
    assert entry["fault"] == "slow" and entry["status"] == 200
    # the server did answer normally (just too late), so it counts as a kline request
    assert server.kline_requests() == [entry]
    # and with a patient client, "slow" is just slow
    exchange.timeout = 10_000
    server.slow_seconds = 0.2
    server.inject("slow")
    assert opens(kline(exchange, start=T0, limit=2)) == [T0 + M15, T0]


def test_truncated_returns_str_not_dict(server, exchange, btc15):
    server.inject("truncated")
    resp = kline(exchange, start=T0, limit=50)
    # the pitfall: no exception, the implicit method returns the raw (cut) text
    assert isinstance(resp, str)
    assert resp.startswith('{"retCode":0')
    with pytest.raises(ValueError):
        json.loads(resp)
    assert server.requests[-1]["fault"] == "truncated" and server.requests[-1]["status"] == 200
    assert server.kline_requests() == []
    # ... and fetch_ohlcv turns it into a silent empty result
    exchange.load_markets()
    server.inject("truncated")
    assert exchange.fetch_ohlcv("BTC/USDT:USDT", "15m", since=T0, limit=50) == []


def test_overlap_adds_earlier_candles_and_a_duplicate(server, exchange, btc15):
    start = T0 + 20 * M15
    server.inject("overlap")
    got = opens(kline(exchange, start=start, limit=10))
    assert len(got) == 10 + 5 + 1
    assert sorted(set(got), reverse=True) == [start + i * M15 for i in range(9, -6, -1)]
    assert len(got) - len(set(got)) == 1
    assert got == sorted(got, reverse=True)  # still newest first, duplicate adjacent
    assert server.requests[-1]["fault"] == "overlap"
    assert len(server.kline_requests()) == 1
    # ccxt filters the pre-`since` rows but keeps the duplicate
    exchange.load_markets()
    server.inject("overlap")
    rows = exchange.fetch_ohlcv("BTC/USDT:USDT", "15m", since=start, limit=1000,
                                params={"until": start + 9 * M15})
    stamps = [r[0] for r in rows]
    assert min(stamps) == start and len(stamps) in (10, 11)
    assert set(stamps) == {start + i * M15 for i in range(10)}


# ---------------------------------------------------------------------------
# logging & lifecycle
# ---------------------------------------------------------------------------
def test_request_log(server, exchange, btc15):
    exchange.fetch_ohlcv("BTC/USDT:USDT", "15m", since=T0, limit=3)
    paths = [r["path"] for r in server.requests]
    assert paths == ["/v5/market/instruments-info"] * 5 + ["/v5/market/kline"]
    for r in server.requests:
        assert set(r) >= {"path", "params", "status", "fault"}
        assert r["status"] == 200 and r["fault"] is None
        assert all(isinstance(v, str) for v in r["params"].values())
    [k] = server.kline_requests()
    assert k["params"]["start"] == str(T0) and k["params"]["limit"] == "3"
    server.clear_requests()
    assert server.requests == []


def test_lifecycle_and_default_clock():
    srv = BybitV5Server()
    assert abs(srv.now_ms - time.time() * 1000) < 5_000  # live clock when not fixed
    srv.now_ms = 123
    assert srv.now_ms == 123
    srv.start()
    try:
        assert srv.url.startswith("http://127.0.0.1:") and not srv.url.endswith(":0")
        with urllib.request.urlopen(srv.url + "/v5/market/time", timeout=5) as resp:
            assert json.loads(resp.read())["time"] == 123
    finally:
        srv.stop()
    srv.stop()  # idempotent
    assert len(DEFAULT_MARKETS) == 4
