"""Fetch throughput through the real ccxt client against the loopback Bybit v5 server.

Measures the whole path (ccxt request/parse, our pagination and checks, merge, validation,
atomic Parquet write) without the internet's latency, the incremental re-fetch, and what
ccxt's own ``paginate`` option returns for the same range.

    python benchmarks/bench_fetch.py [--candles 20000 100000] [--timeframe 1m]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distillbt.data.bybit import BybitClient  # noqa: E402
from distillbt.data.fetch import fetch_candles, to_ms  # noqa: E402
from distillbt.data.timeframes import timeframe_ms  # noqa: E402
from tests.bybit_server import BybitV5Server, make_candles  # noqa: E402

BYBIT_CODE = {"1m": "1", "5m": "5", "15m": "15", "1h": "60"}


def run(count: int, timeframe: str) -> dict:
    step = timeframe_ms(timeframe)
    start = to_ms("2022-01-01")
    with BybitV5Server(now_ms=start + count * step) as server, tempfile.TemporaryDirectory() as tmp:
        server.add_candles("linear", "BTCUSDT", BYBIT_CODE[timeframe], make_candles(start, count, step, seed=0))
        client = BybitClient(api_url=server.url, exchange_options={"enableRateLimit": False})
        t0 = time.perf_counter()
        report = fetch_candles("BTC/USDT:USDT", timeframe, since=start, cache_dir=tmp, client=client, progress=False)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = fetch_candles("BTC/USDT:USDT", timeframe, since=start, cache_dir=tmp, client=client, progress=False)
        second = time.perf_counter() - t0

        import ccxt

        exchange = ccxt.bybit({"enableRateLimit": False, "options": {"fetchMarkets": {"types": ["linear"]}}})
        for key in exchange.urls["api"]:
            exchange.urls["api"][key] = server.url
        ccxt_result = {}
        for label, params in (("with until", {"until": start + count * step}), ("no until", {})):
            try:
                got = exchange.fetch_ohlcv("BTC/USDT:USDT", timeframe, since=start, params={"paginate": True, **params})
                ccxt_result[label] = f"{len(got):,} candles"
            except ccxt.BaseError as error:
                ccxt_result[label] = type(error).__name__
    return {
        "candles": count,
        "requests": report.requests,
        "first fetch s": first,
        "candles/s": report.fetched_candles / first,
        "re-fetch s (cached)": second,
        "re-fetch requests": again.requests,
        "ccxt paginate=True, until given": ccxt_result["with until"],
        "ccxt paginate=True, no until": ccxt_result["no until"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--timeframe", default="1m", choices=sorted(BYBIT_CODE))
    args = parser.parse_args()
    rows = [run(n, args.timeframe) for n in args.candles]
    headers = list(rows[0])
    print("| " + " | ".join(headers) + " |")
    print("|" + "---|" * len(headers))
    for row in rows:
        print("| " + " | ".join(f"{v:,.2f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else v
                                for v in row.values()) + " |")


if __name__ == "__main__":
    main()
