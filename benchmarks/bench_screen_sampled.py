"""The screen against full backtests when running every full backtest is out of reach.

    python benchmarks/bench_screen_sampled.py [--sample-bars 500000] [--full-runs 12] [--jobs 2] [--seed 0]

``bench_screen.py`` runs the full Backtrader backtest of every model configuration; on 500k
candles that is ~25 s a run, half an hour for the 66 configurations of ``strategies/`` on a
quiet 2-core machine (hours on a loaded one). This script measures the same things in one run
at a fraction of the cost, and says how:

- **screen**: exactly what ``screen`` does — distil the training period (exact-linear, d + 1
  points per regime and task), fit every model on the points and run it vectorised over the
  screening period, in one process (timed);
- **full scores of every configuration**: each model fitted on the real training candles and
  run by the vectorised execution, which reproduces Backtrader's fills, commission and sizing
  (``strategy.ModelStrategy.vectorized``) — checked here against real Backtrader runs;
- **full Backtrader backtests** of ``--full-runs`` configurations drawn at random (seeded): their
  final values against the vectorised ones (largest relative difference) and their wall times,
  whose mean × the number of configurations estimates the time of backtesting everything
  (reported as an estimate, with the spread of the per-run times).

Prints the Spearman rank correlation of screen and full scores over all configurations, the
recall of the true top-5 among the 10 best screen scores, and screen vs (estimated) full time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distillbt._vectorised_screen import screen_vectorised  # noqa: E402
from distillbt.backtest import BacktestJob, run_many  # noqa: E402
from distillbt.data.sources import load_candles  # noqa: E402
from distillbt.discovery import Configuration, discover  # noqa: E402
from distillbt.screen import DEFAULT_FRACTIONS, TASK_OF_TARGET, _distilled_sets, _periods  # noqa: E402
from distillbt.strategy import ModelStrategy  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="sample")
    parser.add_argument("--sample-bars", type=int, default=500_000)
    parser.add_argument("--full-runs", type=int, default=12)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cash, commission = 10_000.0, 0.001

    candles = load_candles(args.data, sample_bars=args.sample_bars, seed=args.seed)
    configs = [c for c in discover(ROOT / "strategies").configurations() if issubclass(c.strategy.cls, ModelStrategy)]
    periods = _periods(candles, DEFAULT_FRACTIONS)
    data = periods.pop("data")
    start, stop = periods["screening"]

    sets, distill_seconds = _distilled_sets(None, data, sorted({TASK_OF_TARGET[c.strategy.cls.target] for c in configs}),
                                            method="exact-linear", size=None, per_regime=True, seed=args.seed,
                                            n_jobs=1, backend="loky", progress=False)
    began = time.perf_counter()
    outcomes = screen_vectorised(configs, sets, candles, task_of_target=TASK_OF_TARGET, cash=cash,
                                 commission=commission, start=start, stop=stop, n_jobs=1)
    screen_seconds = time.perf_counter() - began
    screen_scores = np.array([o["score"] for o in outcomes])

    # every model fitted on the real candles before the screening period instead (sets=None)
    full = screen_vectorised(configs, None, candles, task_of_target=TASK_OF_TARGET, cash=cash,
                             commission=commission, start=start, stop=stop, n_jobs=1)
    full_scores = np.array([r["score"] for r in full])

    rng = np.random.default_rng(args.seed)
    drawn = sorted(rng.choice(len(configs), size=min(args.full_runs, len(configs)), replace=False).tolist())
    index = candles.frame.index
    jobs = [BacktestJob(Configuration(configs[i].strategy, {**configs[i].params, "trade_start": index[start]},
                                      configs[i].name), candles, cash=cash, commission=commission,
                        start=index[start], end=index[stop - 1], warmup_bars=start, record_equity=False)
            for i in drawn]
    results = run_many(jobs, n_jobs=args.jobs, progress=True)
    errors = [r["error"] for r in results if r.get("error")]
    if errors:
        raise SystemExit("full backtests failed: " + "; ".join(errors))
    per_run = np.array([r["seconds"] for r in results])
    diffs = [abs(full[i]["final_value"] - r["final_value"]) / r["final_value"] for i, r in zip(drawn, results)]
    estimated_full = per_run.mean() * len(configs)

    order = np.argsort(-screen_scores)
    survivors = set(order[:10].tolist())
    true_top = np.argsort(-full_scores)[:5]
    recall = sum(int(i) in survivors for i in true_top) / 5
    rho = spearmanr(screen_scores, full_scores).statistic
    print(f"data: {candles.source}{' (synthetic)' if candles.synthetic else ''}, {len(candles):,} candles; screening "
          f"{stop - start:,} candles; seed {args.seed}; {len(configs)} model configurations; exact-linear, "
          f"{next(iter(sets.values())).size} points per task")
    print("| configurations | distil s | screen s (1 process) | Backtrader runs | s per run (mean ± sd) "
          "| full backtests s (estimated) | full / screen | full / (screen + distil) | Spearman | top-5 recall "
          "(10 survivors) | max vectorised vs Backtrader difference |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {len(configs)} | {distill_seconds:.1f} | {screen_seconds:.2f} | {len(drawn)} | {per_run.mean():.1f} ± "
          f"{per_run.std():.1f} | {estimated_full:.0f} | {estimated_full / screen_seconds:.0f}x | "
          f"{estimated_full / (screen_seconds + distill_seconds):.0f}x | {rho:.3f} | {recall:.2f} | {max(diffs):.1e} |")
    by_strategy = {}
    for c, s, f in zip(configs, screen_scores, full_scores):
        by_strategy.setdefault(c.strategy.name, []).append((s, f))
    print("per strategy: " + "; ".join(
        f"{name} ({len(v)}) Spearman {spearmanr(*zip(*v)).statistic:.3f}" for name, v in by_strategy.items()))


if __name__ == "__main__":
    main()
