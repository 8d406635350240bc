"""How fast a full Backtrader backtest runs with each data feed, and what a run costs to set up.

    python benchmarks/bench_backtest.py [--bars 100000 500000] [--setup-bars 300] [--setup-runs 50]

Prints two markdown tables, measured in this one process (Backtrader is single-threaded, so
one core):

1. SmaCross (fast 10, slow 50) on sample-market candles, ``Cerebro(stdstats=False)`` with the
   broker settings of ``distillbt.backtest``, fed by ``bt.feeds.PandasData`` and by
   ``NumpyFeed``; and ``run_backtest`` itself (NumpyFeed plus the recording analyzer, the
   statistics and the result dict). Seconds (best of ``--repeat``) and bars per second.
2. The per-run cost of short runs: the same three on ``--setup-bars`` candles (median of
   ``--setup-runs`` runs), and the fixed part of it — Cerebro, feed, strategy, broker, results,
   whatever the length — approached by a run on 60 candles (SmaCross needs 51 before
   Backtrader's vectorised SMA stops indexing past the end of a shorter feed).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from pathlib import Path

import backtrader as bt

from distillbt.backtest import NumpyFeed, run_backtest
from distillbt.data.sample import sample_market
from distillbt.discovery import load_strategy_file

SmaCross = load_strategy_file(
    Path(__file__).resolve().parents[1] / "strategies" / "sma_cross.py").SmaCross
PARAMS = {"fast": 10, "slow": 50}


def _plain(feed) -> float:
    """A hand-built Cerebro run (the way a Backtrader user would write it); final value."""
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.setcash(10_000)
    cerebro.broker.setcommission(commission=0.001)
    cerebro.broker.set_checksubmit(False)
    cerebro.addsizer(bt.sizers.PercentSizer, percents=95)
    cerebro.adddata(feed)
    cerebro.addstrategy(SmaCross, **PARAMS)
    cerebro.run()
    return cerebro.broker.getvalue()


VARIANTS = {
    "PandasData": lambda c: _plain(bt.feeds.PandasData(dataname=c.frame)),
    "NumpyFeed": lambda c: _plain(NumpyFeed.from_candles(c)),
    "run_backtest (NumpyFeed + recorder + stats)":
        lambda c: run_backtest(SmaCross, c, params=PARAMS)["final_value"],
}


def _time(run, candles) -> tuple[float, float]:
    gc.collect()
    began = time.perf_counter()
    value = run(candles)
    return time.perf_counter() - began, value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, nargs="+", default=[100_000, 500_000])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--setup-bars", type=int, default=300)
    parser.add_argument("--setup-runs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    small = sample_market(bars=args.setup_bars, seed=args.seed)
    for run in VARIANTS.values():  # imports and first-call costs out of the way
        run(small)

    print("| feed | bars | seconds | bars/s | final value |")
    print("|---|---:|---:|---:|---:|")
    for bars in args.bars:
        candles = sample_market(bars=bars, seed=args.seed)
        for label, run in VARIANTS.items():
            seconds, value = min(_time(run, candles) for _ in range(args.repeat))
            print(f"| {label} | {bars:,} | {seconds:.2f} | {bars / seconds:,.0f} | "
                  f"{value:,.6f} |", flush=True)

    print()
    n = args.setup_bars
    tiny = sample_market(bars=60, seed=args.seed)
    print(f"| short runs | {n} bars, median ms | runs/s | 60 bars (≈ fixed set-up), ms |")
    print("|---|---:|---:|---:|")
    for label, run in VARIANTS.items():
        one = statistics.median(_time(run, small)[0] for _ in range(args.setup_runs))
        fixed = statistics.median(_time(run, tiny)[0] for _ in range(args.setup_runs))
        print(f"| {label} | {1000 * one:.1f} | {1 / one:,.0f} | {1000 * fixed:.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
