"""How fast the embedded sample market generates candles, and how much memory it takes.

    python benchmarks/bench_sample_market.py [--bars 100000 250000 1000000] [--repeat 3]

Prints a markdown table: bars, median wall time of ``sample_market`` (validation included),
bars per second, the size of the resulting frame, and the peak memory allocated while
generating it (traced by ``tracemalloc`` in a separate, untimed run, since tracing slows
allocation down). Then the statistics the README quotes, on the largest size: the regime
shares against the configured ones, the lag-1 autocorrelation of |log return| (volatility
clustering), the excess kurtosis of log returns (fat tails), and the lag-1 Spearman IC of
returns (the learnable predictability).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc

import numpy as np
from scipy.stats import kurtosis, spearmanr

from distillbt.data.sample import DEFAULT_REGIME_SHARES, sample_market

MB = 1024**2


def _timed(bars: int, seed: int) -> float:
    gc.collect()
    start = time.perf_counter()
    sample_market(bars=bars, seed=seed)
    return time.perf_counter() - start


def _memory(bars: int, seed: int) -> tuple[float, float]:
    """Size of the frame and peak traced allocation during generation, in MB."""
    gc.collect()
    tracemalloc.start()
    try:
        candles = sample_market(bars=bars, seed=seed)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    frame = candles.frame.memory_usage(index=True, deep=True).sum()
    return frame / MB, peak / MB


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, nargs="+", default=[100_000, 250_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    sample_market(bars=1_000, seed=args.seed)  # imports and first-call costs out of the way
    print("| bars | median s | bars/s | frame MB | peak MB while generating |")
    print("|---:|---:|---:|---:|---:|")
    for bars in args.bars:
        seconds = statistics.median(_timed(bars, args.seed) for _ in range(args.repeat))
        frame_mb, peak_mb = _memory(bars, args.seed)
        print(f"| {bars:,} | {seconds:.3f} | {bars / seconds:,.0f} | {frame_mb:.1f} "
              f"| {peak_mb:.1f} |")
    _statistics(max(args.bars), args.seed)


def _statistics(bars: int, seed: int) -> None:
    candles = sample_market(bars=bars, seed=seed)
    r = np.diff(np.log(candles.frame["close"].to_numpy()))
    shares = candles.true_regimes.value_counts(normalize=True)
    print(f"\nstatistics of {bars:,} bars, seed {seed} (synthetic):")
    print("regime shares: " + ", ".join(f"{k} {shares.get(k, 0):.3f} (configured {v:.2f})"
                                        for k, v in DEFAULT_REGIME_SHARES.items()))
    print(f"lag-1 autocorrelation of |r|: {np.corrcoef(np.abs(r[:-1]), np.abs(r[1:]))[0, 1]:.3f}")
    print(f"excess kurtosis of r: {kurtosis(r):.1f}")
    print(f"lag-1 Spearman IC of r: {spearmanr(r[:-1], r[1:]).statistic:.3f}")


if __name__ == "__main__":
    main()
