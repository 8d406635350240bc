"""The embedded sample market: generate it, look at its regimes, save it as a candle file.

    python examples/sample_market.py [--bars 200000] [--seed 7] [--out sample.parquet]

Runs offline in a second or two. The market is synthetic (and labelled so everywhere).
"""

import argparse

import distillbt


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default="sample.parquet")
    args = parser.parse_args()

    candles = distillbt.sample_market(bars=args.bars, seed=args.seed)
    print(f"{candles.symbol} ({candles.source}, synthetic={candles.synthetic})")
    print(f"{len(candles)} candles of {candles.timeframe}, {candles.start} → {candles.end}")

    shares = candles.true_regimes.value_counts(normalize=True).sort_index()
    returns = candles.frame["close"].pipe(lambda c: (c / c.shift()).apply("log"))
    by_regime = returns.groupby(candles.true_regimes, observed=True).agg(["mean", "std"])
    print("\nregime     share   mean log return/bar   volatility/bar")
    for name, share in shares.items():
        print(f"{name:<9}  {share:5.1%}   {by_regime.loc[name, 'mean']:+.2e}            "
              f"{by_regime.loc[name, 'std']:.2%}")

    candles.frame.to_parquet(args.out)
    reloaded = distillbt.load_file(args.out)
    print(f"\nsaved to {args.out}; reloads as {len(reloaded)} valid candles "
          f"(try: python -m distillbt data check {args.out})")


if __name__ == "__main__":
    main()
