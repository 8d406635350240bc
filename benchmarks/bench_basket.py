"""A basket screen against the full Backtrader backtests of every configuration × instrument.

    python benchmarks/bench_basket.py [--instruments 10] [--bars 50000] [--seeds 0 1] [--pool pooled]
                                      [--validate-sample N] [--data SOURCE ...] [--jobs 2]
                                      [--scheduler tcp://HOST:PORT]

Runs :func:`distillbt.basket_screen.screen_basket` on the shipped ``strategies/`` (copied to a
temporary folder) over a synthetic basket (``--instruments`` sample instruments of ``--bars``
candles sharing a market factor, the basket's seed = the run's seed) or the given ``--data``
sources, with the screen's own accounting: ``screen s`` is all the time before survivors
(every instrument's distillation, the model strategies vectorised on every instrument, the
plain strategies' surrogates learned once and walked on every instrument, with their full
fallbacks); ``full s`` the wall time of the baseline full backtests of every configuration on
every instrument's screening period on the same workers (with ``--validate-sample N``: N
configurations × every instrument, scaled to all), pooled models' fits included; with
``--scheduler`` the screen and its baseline both run on that Dask cluster. Prints per
seed and mean ± std: wall time, peak memory (this process and its workers: ru_maxrss),
Spearman of basket scores (and the lowest per instrument) and the speed-up.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distillbt.basket_screen import screen_basket  # noqa: E402
from distillbt.data.basket import load_basket  # noqa: E402


def _peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, workers) / 1024.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instruments", type=int, default=10)
    parser.add_argument("--bars", type=int, default=50_000)
    parser.add_argument("--data", action="append", default=None, help="instead of the synthetic basket")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--pool", default="pooled", choices=["pooled", "per-instrument"])
    parser.add_argument("--validate-sample", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--scheduler", default=None, help="a running Dask scheduler (backend dask)")
    parser.add_argument("--strategies", default=str(ROOT / "strategies"))
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "strategies"
        shutil.copytree(args.strategies, folder)
        for seed in args.seeds:
            if args.data:
                basket = load_basket(args.data)
                what = ", ".join(basket)
            else:
                basket = load_basket(["sample"], sample_instruments=args.instruments, sample_bars=args.bars,
                                     seed=7 + seed)
                what = f"{len(basket)} synthetic × {args.bars:,}"
            began = time.perf_counter()
            out = screen_basket(folder, basket, pool=args.pool, validate=args.validate_sample is None,
                                validate_sample=args.validate_sample, n_jobs=args.jobs, seed=seed, progress=False,
                                backend="dask" if args.scheduler else "loky", scheduler=args.scheduler,
                                top=5, strategy_log=Path(tmp) / f"strategy-{seed}.log")
            wall = time.perf_counter() - began
            s = out.summary
            full = s.get("estimated_full_seconds", s["validation_full_seconds"])
            lowest = min(f.get("spearman", float("nan")) for f in s["instruments_fidelity"].values())
            plain_paths = {}
            for summary in (s.get("plain_surrogate") or {}).values():
                for path, count in summary.get("paths", {}).items():
                    plain_paths[path] = plain_paths.get(path, 0) + count
            rows.append({"seed": seed, "configurations": s["configurations"], "instruments": len(s["instruments"]),
                         "screen": s["screen_seconds"], "distill": s["distill_seconds"], "model": s["model_seconds"],
                         "plain": s["plain_seconds"], "full": full, "speedup": s["speedup"], "rho": s["spearman"],
                         "ci": s.get("spearman_ci90"), "lowest": lowest, "wall": wall, "peak": _peak_mb(),
                         "paths": plain_paths, "validated": s["validated_configurations"], "pbo": s.get("pbo")})
            r = rows[-1]
            print(f"seed {seed}: {what}, {r['configurations']} configurations: screen {r['screen']:.1f} s "
                  f"(distil {r['distill']:.1f}, model {r['model']:.1f}, plain {r['plain']:.1f}), full {r['full']:.1f} s "
                  f"({'estimated from ' + str(r['validated']) if args.validate_sample else 'all'}) = "
                  f"{r['speedup']:.1f}x; Spearman {r['rho']:.3f} {r['ci']}, lowest instrument {r['lowest']:.3f}; "
                  f"plain paths {plain_paths}; wall {wall:.0f} s, peak {r['peak']:.0f} MB", flush=True)

    print()
    where = f"Dask cluster at {args.scheduler}" if args.scheduler else f"loky, jobs {args.jobs}"
    print(f"pool {args.pool}, {where}, seeds {args.seeds}; mean ± std over seeds")
    print("| instruments × candles | configurations | screen s | full s | full / screen | Spearman (basket) "
          "| lowest per instrument | wall s | peak MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")

    def stat(key, fmt):
        values = [r[key] for r in rows]
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):{fmt}} ± {sd:{fmt}}"

    label = f"{rows[0]['instruments']} × {args.bars:,}" if not args.data else ", ".join(args.data)
    print(f"| {label} | {rows[0]['configurations']} | {stat('screen', '.1f')} | {stat('full', '.0f')} | "
          f"{stat('speedup', '.1f')}x | {stat('rho', '.3f')} | {stat('lowest', '.3f')} | {stat('wall', '.0f')} | "
          f"{stat('peak', '.0f')} |")


if __name__ == "__main__":
    main()
