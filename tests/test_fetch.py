"""The Bybit path end to end: real ccxt client ↔ loopback v5 server ↔ Parquet cache."""

import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from distillbt.cli import main
from distillbt.data.bybit import BybitClient
from distillbt.data.cache import CacheKey, CandleCache
from distillbt.data.fetch import fetch_candles, to_ms
from distillbt.data.sources import load_candles
from distillbt.errors import (
    ExchangeRejectedError,
    ExchangeUnavailableError,
    UnknownSymbolError,
    UnknownTimeframeError,
)

from .bybit_server import BybitV5Server, make_candles

STEP = 15 * 60_000
START = to_ms("2024-01-01")
COUNT = 4_321  # five pages of 1000 and a bit
GAP_INDICES = {100, 101, 102, 2500}  # an exchange outage: reported, never invented
LINEAR = CacheKey("bybit", "linear", "BTC/USDT:USDT", "15m")


@pytest.fixture
def server():
    # The server's clock sits 7 minutes into the last candle, which is therefore unfinished.
    now = START + (COUNT - 1) * STEP + 7 * 60_000
    with BybitV5Server(now_ms=now) as srv:
        srv.add_candles("linear", "BTCUSDT", "15", make_candles(START, COUNT, STEP, seed=1, skip=GAP_INDICES))
        srv.add_candles("spot", "BTCUSDT", "15", make_candles(START, 1500, STEP, seed=2))
        srv.add_candles("inverse", "BTCUSD", "60", make_candles(START, 1200, 4 * STEP, seed=3))
        yield srv


def client_for(server, **kwargs):
    # Tiny backoff so retries cost milliseconds; the retry logic itself is what runs.
    return BybitClient(api_url=server.url, backoff_s=0.001, **kwargs)


def expected_frame(server, category, symbol_id, interval, *, until_ms=None):
    rows = np.array(server.candles(category, symbol_id, interval), dtype="float64")
    # ccxt reports volume in the base currency: Bybit's turnover column for inverse contracts.
    rows = rows[:, [0, 1, 2, 3, 4, 6 if category == "inverse" else 5]]
    rows = rows[rows[:, 0] + STEP * (4 if interval == "60" else 1) <= server.now_ms]  # finished only
    if until_ms is not None:
        rows = rows[rows[:, 0] < until_ms]
    return rows


def cached_rows(cache_dir, key=LINEAR):
    frame = CandleCache(cache_dir).read(key).candles.frame
    times = frame.index.asi8 // 1_000_000
    return np.column_stack([times, frame.to_numpy()])


def test_fetch_many_pages_every_candle_once_in_order(server, tmp_path):
    report = fetch_candles("BTC/USDT:USDT", "15m", since="2024-01-01", cache_dir=tmp_path,
                           client=client_for(server), progress=False)
    got = cached_rows(tmp_path)
    want = expected_frame(server, "linear", "BTCUSDT", "15")
    assert len(want) == COUNT - len(GAP_INDICES) - 1  # the unfinished candle is not stored
    np.testing.assert_array_equal(got, want)
    assert np.all(np.diff(got[:, 0]) > 0)
    klines = server.kline_requests()
    assert len(klines) == 5
    assert all(int(r["params"]["limit"]) <= 1000 for r in klines)
    assert all(r["params"]["category"] == "linear" for r in klines)
    # Gaps are reported with their size, not filled.
    assert len(report.candles.gaps) == 2
    assert report.candles.missing_candles == len(GAP_INDICES)
    assert report.fetched_candles == len(want)


@pytest.mark.parametrize("symbol,category,symbol_id,interval,timeframe", [
    ("BTC/USDT", "spot", "BTCUSDT", "15", "15m"),
    ("BTC/USD:BTC", "inverse", "BTCUSD", "60", "1h"),
])
def test_spot_and_inverse_symbols(server, tmp_path, symbol, category, symbol_id, interval, timeframe):
    fetch_candles(symbol, timeframe, since=START, cache_dir=tmp_path, client=client_for(server), progress=False)
    key = CacheKey("bybit", category, symbol, timeframe)
    got = cached_rows(tmp_path, key)
    np.testing.assert_array_equal(got, expected_frame(server, category, symbol_id, interval))
    assert {r["params"]["category"] for r in server.kline_requests()} == {category}


def test_faults_leave_the_same_cache_as_a_clean_run(server, tmp_path):
    clean_dir, faulty_dir = tmp_path / "clean", tmp_path / "faulty"
    fetch_candles("BTC/USDT:USDT", "15m", since=START, cache_dir=clean_dir, client=client_for(server), progress=False)
    server.inject("http429", "http500", "retcode10006", "truncated", "overlap", "http503",
                  "overlap", "truncated", "http403", "retcode10016", "http502json")
    fetch_candles("BTC/USDT:USDT", "15m", since=START, cache_dir=faulty_dir, client=client_for(server), progress=False)
    np.testing.assert_array_equal(cached_rows(faulty_dir), cached_rows(clean_dir))
    faults = [r["fault"] for r in server.requests if r["fault"]]
    assert {"http429", "http500", "retcode10006", "truncated", "overlap", "http503", "http403",
            "retcode10016", "http502json"} <= set(faults)


def test_a_definite_rejection_is_not_retried(server, tmp_path):
    server.inject("retcode10001")
    with pytest.raises(ExchangeRejectedError, match="params error") as info:
        fetch_candles("BTC/USDT:USDT", "15m", since=START, cache_dir=tmp_path, client=client_for(server), progress=False)
    assert not info.value.retryable
    assert [r["fault"] for r in server.requests if "kline" in r["path"]] == ["retcode10001"]


def test_slow_server_times_out_and_is_retried(server, tmp_path):
    server.slow_seconds = 1.0
    server.inject("slow")
    client = client_for(server, timeout_ms=300)
    fetch_candles("BTC/USDT:USDT", "15m", since=START, cache_dir=tmp_path, client=client, progress=False)
    np.testing.assert_array_equal(cached_rows(tmp_path), expected_frame(server, "linear", "BTCUSDT", "15"))


def test_persistent_failure_is_typed_and_keeps_the_old_cache(server, tmp_path):
    until = START + 1000 * STEP
    fetch_candles("BTC/USDT:USDT", "15m", since=START, until=until, cache_dir=tmp_path,
                  client=client_for(server), progress=False)
    path = CandleCache(tmp_path).path(LINEAR)
    before = path.read_bytes()
    server.inject(*["http500"] * 10)
    with pytest.raises(ExchangeUnavailableError, match="after 3 attempts") as info:
        fetch_candles("BTC/USDT:USDT", "15m", since=START, cache_dir=tmp_path,
                      client=client_for(server, max_retries=2), progress=False)
    assert info.value.retryable
    assert path.read_bytes() == before


def test_interrupted_fetch_keeps_its_checkpoints_and_resumes(server, tmp_path):
    # Page 3 fails for good: pages 1-2 were checkpointed and a rerun asks only for the rest.
    server.inject("overlap", "overlap", *["http500"] * 3)
    with pytest.raises(ExchangeUnavailableError):
        fetch_candles("BTC/USDT:USDT", "15m", since=START, cache_dir=tmp_path,
                      client=client_for(server, max_retries=2), progress=False, checkpoint_pages=2)
    entry = CandleCache(tmp_path).read(LINEAR)
    assert entry.covered == [(START, START + 2000 * STEP)]
    server.requests.clear()
    fetch_candles("BTC/USDT:USDT", "15m", since=START, cache_dir=tmp_path, client=client_for(server), progress=False)
    assert min(int(r["params"]["start"]) for r in server.kline_requests()) == START + 2000 * STEP
    np.testing.assert_array_equal(cached_rows(tmp_path), expected_frame(server, "linear", "BTCUSDT", "15"))


def test_incremental_fetch_asks_only_for_what_is_missing(server, tmp_path):
    first_until, second_since = START + 1500 * STEP, START + 500 * STEP
    fetch_candles("BTC/USDT:USDT", "15m", since=second_since, until=first_until, cache_dir=tmp_path,
                  client=client_for(server), progress=False)
    server.requests.clear()
    # Later --until and earlier --since: only the two missing ends are requested.
    fetch_candles("BTC/USDT:USDT", "15m", since=START, cache_dir=tmp_path, client=client_for(server), progress=False)
    asked = [(int(r["params"]["start"]), int(r["params"]["end"])) for r in server.kline_requests()]
    assert all(end < second_since or start >= first_until for start, end in asked)
    assert min(s for s, _ in asked) == START
    whole = tmp_path / "whole"
    fetch_candles("BTC/USDT:USDT", "15m", since=START, cache_dir=whole, client=client_for(server), progress=False)
    np.testing.assert_array_equal(cached_rows(tmp_path), cached_rows(whole))
    # A third fetch of a covered range makes no kline request at all.
    server.requests.clear()
    fetch_candles("BTC/USDT:USDT", "15m", since=START, until=first_until, cache_dir=tmp_path,
                  client=client_for(server), progress=False)
    assert server.kline_requests() == []


def test_failed_write_leaves_the_old_file_intact(server, tmp_path, monkeypatch):
    fetch_candles("BTC/USDT:USDT", "15m", since=START, until=START + 800 * STEP, cache_dir=tmp_path,
                  client=client_for(server), progress=False)
    path = CandleCache(tmp_path).path(LINEAR)
    before = path.read_bytes()
    real_write = pq.write_table

    def write_half_then_die(table, where, **kwargs):
        real_write(table.slice(0, len(table) // 2), where, **kwargs)  # bytes hit the disk...
        raise OSError("disk full")  # ...and the write dies half-way

    monkeypatch.setattr(pq, "write_table", write_half_then_die)
    with pytest.raises(OSError, match="disk full"):
        fetch_candles("BTC/USDT:USDT", "15m", since=START, cache_dir=tmp_path, client=client_for(server), progress=False)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert len(CandleCache(tmp_path).read(LINEAR).candles) == 800 - 3  # readable; 3 gap candles
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left behind


def test_unknown_symbol_is_a_typed_error(server, tmp_path):
    with pytest.raises(UnknownSymbolError, match="DOGE/USDT:USDT"):
        fetch_candles("DOGE/USDT:USDT", "15m", since=START, cache_dir=tmp_path, client=client_for(server), progress=False)
    assert server.kline_requests() == []


def test_unknown_interval_fails_before_any_request(server, tmp_path):
    with pytest.raises(UnknownTimeframeError, match="7m"):
        fetch_candles("BTC/USDT:USDT", "7m", since=START, cache_dir=tmp_path, client=client_for(server), progress=False)
    assert server.requests == []


@pytest.mark.parametrize("argv,needle", [
    (["--symbol", "DOGE/USDT:USDT", "--timeframe", "15m"], "unknown symbol"),
    (["--symbol", "BTCUSDT", "--timeframe", "15m"], "unified symbol"),
    (["--symbol", "BTC/USDT:USDT", "--timeframe", "7m"], "unknown timeframe"),
    (["--symbol", "BTC/USDT:USDT", "--timeframe", "15m", "--until", "2023-01-01"], "empty range"),
])
def test_cli_bad_fetch_exits_2_with_one_line(server, tmp_path, capsys, argv, needle):
    code = main(["fetch", *argv, "--since", "2024-01-01", "--api-url", server.url,
                 "--cache-dir", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and needle in err


def test_cli_fetch_then_list_and_check(server, tmp_path):
    """The real entry point in a subprocess, with the base URL from the environment."""
    env = {**__import__("os").environ, "DISTILLBT_BYBIT_URL": server.url}
    run = subprocess.run(
        [sys.executable, "-m", "distillbt", "fetch", "--symbol", "BTC/USDT:USDT", "--timeframe", "15m",
         "--since", "2024-01-01", "--cache-dir", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    path = CandleCache(tmp_path).path(LINEAR)
    assert lines[-1] == str(path)
    assert f"fetched {COUNT - len(GAP_INDICES) - 1} new candles" in run.stdout
    assert "gaps: 2 (4 missing candles)" in run.stdout

    listing = subprocess.run([sys.executable, "-m", "distillbt", "data", "list", "--cache-dir", str(tmp_path)],
                             capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if "bybit:BTC/USDT:USDT:15m" in line)
    assert str(COUNT - len(GAP_INDICES) - 1) in row and "2024-01-01T00:00:00+00:00" in row

    candles = load_candles("bybit:BTC/USDT:USDT:15m", cache_dir=tmp_path)
    assert len(candles) == COUNT - len(GAP_INDICES) - 1 and candles.timeframe == "15m"
    check = subprocess.run([sys.executable, "-m", "distillbt", "data", "check", "bybit:BTC/USDT:USDT:15m",
                            "--cache-dir", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0 and "rows:     4316" in check.stdout


def test_uncached_exchange_source_names_the_fix(tmp_path, capsys):
    assert main(["data", "check", "bybit:ETH/USDT:USDT:1h", "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not cached" in err and "distillbt fetch" in err and len(err.strip().splitlines()) == 1


def test_damaged_cache_file_is_reported(tmp_path, capsys):
    path = CandleCache(tmp_path).path(LINEAR)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PAR1 this is not parquet")
    assert main(["data", "list", "--cache-dir", str(tmp_path)]) == 2
    assert "damaged" in capsys.readouterr().err
