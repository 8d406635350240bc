"""Fetch Bybit candles into the local cache and load them back (needs network).

    python examples/fetch_bybit.py --symbol BTC/USDT:USDT --timeframe 1h --since 2024-01-01
    python examples/fetch_bybit.py --api-url https://api-testnet.bybit.com   # testnet or a mirror

A second run asks Bybit only for the candles that arrived since the first one.
"""

import argparse

import distillbt


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbol", default="BTC/USDT:USDT")
    parser.add_argument("--timeframe", default="1h")
    parser.add_argument("--since", default="2024-01-01")
    parser.add_argument("--until", default=None)
    parser.add_argument("--api-url", default=None, help="Bybit REST base address (default: Bybit)")
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args()

    try:
        report = distillbt.fetch_candles(args.symbol, args.timeframe, since=args.since, until=args.until,
                                         api_url=args.api_url, cache_dir=args.cache_dir)
    except distillbt.ExchangeError as error:
        hint = "try again later" if error.retryable else "check the symbol, interval and URL"
        raise SystemExit(f"fetch failed ({hint}): {error}")
    print("\n".join(report.summary_lines()))

    # The same series by its data-source name, as every command spells it:
    candles = distillbt.load_candles(report.key.source, cache_dir=args.cache_dir)
    print(candles.frame.tail())


if __name__ == "__main__":
    main()
