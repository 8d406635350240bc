"""Fetch Bybit candles into the local cache and load them back (needs network).

    python examples/fetch_bybit.py [--symbol BTC/USDT:USDT] [--timeframe 1h] [--since 2024-01-01]
                                   [--until DATE] [--cache-dir DIR] [--api-url URL]

    python examples/fetch_bybit.py --api-url https://api-testnet.bybit.com   # testnet, a mirror, a proxy

This is the only example that needs network: it calls Bybit's public REST API through ccxt (no
account or key). ``--api-url`` (or the environment variable DISTILLBT_BYBIT_URL) replaces
Bybit's base address, e.g. with testnet, a mirror, or a local test server such as the one the
tests use (tests/bybit_server.py). Symbols are ccxt unified symbols: BTC/USDT (spot),
BTC/USDT:USDT (linear perpetual), BTC/USD:BTC (inverse).

Candles go to one Parquet file per series under --cache-dir (default $DISTILLBT_CACHE_DIR, else
the per-user cache, e.g. ~/.cache/distillbt). A second run asks Bybit only for the candles
that arrived since the first one. The same on the command line:

    python -m distillbt fetch --symbol BTC/USDT:USDT --timeframe 1h --since 2024-01-01
"""

import argparse

import distillbt


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbol", default="BTC/USDT:USDT", help="ccxt unified symbol (default BTC/USDT:USDT)")
    parser.add_argument("--timeframe", default="1h", help="candle interval: 1m … 1d, 1w (default 1h)")
    parser.add_argument("--since", default="2024-01-01", help="first candle, UTC (default 2024-01-01)")
    parser.add_argument("--until", default=None, help="end of the range, exclusive (default: now)")
    parser.add_argument("--api-url", default=None,
                        help="Bybit REST base address (default $DISTILLBT_BYBIT_URL, else Bybit)")
    parser.add_argument("--cache-dir", default=None, help="cache folder (default $DISTILLBT_CACHE_DIR or ~/.cache/distillbt)")
    args = parser.parse_args()

    try:
        report = distillbt.fetch_candles(args.symbol, args.timeframe, since=args.since, until=args.until,
                                         api_url=args.api_url, cache_dir=args.cache_dir)
    except distillbt.ExchangeError as error:
        # .retryable: rate limits, timeouts, 5xx that outlasted the retries — try again later.
        hint = "try again later" if error.retryable else "check the symbol, interval and URL"
        raise SystemExit(f"fetch failed ({hint}): {error}")
    except distillbt.InputError as error:
        # an unknown symbol or interval, a bad date: retrying will not help
        raise SystemExit(f"fetch refused: {error}")
    print("\n".join(report.summary_lines()))  # the last line is the cache file's path

    # The same series by its data-source name, as every command and load_candles spell it:
    candles = distillbt.load_candles(report.key.source, cache_dir=args.cache_dir)
    print(candles.frame.tail())
    cache = f" --cache-dir {args.cache_dir}" if args.cache_dir else ""
    print(f"\nnext: python -m distillbt data check {report.key.source}{cache}")
    print(f"      python -m distillbt screen strategies/ --data {report.key.source}{cache}")


if __name__ == "__main__":
    main()
