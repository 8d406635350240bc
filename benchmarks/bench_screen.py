"""Screen versus full Backtrader backtests of the same configurations, side by side in one run.

    python benchmarks/bench_screen.py [--data sample] [--sample-bars 300000] [--jobs 2] [--seeds 0,1,2]
                                      [--plain] [--method exact-linear]

Runs ``screen(..., validate=True)`` — the screen's own accounting (``distillbt.screen``,
"Accounting") — on the model strategies of ``strategies/`` (copied into a temporary folder;
``--plain`` adds the plain ones) once per seed (the sample market's seed and the screen's),
and prints per seed and as mean ± std over seeds:

- ``screen s``: *all* the screen's time before survivors (discovery, periods, distillation,
  model strategies vectorised, plain strategies with their fallbacks), with ``--jobs`` workers;
- ``full s``: the wall time of the full Backtrader backtests of every configuration on the
  same period with the same ``--jobs`` workers — the baseline of ``distillbt.baseline``
  (numpy feed, bounded warm-up, each model fitted outside Backtrader on the real candles
  before the period, shared by its rule variants within a worker);
- their ratio, and the model path's own ratio (its share of the full time ÷ distillation +
  model strategies);
- Spearman between screen and full scores with its bootstrap 90 % interval, the recall of the
  true top-5 among the 10 survivors, and the largest relative difference in final value
  between the vectorised execution and Backtrader's (independent) execution of the same
  real-fitted model.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distillbt.baseline import is_model  # noqa: E402
from distillbt.data.sources import load_candles  # noqa: E402
from distillbt.discovery import discover  # noqa: E402
from distillbt.screen import screen  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="sample")
    parser.add_argument("--sample-bars", type=int, default=300_000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--method", default="exact-linear")
    parser.add_argument("--size", type=int, default=None, help="default: the screen's (d+1 per regime for exact-linear)")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--plain", action="store_true", help="screen the plain strategies of strategies/ too")
    args = parser.parse_args()

    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        candles = load_candles(args.data, sample_bars=args.sample_bars, seed=seed)
        with tempfile.TemporaryDirectory() as tmp:
            for config in {c.strategy.file: c for c in discover(ROOT / "strategies").configurations()}.values():
                if args.plain or is_model(config):
                    shutil.copy(config.strategy.file, tmp)
            s = screen(tmp, candles, method=args.method, size=args.size, top=10, validate=True,
                       n_jobs=args.jobs, seed=seed, progress=True).summary
        model = s["paths"].get("model", {})
        rows.append({"seed": seed, "configs": s["configurations"], "distil": s["distill_seconds"],
                     "model": s["model_seconds"], "plain": s["plain_seconds"], "screen": s["screen_seconds"],
                     "full": s["validation_full_seconds"], "speedup": s["speedup"],
                     "model_speedup": model.get("speedup", float("nan")), "rho": s["spearman"],
                     "ci": s.get("spearman_ci90", [float("nan")] * 2), "recall": s["topk_recall"],
                     "diff": s.get("execution_max_rel_diff", float("nan")), "warm": s["validation_warmup_bars"],
                     "screening": s["periods"]["screening"]["candles"], "source": candles.source})
        print(f"data: {candles.source}{' (synthetic)' if candles.synthetic else ''}, {len(candles):,} candles; "
              f"screening period {rows[-1]['screening']:,} candles; full backtests' warm-up ≤ {rows[-1]['warm']} "
              f"bars; distilled with {args.method}; --jobs {args.jobs}", flush=True)
    print("| seed | configurations | distil s | model s | plain s | screen s (all) | full s | full / screen "
          "| model path | Spearman [90%] | top-5 recall | max vectorised vs Backtrader |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for r in rows:
        print(f"| {r['seed']} | {r['configs']} | {r['distil']:.1f} | {r['model']:.1f} | {r['plain']:.1f} | "
              f"{r['screen']:.1f} | {r['full']:.0f} | {r['speedup']:.1f}x | {r['model_speedup']:.1f}x | "
              f"{r['rho']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}] | {r['recall']:.2f} | {r['diff']:.1e} |")
    if len(rows) > 1:
        def ms(key):
            values = [r[key] for r in rows]
            return f"{statistics.mean(values):.3g} ± {statistics.stdev(values):.2g}"
        print(f"| mean ± std | | {ms('distil')} | {ms('model')} | {ms('plain')} | {ms('screen')} | {ms('full')} | "
              f"{ms('speedup')}x | {ms('model_speedup')}x | {ms('rho')} | {ms('recall')} | |")


if __name__ == "__main__":
    main()
