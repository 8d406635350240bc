"""Screen versus full Backtrader backtests of the same configurations, side by side in one run.

    python benchmarks/bench_screen.py [--data sample] [--sample-bars 500000] [--jobs 2] [--method gradient]

Runs ``screen(..., validate=True)`` on the model strategies of ``strategies/`` (copied into a
temporary folder: the plain ones have no fast path yet and are left out) and prints: the
screen's wall time (fitting every model on distilled points + vectorised evaluation over the
screening period) in one process and with --jobs workers, the full backtests' time (each configuration fitted on the
real training candles and backtested with Backtrader on the same period; sum of per-run wall
times, so the ratio — taken against the one-process screen — does not depend on --jobs), their ratio, the Spearman rank correlation of
screen and full scores, the recall of the true top-5 among the 10 survivors, and the largest
difference between the vectorised and Backtrader executions of the same real-fitted model.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distillbt.data.sources import load_candles  # noqa: E402
from distillbt.discovery import discover  # noqa: E402
from distillbt.screen import screen  # noqa: E402
from distillbt.strategy import ModelStrategy  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="sample")
    parser.add_argument("--sample-bars", type=int, default=500_000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--method", default="exact-linear")
    parser.add_argument("--size", type=int, default=None, help="default: the screen's (d+1 per regime for exact-linear)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    candles = load_candles(args.data, sample_bars=args.sample_bars, seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        for spec in discover(ROOT / "strategies").strategies:
            if issubclass(spec.cls, ModelStrategy):
                shutil.copy(spec.file, tmp)
        result = screen(tmp, candles, method=args.method, size=args.size, top=10, validate=True,
                        n_jobs=args.jobs, seed=args.seed, progress=True)
        # The same screen in one process: the fair match for full-backtest time summed over runs.
        single = screen(tmp, candles, method=args.method, size=args.size, top=1, n_jobs=1,
                        seed=args.seed, progress=True)
    s = result.summary
    one = single.summary["screen_seconds"]
    same = [r["screen_score"] for r in result.records] == [r["screen_score"] for r in single.records]
    print(f"data: {candles.source}{' (synthetic)' if candles.synthetic else ''}, {len(candles):,} candles; "
          f"screening period {s['periods']['screening']['candles']:,} candles; seed {args.seed}; "
          f"distilled with {args.method}, {next(iter(s['distilled'].values()))['points']} points per task")
    print(f"| configurations | distil s | screen s, 1 process | screen s, --jobs {args.jobs} | full backtests s "
          "| full / screen | full / (screen + distil) | Spearman | top-5 recall (10 survivors) "
          "| max vectorised vs Backtrader difference | PBO |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    full = s["validation_full_seconds"]
    print(f"| {s['model_configurations']} | {s['distill_seconds']:.1f} | {one:.2f} | {s['screen_seconds']:.2f} | "
          f"{full:.0f} | {full / one:.0f}x | {full / (one + s['distill_seconds']):.0f}x | "
          f"{s['spearman']:.3f} | {s['topk_recall']:.2f} | {s['execution_max_rel_diff']:.1e} | {s.get('pbo', float('nan')):.2f} |")
    print(f"same screen scores with 1 process and --jobs {args.jobs}: {same}")
    if s["wrongly_eliminated"]:
        print("wrongly eliminated: " + "; ".join(s["wrongly_eliminated"]))


if __name__ == "__main__":
    main()
