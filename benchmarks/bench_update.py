"""Updating a distilled set after a planted regime change (sample market, synthetic).

For each seed: distil the old market (per regime), append new candles in which the volatile
regime is twice as wild and more frequent (``sample_market(regime_params=, regime_shares=)``),
hold out the last ``--test-bars`` candles, and update the set with the rest by

- ``regime``: tests, then re-distils only the regimes that changed;
- ``periodic``: the full re-distillation (every regime from scratch on the latest window);
- ``incremental``: warm start from the saved points, ``--steps`` iterations;

timing each side by side in one run. As a control, the regime policy also runs on a
continuation *without* the planted change (what it re-distils there is a false alarm). A
logistic model is trained on each set (and on the
parent) and scored on the held-out candles: information coefficient (Spearman of the
predicted probability with the next return) and accuracy. Mean ± std over the seeds.

    python benchmarks/bench_update.py --seeds 5                                         # long history
    python benchmarks/bench_update.py --seeds 5 --old-bars 60000 --new-bars 30000       # short history
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.stats import spearmanr

from distillbt.data.sample import continue_market, sample_market
from distillbt.distill.prepare import prepare
from distillbt.distill.runner import distill
from distillbt.distill.artifact_rows import artifact_rows
from distillbt.distill.update import update
from distillbt.models import LogisticRegression

PLANTED = {"regime_params": {"volatile": {"vol": 5.0}},
           "regime_shares": {"bull": .25, "bear": .15, "sideways": .2, "volatile": .35, "crash": .05}}


def skill(dset, test_X, test_ret):
    model = LogisticRegression(alpha=1e-3).fit(dset.X, dset.y, sample_weight=dset.weight * len(dset.X))
    p = model.predict_proba(test_X)
    p = p[:, 1] if p.ndim == 2 else p
    return float(spearmanr(p, test_ret).statistic), float(np.mean((p > 0.5) == (test_ret > 0)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old-bars", type=int, default=500_000)
    ap.add_argument("--new-bars", type=int, default=60_000)
    ap.add_argument("--test-bars", type=int, default=10_000)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--method", default="gradient")
    ap.add_argument("--size", type=int, default=50)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)

    rows = []
    for seed in range(args.seeds):
        old = sample_market(bars=args.old_bars, seed=100 + seed)
        parent = distill(prepare(old), method=args.method, size=args.size, per_regime=True, seed=seed,
                         n_jobs=args.jobs)
        everything = continue_market(old, args.new_bars + args.test_bars, seed=200 + seed, **PLANTED)
        known = everything.rows(slice(0, args.old_bars + args.new_bars))
        out = {"seed": seed}
        sets = {"parent": parent}
        # side by side, in an order that rotates with the seed (no policy always runs first)
        order = ["regime", "periodic", "incremental"]
        order = order[seed % 3:] + order[:seed % 3]
        for policy in order:
            started = time.perf_counter()
            sets[policy], report = update(parent, known, policy=policy, steps=args.steps, n_jobs=args.jobs)
            out[f"{policy}_s"] = time.perf_counter() - started
            out[f"{policy}_report"] = report
            for part in ("features", "detect", "distil"):
                out[f"{policy}_{part}"] = report.timings.get(part, 0.0)
        out["redistilled"] = ",".join(out["regime_report"].redistilled) or "-"
        same = continue_market(old, args.new_bars, seed=200 + seed)
        started = time.perf_counter()
        _, control = update(parent, same, policy="regime", n_jobs=args.jobs)
        out["control_s"] = time.perf_counter() - started
        out["control"] = ",".join(control.redistilled) or "-"
        out["mix_changed"] = out["regime_report"].mix["changed"]
        # held-out candles, in the parent's feature space (all sets share it)
        test = artifact_rows({**parent.meta, "task": "regression"}, everything,
                     since=everything.frame.index[args.old_bars + args.new_bars])
        for name, dset in sets.items():
            out[f"{name}_ic"], out[f"{name}_acc"] = skill(dset, test.X, test.y)
        inc = out["incremental_report"].closeness
        out["inc_coef"] = inc["updated_coef_rel_error"]
        rows.append(out)
        print(f"seed {seed}: regime {out['regime_s']:.2f} s (re-distilled {out['redistilled']}, mix changed "
              f"{out['mix_changed']}; control re-distilled {out['control']}), periodic {out['periodic_s']:.2f} s, incremental {out['incremental_s']:.2f} s; "
              f"IC parent {out['parent_ic']:+.4f} regime {out['regime_ic']:+.4f} periodic {out['periodic_ic']:+.4f} "
              f"incremental {out['incremental_ic']:+.4f}", flush=True)

    def ms(key):
        v = np.array([r[key] for r in rows], dtype=float)
        return f"{v.mean():.4f} ± {v.std(ddof=1) if len(v) > 1 else 0:.4f}"

    def msf(key, fmt=".1f"):
        v = np.array([r[key] for r in rows], dtype=float)
        return f"{v.mean():{fmt}} ± {v.std(ddof=1) if len(v) > 1 else 0:{fmt}}"

    print()
    print(f"sample market (synthetic): {args.old_bars} old + {args.new_bars} new 15m candles with the planted "
          f"change, {args.test_bars} held out; {args.method}, {args.size} points per set, per regime; "
          f"{args.jobs} jobs; seeds 0-{args.seeds - 1}")
    print()
    print("| policy | wall s | full / policy | regimes re-distilled | test IC | test accuracy |")
    print("|---|---:|---:|---|---:|---:|")
    full = np.array([r["periodic_s"] for r in rows])
    for name in ("regime", "incremental", "periodic"):
        ratio = full / np.array([r[f"{name}_s"] for r in rows])
        what = {"regime": "; ".join(f"s{r['seed']}: {r['redistilled']}" for r in rows),
                "incremental": "all (warm start)", "periodic": "all (full re-distillation)"}[name]
        print(f"| {name} | {msf(name + '_s')} | {ratio.mean():.1f}x ± {ratio.std(ddof=1) if len(ratio) > 1 else 0:.1f} "
              f"| {what} | {ms(name + '_ic')} | {ms(name + '_acc')} |")
    print(f"| parent (not updated) | - | - | - | {ms('parent_ic')} | {ms('parent_acc')} |")
    ratio = full / np.array([r["control_s"] for r in rows])
    print(f"| regime, control (no planted change) | {msf('control_s')} | {ratio.mean():.1f}x | "
          + "; ".join(f"s{r['seed']}: {r['control']}" for r in rows) + " | - | - |")
    print()
    print("| policy | features s | detect s | distil s |")
    print("|---|---:|---:|---:|")
    for name in ("regime", "incremental", "periodic"):
        print(f"| {name} | {msf(name + '_features', '.2f')} | {msf(name + '_detect', '.2f')} | "
              f"{msf(name + '_distil', '.2f')} |")
    d_ic = np.array([r["regime_ic"] - r["periodic_ic"] for r in rows])
    d_inc = np.array([r["incremental_ic"] - r["periodic_ic"] for r in rows])
    print()
    print(f"IC difference regime − periodic: {d_ic.mean():+.4f} ± {d_ic.std(ddof=1) if len(d_ic) > 1 else 0:.4f}; "
          f"incremental − periodic: {d_inc.mean():+.4f} ± {d_inc.std(ddof=1) if len(d_inc) > 1 else 0:.4f}")
    print(f"incremental: least-squares coefficients' relative error to the window's real rows {ms('inc_coef')}")


if __name__ == "__main__":
    main()
