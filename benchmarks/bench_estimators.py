"""scikit-learn estimators in model strategies: which distillation ranks them, and the screen's
fidelity and speed on them.

Two modes, on two folders of strategies written for the purpose (never ``strategies/``):

``--calibrate`` (``benchmarks/estimator_strategies/calibration``): every configuration is
backtested in full once (the screen's baseline, :mod:`distillbt.baseline`); then, for each
candidate distillation of the non-linear estimators (``--methods`` × ``--sizes`` × seeds), the
sets are distilled from the training period, every configuration fitted on its set and run
vectorised, and its ranking compared with the full backtests (Spearman over all
configurations and over the non-linear ones). What it prints chose
:data:`distillbt.distilled_sets.AGNOSTIC_METHOD` and ``AGNOSTIC_SIZE``.

default (``benchmarks/estimator_strategies/check``, or ``--folder``): the screen as a user
runs it (``screen(..., validate=True)``, choices by estimator) per seed: Spearman of screen
against full backtests (bootstrap 90 % interval), per estimator family, the model path's
speed-up against its full backtests (honest accounting: distillation + fits + vectorised runs
+ the path's share of discovery, periods and ranking — the whole screen for these folders,
each seed's in a fresh process whose strategy files, estimators and workers start cold, as in a
CLI run — against the baseline's full
backtests, side by side in one run), failures. Families: linear
(exact-linear points), on rows (fitted on the training candles: path-dependent, early-stopping,
reweighting and histogram boosting), moments (class-moment
points) and non-linear. Per strategy, where the time goes: its full backtests against its
vectorised runs and shares of fits (``vectorised_seconds``).

::

    python benchmarks/bench_estimators.py --calibrate --bars 200000 --seeds 0 1 2
    python benchmarks/bench_estimators.py --bars 200000 --seeds 0 1
    python benchmarks/bench_estimators.py --bars 200000 --seeds 0 1 --folder benchmarks/estimator_strategies/holdout
    python benchmarks/bench_estimators.py --data ../shared/data/<file>.csv --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distillbt.data.sample import sample_market  # noqa: E402
from distillbt.data.sources import load_candles  # noqa: E402
from distillbt.discovery import discover  # noqa: E402
from distillbt.distilled_sets import distil_sets, needs_of  # noqa: E402
from distillbt.executor import Executor  # noqa: E402
from distillbt._vectorised_screen import screen_vectorised  # noqa: E402
from distillbt.scorers import ScreenRun  # noqa: E402
from distillbt.screen import DEFAULT_FRACTIONS, screen, screen_periods  # noqa: E402

HERE = Path(__file__).resolve().parent
CALIBRATION = HERE / "estimator_strategies" / "calibration"
CHECK = HERE / "estimator_strategies" / "check"


def _candles(args):
    if args.data:
        return load_candles(args.data)
    return sample_market(bars=args.bars, seed=args.market_seed)


def _rho(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    return float(spearmanr(a[ok], b[ok]).statistic) if ok.sum() > 2 else float("nan")


def _full_scores(args, run, configs, candles) -> np.ndarray:
    """Every configuration's full-backtest score on the screening period (``--cache FILE``
    keeps them for the next run on the same candles and configurations)."""
    key = {"source": candles.source, "candles": len(candles), "names": [c.name for c in configs]}
    cache = Path(args.cache) if args.cache else None
    if cache and cache.exists():
        stored = json.loads(cache.read_text())
        if stored["key"] == key:
            print(f"full scores from {cache}", flush=True)
            return np.array(stored["scores"], dtype=float)
    results, wall = run.backtest(run.jobs(configs, "screening"))
    scores = [r["score"] if not r.get("error") else float("nan") for r in results]
    print(f"{len(configs)} configurations, full backtests {wall:.1f} s wall "
          f"({sum(r.get('seconds', 0) for r in results):.1f} s summed); "
          f"failed: {sum(bool(r.get('error')) for r in results)}", flush=True)
    if cache:
        cache.write_text(json.dumps({"key": key, "scores": scores}))
    return np.array(scores, dtype=float)


def calibrate(args) -> None:
    candles = _candles(args)
    configs = discover(args.folder or CALIBRATION).configurations()
    periods = screen_periods(candles, DEFAULT_FRACTIONS)
    data = periods.pop("data")
    s_start, s_stop = periods["screening"]
    with Executor(n_jobs=args.jobs) as ex:
        run = ScreenRun(candles=candles, periods=periods, n_jobs=args.jobs, progress=True)
        full = _full_scores(args, run, configs, candles)
        rows = []
        for method in args.methods:
            for size in args.sizes:
                per_seed = []
                for seed in args.seeds:
                    needs, errors = needs_of(configs, agnostic_method=method, agnostic_size=size)
                    t0 = time.perf_counter()
                    sets = distil_sets(data, needs, per_regime=True, seed=seed, fractions=DEFAULT_FRACTIONS,
                                       method_params={method: json.loads(args.method_params)})
                    t1 = time.perf_counter()
                    out = screen_vectorised(configs, sets, candles, set_of={n: k.key for n, k in needs.items()},
                                            cash=run.cash, commission=run.commission, start=s_start, stop=s_stop,
                                            executor=ex)
                    t2 = time.perf_counter()
                    fast = np.array([o["score"] if o["error"] is None else np.nan for o in out])
                    agnostic = np.array([needs[c.name].family == "agnostic" if c.name in needs else False
                                         for c in configs])
                    per_seed.append((_rho(fast, full), _rho(fast[agnostic], full[agnostic]), t1 - t0, t2 - t1,
                                     sum(o["error"] is not None for o in out) + len(errors)))
                    print(f"  {method:>9} {size:>5} seed {seed}: rho all {per_seed[-1][0]:.3f}, "
                          f"non-linear {per_seed[-1][1]:.3f}, distil {t1 - t0:.1f} s, fit+run {t2 - t1:.1f} s",
                          flush=True)
                a = np.array(per_seed)
                rows.append((method, size, a[:, 0].mean(), a[:, 0].std(), a[:, 1].mean(), a[:, 1].std(),
                             a[:, 2].mean(), a[:, 3].mean(), int(a[:, 4].max())))
    print(f"\nsource {candles.source}, {len(candles)} candles; seeds {args.seeds}; mean ± std over seeds")
    print("| method | points | Spearman, all | Spearman, non-linear | distil s | fit + run s | failed |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for m, size, ra, sa, rn, sn, td, tf, bad in rows:
        print(f"| {m} | {size} | {ra:.3f} ± {sa:.3f} | {rn:.3f} ± {sn:.3f} | {td:.1f} | {tf:.1f} | {bad} |")


def _print_costs(records, summary) -> None:
    """Where the model path's time goes, per strategy: its configurations' full backtests
    (seconds each, summed) against their vectorised runs and shares of their fits (worker
    seconds, summed); the stages every configuration shares (distillation, discovery, periods,
    ranking, the workers' start) are the rest of the screen's time."""
    by = {}
    for r in records:
        if r.vectorised_seconds is not None and r.full_seconds is not None:
            row = by.setdefault(r.strategy, [0, 0.0, 0.0])
            row[0] += 1
            row[1] += r.full_seconds
            row[2] += r.vectorised_seconds
    full, fast = sum(v[1] for v in by.values()), sum(v[2] for v in by.values())
    print(f"    costs: full backtests {full:.1f} s summed, vectorised runs and fits {fast:.1f} s summed "
          f"(worker seconds), screen {summary['screen_seconds']:.1f} s wall of which distillation "
          f"{summary['distill_seconds']:.1f} s")
    for name, (n, f, v) in sorted(by.items(), key=lambda kv: -kv[1][2]):
        print(f"      {name:<28} {n:>3} configs  full {f:6.1f} s  vectorised {v:5.2f} s  {f / max(v, 1e-9):6.1f}x")


def _check_seed(args, candles, folder, seed) -> dict:
    """One seed's screen, run in a process of its own (``check``): its line, per-configuration
    scores and costs printed here; its table row returned."""
    # discovery (importing the strategies' files and their estimators) is the screen's, as in a CLI run
    result = screen(folder, candles, validate=True, seed=seed, n_jobs=args.jobs, progress=True, top=5)
    s = result.summary
    records = [r for r in result.records if r.scored and r.full_score is not None]
    fam = {}
    for r in records:
        by = r.distilled_by or ""
        # an agnostic estimator on a short period's rows is non-linear
        on_rows = by.startswith("training-rows") and "short training period" not in by
        kind = ("linear" if "linear estimator" in by else "on rows" if on_rows
                else "moments" if "moments estimator" in by else "non-linear")
        fam.setdefault(kind, []).append(r)
    per_family = {k: _rho([r.screen_score for r in v], [r.full_score for r in v]) for k, v in fam.items()}
    model = s["paths"]["model"]
    print(f"seed {seed}: rho {s['spearman']:.3f} {s.get('spearman_ci90')}, families {per_family}, "
          f"model path {model['speedup']:.1f}x, screen {s['screen_seconds']:.1f} s "
          f"(distillation {s['distill_seconds']:.1f} s), "
          f"full {s['validation_full_seconds']:.1f} s, errors {s['errors']}", flush=True)
    for r in result.records:
        print(f"    {r.name:<58} {r.screen_score if r.screen_score is not None else float('nan'):+.4f} "
              f"{r.full_score if r.full_score is not None else float('nan'):+.4f}  {r.distilled_by or r.error}")
    _print_costs(result.records, s)
    sys.stdout.flush()
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True, kill_workers=True)  # before this process ends, not after
    return dict(seed=seed, n=s["configurations"], errors=s["errors"], rho=s["spearman"],
                ci=s.get("spearman_ci90"), recall=s.get("topk_recall"), speedup=s["speedup"],
                model_speedup=model["speedup"], screen=s["screen_seconds"],
                full=s["validation_full_seconds"], families=per_family)


def check(args) -> None:
    candles = _candles(args)
    folder = args.folder or CHECK
    rows = []
    for seed in args.seeds:
        # A fresh process per seed, as a CLI run starts: its strategies' files and estimators are
        # imported inside the screen's time and its worker processes start cold (loky keeps a
        # process's workers, and this process's imports, for the next screen otherwise).
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as fresh:
            rows.append(fresh.submit(_check_seed, args, candles, folder, seed).result())

    rho = np.array([r["rho"] for r in rows])
    sp = np.array([r["model_speedup"] for r in rows])
    print(f"\nsource {candles.source}, {len(candles)} candles, folder {folder}; seeds {args.seeds}")
    print("| seed | configurations | failed | Spearman [90% CI] | linear | on rows | moments | non-linear | "
          "model path | screen s | full s |")
    print("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ci = r["ci"] or [float("nan")] * 2
        print(f"| {r['seed']} | {r['n']} | {r['errors']} | {r['rho']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}] | "
              f"{r['families'].get('linear', float('nan')):.3f} | "
              f"{r['families'].get('on rows', float('nan')):.3f} | "
              f"{r['families'].get('moments', float('nan')):.3f} | "
              f"{r['families'].get('non-linear', float('nan')):.3f} | "
              f"{r['model_speedup']:.1f}x | {r['screen']:.1f} | {r['full']:.1f} |")
    print(f"| mean ± std | | | {rho.mean():.3f} ± {rho.std():.3f} | | | | | {sp.mean():.1f} ± {sp.std():.1f}x | | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibrate", action="store_true", help="compare distillations of non-linear estimators")
    parser.add_argument("--folder", help="strategy folder (default: the calibration or the check set)")
    parser.add_argument("--data", help="a candle file instead of the sample market")
    parser.add_argument("--bars", type=int, default=200_000)
    parser.add_argument("--market-seed", type=int, default=7)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cache", help="--calibrate: a JSON file keeping the full backtests' scores")
    parser.add_argument("--methods", nargs="+", default=["random", "herding", "kmedoids"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 1000, 5000])
    parser.add_argument("--method-params", default="{}",
                        help='--calibrate: JSON parameters of every method\'s distiller, e.g. \'{"max_iter": 10}\'')
    args = parser.parse_args()
    (calibrate if args.calibrate else check)(args)


if __name__ == "__main__":
    main()
