"""Calibrate the trust thresholds of the plain-strategy screen, and check them on other strategies.

::

    python benchmarks/bench_trust.py --calibrate --out /tmp/trust --sample-bars 300000 --seeds 0,1,2 \\
        --budgets 4,6,12 --jobs 2
    python benchmarks/bench_trust.py --check --out /tmp/trust --sample-bars 300000 --seeds 0,1,2 \\
        --budgets 4,6,12 --jobs 2                      # thresholds: those --calibrate chose
    python benchmarks/bench_trust.py --check --thresholds 3,0.95,5,inf ...   # or given ones

Two sets of plain Backtrader strategies written for this (``benchmarks/trust_strategies/``):
``calibration/`` chooses the thresholds, ``check/`` (other indicators, other exits) only tests
them. Periods as in ``bench_surrogate.py``: training = first 50 % of the sample market
(episodes come from here), screening = next 30 %. For every configuration:

- its **full backtest** of the screening period (warm-up ``full_warmup`` of its own plan, as
  the screen's fallback does), once;
- for every seed × base-episode budget, :func:`screen_plain` with escalation and the full
  fallback **disabled** (``min_speedup=0``): the surrogate score and the raw trust signals
  before any threshold — ``coverage``, ``agreement``, ``rate_ratio`` (min and max), ``pnl_gap``.

Raw records are stored as JSON under ``--out`` (reused when present: delete them to rerun).
A configuration is *bad* when ``|surrogate − full| > --tolerance`` (0.05 log return). For
thresholds ``(min_transitions, min_agreement, rate_band, max_pnl_gap)`` a configuration is
trusted when it passes all four (``is_trusted`` of distillbt/surrogate/trust.py); the **cost** is
the share not trusted (they would be escalated, then backtested in full), the **risk** the
share of trusted ones that are bad. ``--calibrate`` searches a grid for the lowest cost with
risk ≤ ``--max-risk`` (5 %) on the calibration set, pooled and at every budget, and writes ``chosen.json``;
``--check`` prints risk and cost on the check set per seed and budget, pooled, and mean ± std
over seeds.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distillbt.backtest import BacktestJob, run_many  # noqa: E402
from distillbt.data.sample import sample_market  # noqa: E402
from distillbt.discovery import discover  # noqa: E402
from distillbt.surrogate import screen_plain  # noqa: E402
from distillbt.surrogate.plan import full_warmup, plan_configuration  # noqa: E402

SETS = ROOT / "benchmarks" / "trust_strategies"
SIGNALS = ("coverage", "agreement", "rate_ratio", "rate_ratio_max", "pnl_gap", "pnl_bias", "threshold_gap",
           "exposure_episodes",
           "exposure_walk", "heldout_bars")
GRID = {
    "min_transitions": [0, 1, 2, 3, 5, 8],
    "min_agreement": [0.0, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.998],
    "rate_band": [1.25, 1.5, 2.0, 3.0, 5.0, math.inf],
    "max_pnl_gap": [0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, math.inf],
}
OLD_DEFAULTS = (3, 0.95, 5.0, math.inf)


def _periods(n):
    return (0, n // 2), (n // 2, int(n * 0.8))


def full_scores(name, configs, candles, screen, jobs, out: Path, tag):
    path = out / f"full_{name}_{tag}.json"
    if path.exists():
        return json.loads(path.read_text())
    idx = candles.frame.index
    t = time.perf_counter()
    jobs_ = [BacktestJob(c, candles, start=idx[screen[0]], end=idx[screen[1] - 1],
                         warmup_bars=full_warmup([plan_configuration(c)], screen[0]), record_equity=False)
             for c in configs]
    res = run_many(jobs_, n_jobs=jobs, progress=False)
    scores = {c.name: (None if r.get("error") else float(r["score"])) for c, r in zip(configs, res)}
    errors = {c.name: r["error"] for c, r in zip(configs, res) if r.get("error")}
    data = {"scores": scores, "errors": errors, "seconds": time.perf_counter() - t}
    path.write_text(json.dumps(data, indent=1))
    print(f"  full backtests of {name}: {data['seconds']:.0f} s, errors {errors or 'none'}", flush=True)
    return data


def surrogate_runs(name, configs, candles, train, screen, seeds, budgets, jobs, out: Path, tag, length):
    runs = []
    for seed, budget in itertools.product(seeds, budgets):
        path = out / f"raw_{name}_{tag}_seed{seed}_eps{budget}_len{length}.json"
        if not path.exists():
            t = time.perf_counter()
            res = screen_plain(configs, candles, train=train, screen=screen, seed=seed, n_jobs=jobs, progress=False,
                               base_episodes=budget, length=length, escalate=False, full_fallback=False,
                               min_speedup=0, all_signals=True)
            keep = [{"name": r["name"], "strategy": r["strategy"], "score": r["score"], "error": r["error"],
                     "trust": {k: v for k, v in (r["trust"] or {}).items() if k != "transitions"}}
                    for r in res.records]
            path.write_text(json.dumps({"seed": seed, "budget": budget, "length": length, "records": keep,
                                        "seconds": time.perf_counter() - t}, indent=1))
            print(f"  surrogate {name} seed {seed} budget {budget}: {time.perf_counter() - t:.0f} s", flush=True)
        runs.append(json.loads(path.read_text()))
    return runs


def rows_of(runs, full, tolerance):
    rows = []
    for run in runs:
        for r in run["records"]:
            truth = full["scores"].get(r["name"])
            tr = r["trust"] or {}
            ok = r["error"] is None and r["score"] is not None and truth is not None and "coverage" in tr
            row = {"name": r["name"], "strategy": r["strategy"], "seed": run["seed"], "budget": run["budget"],
                   "full": truth, "surrogate": r["score"] if ok else None, "usable": ok,
                   "error": abs(r["score"] - truth) if ok and math.isfinite(r["score"]) else math.inf,
                   "fit_error": tr.get("error") or r["error"]}
            for k in SIGNALS:
                row[k] = tr.get(k)
            gaps = [g for g in (row["pnl_gap"], row["threshold_gap"]) if g is not None]
            row["gap"] = max(gaps) if gaps else None  # what is_trusted compares with max_pnl_gap
            row["bad"] = row["error"] > tolerance
            rows.append(row)
    return rows


def _col(rows, key, fill):
    return np.array([fill if r[key] is None else r[key] for r in rows], dtype=float)


def trusted_mask(rows, thresholds):
    """The same rule as ``distillbt.surrogate.trust.is_trusted``, vectorised over rows."""
    mt, ma, rb, mg = thresholds
    usable = np.array([r["usable"] for r in rows])
    cov = _col(rows, "coverage", -1)
    ag = _col(rows, "agreement", 1.0)  # None: not measurable, not a reason to escalate (as is_trusted)
    lo = _col(rows, "rate_ratio", 1.0)
    hi = _col(rows, "rate_ratio_max", 1.0)
    gap = _col(rows, "gap", 0.0)
    return usable & (cov >= mt) & (ag >= ma) & (lo >= 1.0 / rb) & (hi <= rb) & (gap <= mg)


def evaluate(rows, thresholds):
    t = trusted_mask(rows, thresholds)
    bad = np.array([r["bad"] for r in rows])
    n_t = int(t.sum())
    return {"n": len(rows), "trusted": n_t, "trusted_share": n_t / max(1, len(rows)),
            "bad_trusted": int((t & bad).sum()), "risk": float((t & bad).sum() / n_t) if n_t else 0.0,
            "bad_share": float(bad.mean()) if len(rows) else 0.0}


def per_run(rows, thresholds):
    out = []
    for (seed, budget) in sorted({(r["seed"], r["budget"]) for r in rows}):
        sub = [r for r in rows if r["seed"] == seed and r["budget"] == budget]
        out.append({"seed": seed, "budget": budget, **evaluate(sub, thresholds)})
    return out


def fmt_thr(t):
    return (f"min_transitions={t[0]}, min_agreement={t[1]:g}, rate_band={t[2]:g}, "
            f"max_pnl_gap={t[3]:g}")


def print_runs(label, rows, thresholds):
    print(f"\n### {label}: {fmt_thr(thresholds)}\n")
    print("| seed | base episodes | configurations | bad (all) | trusted | trusted share | bad among trusted "
          "| risk |\n|---:|---:|---:|---:|---:|---:|---:|---:|")
    res = per_run(rows, thresholds)
    for r in res:
        print(f"| {r['seed']} | {r['budget']} | {r['n']} | {r['bad_share']:.2f} | {r['trusted']} | "
              f"{r['trusted_share']:.2f} | {r['bad_trusted']} | {r['risk']:.3f} |")
    pooled = evaluate(rows, thresholds)
    print(f"| all | all | {pooled['n']} | {pooled['bad_share']:.2f} | {pooled['trusted']} | "
          f"{pooled['trusted_share']:.2f} | {pooled['bad_trusted']} | {pooled['risk']:.3f} |")
    for budget in sorted({r["budget"] for r in rows}):
        sub = [r for r in res if r["budget"] == budget]
        risk = np.array([r["risk"] for r in sub])
        share = np.array([r["trusted_share"] for r in sub])
        print(f"budget {budget}: over seeds {[r['seed'] for r in sub]}: risk {risk.mean():.3f} ± {risk.std():.3f} "
              f"(max {risk.max():.3f}), trusted share {share.mean():.2f} ± {share.std():.2f}")
    return pooled


def print_configs(rows, thresholds):
    t = trusted_mask(rows, thresholds)
    print("\n| configuration | full | surrogate (median) | |error| median / max | coverage min | agreement "
          "median | rate ratio min–max | max(pnl_gap, threshold_gap) median | trusted runs | bad runs | trusted & bad |\n"
          "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    names = list(dict.fromkeys(r["name"] for r in rows))
    for name in names:
        idx = [i for i, r in enumerate(rows) if r["name"] == name]
        sub = [rows[i] for i in idx]
        us = [r for r in sub if r["usable"]]
        if not us:
            print(f"| {name} | {sub[0]['full']} | — | — | — | — | — | — | 0/{len(sub)} | {len(sub)} | 0 | "
                  f"({sub[0]['fit_error']})")
            continue
        err = np.array([r["error"] for r in us])
        ag = [r["agreement"] for r in us if r["agreement"] is not None]
        lo = [r["rate_ratio"] for r in us if r["rate_ratio"] is not None]
        hi = [r["rate_ratio_max"] for r in us if r["rate_ratio_max"] is not None]
        gp = [r["gap"] for r in us if r["gap"] is not None]
        tb = sum(1 for i in idx if t[i] and rows[i]["bad"])
        print(f"| {name} | {sub[0]['full']:+.3f} | {np.median([r['surrogate'] for r in us]):+.3f} | "
              f"{np.median(err):.3f} / {err.max():.3f} | {min(r['coverage'] for r in us)} | "
              f"{np.median(ag) if ag else float('nan'):.3f} | "
              f"{(min(lo) if lo else float('nan')):.2f}–{(max(hi) if hi else float('nan')):.2f} | "
              f"{np.median(gp) if gp else float('nan'):.3f} | {int(t[idx].sum())}/{len(sub)} | "
              f"{sum(r['bad'] for r in sub)} | {tb} |")


def signal_power(rows):
    """How well each raw signal alone orders bad below good (AUC; 1 = perfect separation)."""
    from scipy.stats import spearmanr

    us = [r for r in rows if r["usable"]]
    bad = np.array([r["bad"] for r in us])
    err = np.array([min(r["error"], 10.0) for r in us])
    print("\n| signal | AUC (bad vs good; higher value = worse where marked ↑) | Spearman with |error| |\n"
          "|---|---:|---:|")
    for key, worse_high in (("coverage", False), ("agreement", False), ("rate_ratio", False),
                            ("rate_ratio_max", True), ("pnl_gap", True), ("pnl_bias", True), ("threshold_gap", True),
                            ("gap", True)):
        v = np.array([np.nan if r[key] is None else r[key] for r in us], dtype=float)
        ok = ~np.isnan(v)
        if ok.sum() < 3 or bad[ok].all() or not bad[ok].any():
            continue
        s = v[ok] if worse_high else -v[ok]
        b = bad[ok]
        # AUC by ranks (ties count half)
        from scipy.stats import rankdata

        rk = rankdata(s)
        auc = (rk[b].sum() - b.sum() * (b.sum() + 1) / 2) / (b.sum() * (~b).sum())
        rho = spearmanr(s, err[ok]).statistic
        print(f"| {key}{' ↑' if worse_high else ''} | {auc:.3f} | {rho:.3f} |")


def calibrate(rows, max_risk, slack=0.005):
    """The cheapest thresholds of the grid with risk ≤ ``max_risk`` pooled and at every
    episode budget (pooled over seeds); among those within
    ``slack`` of the lowest cost, the lowest risk, then the strictest (a safety net that costs
    nothing here may catch a failure this set does not show)."""
    budgets = sorted({r["budget"] for r in rows})
    by_budget = {b: [r for r in rows if r["budget"] == b] for b in budgets}
    table = []
    for thr in itertools.product(*GRID.values()):
        ev = evaluate(rows, thr)
        ev["worst_budget_risk"] = max(evaluate(by_budget[b], thr)["risk"] for b in budgets)
        table.append((thr, ev))
    # pooled over seeds and budgets, and at every budget (escalation raises the budget)
    ok = [(t, e) for t, e in table if e["risk"] <= max_risk and e["worst_budget_risk"] <= max_risk]
    if not ok:
        return None, table
    top = max(e["trusted_share"] for _, e in ok)
    near = [(t, e) for t, e in ok if e["trusted_share"] >= top - slack]
    thr, ev = min(near, key=lambda x: (x[1]["risk"], -x[0][0], -x[0][1], x[0][2], x[0][3]))
    return (None, thr, ev), table


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--calibrate", action="store_true")
    mode.add_argument("--check", action="store_true")
    ap.add_argument("--out", required=True, help="directory for raw records (JSON) and chosen.json")
    ap.add_argument("--sample-bars", type=int, default=300_000)
    ap.add_argument("--sample-seed", type=int, default=7)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--budgets", default="4,6,12", help="base episodes per configuration, one run each")
    ap.add_argument("--length", type=int, default=400, help="scored bars per episode")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--tolerance", type=float, default=0.05, help="|surrogate - full| that makes a score bad")
    ap.add_argument("--max-risk", type=float, default=0.05, help="allowed share of bad among trusted")
    ap.add_argument("--thresholds", help="min_transitions,min_agreement,rate_band,max_pnl_gap for --check "
                                         "(default: chosen.json of --calibrate)")
    ap.add_argument("--configs", action="store_true", help="also the per-configuration table")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in a.seeds.split(",")]
    budgets = [int(s) for s in a.budgets.split(",")]
    name = "calibration" if a.calibrate else "check"
    found = discover(SETS / name)
    if found.errors:
        print("discovery errors:", found.errors)
    configs = found.configurations()
    candles = sample_market(bars=a.sample_bars, seed=a.sample_seed)
    n = len(candles.frame)
    train, screen = _periods(n)
    tag = f"{n}_s{a.sample_seed}"
    print(f"## {name} set: {len(configs)} configurations of {len({c.strategy.name for c in configs})} strategies; "
          f"sample market {n:,} candles (seed {a.sample_seed}), training {train}, screening {screen}; "
          f"seeds {seeds}, base episodes {budgets} × {a.length} bars; tolerance {a.tolerance}", flush=True)
    full = full_scores(name, configs, candles, screen, a.jobs, out, tag)
    runs = surrogate_runs(name, configs, candles, train, screen, seeds, budgets, a.jobs, out, tag, a.length)
    rows = rows_of(runs, full, a.tolerance)
    secs = [r["seconds"] for r in runs]
    print(f"full backtests {full['seconds']:.0f} s; surrogate runs {np.mean(secs):.0f} ± {np.std(secs):.0f} s each "
          f"(escalation and fallback off)")
    signal_power(rows)
    if a.calibrate:
        print_runs("old defaults", rows, OLD_DEFAULTS)
        best, table = calibrate(rows, a.max_risk)
        if best is None:
            print("\nno thresholds of the grid keep the risk within", a.max_risk)
            return
        _, thr, ev = best
        # the frontier: the cheapest thresholds at a few risk levels, for the record
        print("\n| risk ≤ (pooled and per budget) | cheapest thresholds | trusted share | risk pooled | "
              "worst budget |\n|---:|---|---:|---:|---:|")
        for cap in (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 1.0):
            ok = [(t, e) for t, e in table if e["risk"] <= cap and e["worst_budget_risk"] <= cap]
            if ok:
                t, e = max(ok, key=lambda x: (x[1]["trusted_share"], -x[1]["risk"]))
                print(f"| {cap:.2f} | {fmt_thr(t)} | {e['trusted_share']:.3f} | {e['risk']:.3f} | "
                      f"{e['worst_budget_risk']:.3f} |")
        print_runs("chosen (lowest cost with risk ≤ %.2f pooled and per budget)" % a.max_risk, rows, thr)
        (out / "chosen.json").write_text(json.dumps({"thresholds": [thr[0], thr[1], thr[2], thr[3]]}))
        # what each signal alone adds: drop one at a time
        print("\n| without | trusted share | risk |\n|---|---:|---:|")
        loose = (0, 0.0, math.inf, math.inf)
        for k in range(4):
            t = list(thr)
            t[k] = loose[k]
            e = evaluate(rows, t)
            print(f"| {list(GRID)[k]} | {e['trusted_share']:.3f} | {e['risk']:.3f} |")
        if a.configs:
            print_configs(rows, thr)
    else:
        if a.thresholds:
            thr = tuple(float(x) for x in a.thresholds.split(","))
        else:
            thr = tuple(json.loads((out / "chosen.json").read_text())["thresholds"])
        thr = (int(thr[0]), float(thr[1]), float(thr[2]), float(thr[3]))
        print_runs("old defaults", rows, OLD_DEFAULTS)
        print_runs("thresholds", rows, thr)
        if a.configs:
            print_configs(rows, thr)


if __name__ == "__main__":
    main()
