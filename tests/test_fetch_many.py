"""Fetching several symbols at once: real ccxt client ↔ loopback v5 server ↔ Parquet cache, with
one symbol's failures among good ones."""

import json

import numpy as np
import pytest

from distillbt.cli import main
from distillbt.data.bybit import BybitClient
from distillbt.data.cache import CacheKey, CandleCache
from distillbt.data.fetch import fetch_candles, fetch_many, read_symbols_file, to_ms
from distillbt.errors import DataSourceError, InputError, UnknownTimeframeError

from .bybit_server import BybitV5Server, make_candles

STEP = 15 * 60_000
START = to_ms("2024-01-01")
COUNT = 2_500  # three pages of up to 1000
IDS = {"BTC/USDT:USDT": "BTCUSDT", "ETH/USDT:USDT": "ETHUSDT", "SOL/USDT:USDT": "SOLUSDT",
       "XRP/USDT:USDT": "XRPUSDT"}
BAD_ROW = 1_500  # SOL's candle with high below low, on its second page


@pytest.fixture
def server():
    markets = [("linear", sid, sym.split("/")[0], "USDT") for sym, sid in IDS.items()]
    with BybitV5Server(markets=markets, now_ms=START + COUNT * STEP) as srv:
        for seed, sid in enumerate(IDS.values()):
            srv.add_candles("linear", sid, "15", make_candles(START, COUNT, STEP, seed=10 + seed))
        yield srv


def client_for(server, **kwargs):
    # Tiny backoff so retries cost milliseconds; the retry logic itself is what runs.
    return BybitClient(api_url=server.url, backoff_s=0.001, **kwargs)


def expected_rows(server, symbol, *, until_ms=None):
    rows = np.array(server.candles("linear", IDS[symbol], "15"), dtype="float64")[:, :6]
    return rows if until_ms is None else rows[rows[:, 0] < until_ms]


def cached_rows(cache_dir, symbol):
    entry = CandleCache(cache_dir).read(CacheKey("bybit", "linear", symbol, "15m"))
    frame = entry.candles.frame
    return np.column_stack([frame.index.asi8 // 1_000_000, frame.to_numpy()])


def cache_path(cache_dir, symbol):
    return CandleCache(cache_dir).path(CacheKey("bybit", "linear", symbol, "15m"))


def break_one_candle(server):
    """SOL's candle BAD_ROW gets a high below its low: a malformed page the contract rejects."""
    rows = server.candles("linear", "SOLUSDT", "15")
    t, o, h, lo, c, v, turnover = rows[BAD_ROW]
    server.add_candles("linear", "SOLUSDT", "15", [[t, o, lo * 0.99, lo, c, v, turnover]])


def test_several_symbols_are_each_cached_like_a_single_fetch(server, tmp_path):
    symbols = ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT", "ETH/USDT:USDT"]  # a duplicate
    report = fetch_many(symbols, "15m", since="2024-01-01", cache_dir=tmp_path, client=client_for(server),
                        concurrency=3, progress=False)
    assert [r.symbol for r in report.results] == symbols[:3]  # order kept, the duplicate fetched once
    assert not report.failed
    for result in report.results:
        np.testing.assert_array_equal(cached_rows(tmp_path, result.symbol), expected_rows(server, result.symbol))
        # Each symbol counts its own requests although they share one client: 3 pages each.
        assert result.report.requests == 3
        assert sum(r["params"].get("symbol") == IDS[result.symbol] for r in server.kline_requests()) == 3
    assert report.results[0].line() == (
        "BTC/USDT:USDT 15m: 2,500 candles (2,500 new), 2024-01-01 00:00 → 2024-01-27 00:45")
    assert report.summary_lines()[-1].startswith("3 of 3 symbols fetched: 7,500 new candles in ")
    # The same as fetching one symbol alone.
    alone = tmp_path / "alone"
    fetch_candles("ETH/USDT:USDT", "15m", since="2024-01-01", cache_dir=alone, client=client_for(server),
                  progress=False)
    np.testing.assert_array_equal(cached_rows(alone, "ETH/USDT:USDT"), cached_rows(tmp_path, "ETH/USDT:USDT"))


def test_failing_symbols_are_reported_and_the_others_kept(server, tmp_path):
    # Good caches of the first 1000 candles for the symbols that will fail on later pages.
    first_until = START + 1000 * STEP
    for symbol in ("ETH/USDT:USDT", "SOL/USDT:USDT", "XRP/USDT:USDT"):
        fetch_candles(symbol, "15m", since=START, until=first_until, cache_dir=tmp_path,
                      client=client_for(server), progress=False)
    before = {s: cache_path(tmp_path, s).read_bytes() for s in ("ETH/USDT:USDT", "SOL/USDT:USDT", "XRP/USDT:USDT")}
    server.clear_requests()
    server.inject_for("ETHUSDT", *["http500"] * 5)  # an exchange error outlasting the retries
    server.inject_for("XRPUSDT", *["truncated"] * 5)  # a malformed (cut) answer, every time
    break_one_candle(server)  # SOL: an answer that parses but breaks the candle contract

    symbols = ["BTC/USDT:USDT", "DOGE/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT", "XRP/USDT:USDT", "BTCUSDT"]
    report = fetch_many(symbols, "15m", since=START, cache_dir=tmp_path, client=client_for(server, max_retries=2),
                        concurrency=4, progress=False)
    by_symbol = {r.symbol: r for r in report.results}
    assert [r.symbol for r in report.failed] == symbols[1:]
    assert by_symbol["BTC/USDT:USDT"].ok
    np.testing.assert_array_equal(cached_rows(tmp_path, "BTC/USDT:USDT"), expected_rows(server, "BTC/USDT:USDT"))
    assert "unknown symbol" in by_symbol["DOGE/USDT:USDT"].error
    assert by_symbol["BTCUSDT"].error_type == "UnknownSymbolError"
    assert "after 3 attempts" in by_symbol["ETH/USDT:USDT"].error
    assert by_symbol["XRP/USDT:USDT"].error_type == "ExchangeUnavailableError"
    assert "high" in by_symbol["SOL/USDT:USDT"].error and by_symbol["SOL/USDT:USDT"].error_type == "CandleValidationError"
    # A failing symbol never destroys its good cache.
    for symbol, data in before.items():
        assert cache_path(tmp_path, symbol).read_bytes() == data
        np.testing.assert_array_equal(cached_rows(tmp_path, symbol),
                                      expected_rows(server, symbol, until_ms=first_until))
    lines = report.summary_lines()
    assert len(lines) == len(symbols) + 1
    assert lines[1].startswith("DOGE/USDT:USDT 15m: FAILED: unknown symbol")
    assert lines[-1].startswith("5 of 6 symbols failed (DOGE/USDT:USDT, ETH/USDT:USDT, SOL/USDT:USDT, "
                                "XRP/USDT:USDT, BTCUSDT); the other 1 fetched")
    # The unknown symbols cost no kline request.
    assert {r["params"]["symbol"] for r in server.requests if r["path"] == "/v5/market/kline"} == {
        "BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"}


def test_a_damaged_cache_file_fails_its_symbol_only(server, tmp_path):
    path = cache_path(tmp_path, "ETH/USDT:USDT")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PAR1 not parquet")
    report = fetch_many(["ETH/USDT:USDT", "BTC/USDT:USDT"], "15m", since=START, cache_dir=tmp_path,
                        client=client_for(server), progress=False)
    assert [r.ok for r in report.results] == [False, True]
    assert "damaged" in report.results[0].error
    assert path.read_bytes() == b"PAR1 not parquet"


def test_run_wide_problems_fail_before_any_request(server, tmp_path):
    with pytest.raises(UnknownTimeframeError):
        fetch_many(["BTC/USDT:USDT"], "7m", since=START, cache_dir=tmp_path, client=client_for(server), progress=False)
    with pytest.raises(InputError, match="empty range"):
        fetch_many(["BTC/USDT:USDT"], "15m", since="2024-02-01", until="2024-01-01", cache_dir=tmp_path,
                   client=client_for(server), progress=False)
    with pytest.raises(InputError, match="concurrency"):
        fetch_many(["BTC/USDT:USDT"], "15m", since=START, concurrency=0, client=client_for(server), progress=False)
    assert server.requests == []


def test_an_up_to_date_basket_asks_the_exchange_nothing(server, tmp_path):
    until = START + 1200 * STEP
    symbols = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    fetch_many(symbols, "15m", since=START, until=until, cache_dir=tmp_path, client=client_for(server), progress=False)
    server.clear_requests()
    again = fetch_many(symbols, "15m", since=START, until=until, cache_dir=tmp_path, client=client_for(server),
                       progress=False)
    assert server.requests == []  # not even the market list
    assert [r.report.fetched_candles for r in again.results] == [0, 0]
    assert again.results[1].line().startswith("ETH/USDT:USDT 15m: 1,200 candles (0 new)")


def test_threads_share_one_rate_limit_and_interleave(server, tmp_path):
    # ccxt spaces requests by rateLimit ms per exchange object; three threads share one.
    client = client_for(server, exchange_options={"rateLimit": 60})
    symbols = ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]
    report = fetch_many(symbols, "15m", since=START, cache_dir=tmp_path, client=client, concurrency=3, progress=False)
    assert not report.failed
    klines = [r for r in server.requests if r["path"] == "/v5/market/kline"]
    arrivals = np.array([r["at"] for r in server.requests])
    assert len(klines) == 9
    assert np.diff(arrivals).min() > 0.04  # never two requests inside the limit (60 ms, less loopback jitter)
    order = [r["params"]["symbol"] for r in klines]
    assert sum(a != b for a, b in zip(order, order[1:])) > len(symbols) - 1  # pages of different symbols mix


def test_symbols_file(tmp_path):
    path = tmp_path / "symbols.txt"
    path.write_text("# my pairs\nBTC/USDT:USDT\n\n  ETH/USDT:USDT   # the second\nSOL/USDT:USDT,XRP/USDT:USDT\n")
    assert read_symbols_file(path) == ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT", "XRP/USDT:USDT"]
    (tmp_path / "empty.txt").write_text("# nothing yet\n\n")
    with pytest.raises(InputError, match="names no symbol"):
        read_symbols_file(tmp_path / "empty.txt")
    with pytest.raises(DataSourceError, match="cannot read symbols file"):
        read_symbols_file(tmp_path / "missing.txt")


def _fetch(server, tmp_path, *argv):
    return main(["fetch", *argv, "--timeframe", "15m", "--since", "2024-01-01", "--api-url", server.url,
                 "--cache-dir", str(tmp_path), "--no-progress"])


def test_cli_exit_codes(server, tmp_path, capsys):
    assert _fetch(server, tmp_path, "--symbols", "BTC/USDT:USDT,ETH/USDT:USDT") == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0] == "BTC/USDT:USDT 15m: 2,500 candles (2,500 new), 2024-01-01 00:00 → 2024-01-27 00:45"
    assert out[-1].startswith("2 of 2 symbols fetched")

    assert _fetch(server, tmp_path, "--symbols", "SOL/USDT:USDT,DOGE/USDT:USDT") == 3  # some failed
    captured = capsys.readouterr()
    assert "DOGE/USDT:USDT 15m: FAILED: unknown symbol" in captured.out
    assert captured.err.strip() == "distillbt: 1 of 2 symbols failed"
    np.testing.assert_array_equal(cached_rows(tmp_path, "SOL/USDT:USDT"), expected_rows(server, "SOL/USDT:USDT"))

    assert _fetch(server, tmp_path, "--symbols", "DOGE/USDT:USDT,BTCUSDT") == 2  # all failed
    captured = capsys.readouterr()
    assert captured.out.strip().splitlines()[-1] == "2 of 2 symbols failed: nothing fetched"
    assert len(captured.err.strip().splitlines()) == 1


def test_cli_symbols_file_json_and_the_single_symbol_path(server, tmp_path, capsys):
    listing = tmp_path / "pairs.txt"
    listing.write_text("# two pairs\nETH/USDT:USDT\nXRP/USDT:USDT\n")
    assert _fetch(server, tmp_path, "--symbols-file", str(listing), "--json") == 0
    payload = json.loads(capsys.readouterr().out)
    assert [s["symbol"] for s in payload["symbols"]] == ["ETH/USDT:USDT", "XRP/USDT:USDT"]
    assert payload["failed"] == 0 and payload["symbols"][1]["candles"] == COUNT

    # --symbol keeps its output: the last line is the cache file's path.
    assert _fetch(server, tmp_path, "--symbol", "BTC/USDT:USDT") == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(cache_path(tmp_path, "BTC/USDT:USDT"))


@pytest.mark.parametrize("argv,needle", [
    (["--symbols-file", "no-such-file.txt"], "cannot read symbols file"),
    (["--symbols", " , "], "no symbols"),
    (["--symbols", "BTC/USDT:USDT", "--concurrency", "0"], "concurrency"),
    (["--symbol", "BTC/USDT:USDT", "--symbols", "ETH/USDT:USDT"], "not allowed with"),
])
def test_cli_bad_input_is_one_line_exit_2(server, tmp_path, capsys, argv, needle):
    assert _fetch(server, tmp_path, *argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and needle in err
