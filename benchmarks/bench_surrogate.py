"""Surrogate screening of plain strategies versus their full Backtrader backtests, side by side.

::

    python benchmarks/bench_surrogate.py --sample-bars 500000 --seeds 0,1 --jobs 2
    python benchmarks/bench_surrogate.py --data ../shared/data/UNITTEST_BTC-1m.feather --seeds 0,1,2 --min-speedup 0

Every plain (non-model) strategy of ``strategies/`` (or of the folders ``--strategies`` names) with its grid. Periods: training = first
50 % of the candles (episodes come from here), screening = next 30 % (everything is scored
here). Full backtests: every configuration in Backtrader on the screening period, the
baseline of ``distillbt.baseline`` (its own bounded warm-up: 10x its longest window). The
plain path's time counts everything: bank, episodes, recording, fitting, evaluation, spot
checks, escalation and the replays (or full backtests) of configurations it did not trust
(the table gives the replays' wall time on its own too). Both paths use the same
``--jobs`` worker processes (one executor for the run), started (and every strategy imported
in them) before anything is timed;
the full backtests run in chunks interleaved with the surrogate seeds, so both are timed
over the same stretch of a shared machine's load. Both are also measured in CPU seconds (user
+ system of this process and its workers, :func:`cpu_seconds`), and the speed-up in those:
the work each path did, which waiting for the machine does not inflate (contention for its
caches still does).
With ``--halving`` the successive-halving baseline runs on the same episode pool (seed 0).
Output is flushed as it goes: progress of the full backtests and of the seeds, then a line
and the agreement distribution per seed, and the table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distillbt.backtest import BacktestJob, run_many  # noqa: E402
from distillbt.baseline import baseline_job, warmup_bars  # noqa: E402
from distillbt.data.sample import sample_market  # noqa: E402
from distillbt.data.sources import load_candles  # noqa: E402
from distillbt.discovery import discover  # noqa: E402
from distillbt.executor import using  # noqa: E402
from distillbt.strategy import ModelStrategy  # noqa: E402
from distillbt.surrogate import screen_plain, successive_halving  # noqa: E402


#: The paths whose score is learned (an estimate); replays and full backtests are exact.
LEARNED = ("surrogate", "surrogate+escalated")


def recall(pred: dict, true: dict, k=5, survivors=10) -> float:
    top_true = sorted(true, key=lambda n: -true[n])[:k]
    top_pred = set(sorted(pred, key=lambda n: -pred[n])[:survivors])
    return sum(n in top_pred for n in top_true) / k


def _full_chunk(configs, candles, screen, jobs, progress):
    return run_many([baseline_job(c, candles, start=screen[0], stop=screen[1], cash=10_000.0, commission=0.001)
                     for c in configs], n_jobs=jobs, progress=progress)


def cpu_seconds() -> float:
    """CPU seconds (user + system) spent so far by this process and every live process below
    it (the executor's workers, which the run keeps for its whole length): the work each path
    did, which other load on a shared machine does not inflate as it does wall time (Linux's
    ``/proc``; NaN elsewhere)."""
    try:
        tree = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    with open(f"/proc/{entry.name}/stat") as fh:
                        fields = fh.read().rsplit(")", 1)[1].split()
                except OSError:  # ended meanwhile
                    continue
                tree[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    except OSError:
        return float("nan")
    children: dict = {}
    for pid, (parent, _) in tree.items():
        children.setdefault(parent, []).append(pid)
    todo, ticks = [os.getpid()], 0
    while todo:
        pid = todo.pop()
        ticks += tree.get(pid, (0, 0))[1]
        todo += children.get(pid, [])
    return ticks / os.sysconf("SC_CLK_TCK")


def _warm_workers(configs, candles, screen, jobs):
    """Start the worker processes and import every strategy in them (50-bar backtests), so
    neither timed path pays the one-off start-up."""
    idx = candles.frame.index
    began = time.perf_counter()
    run_many([BacktestJob(c, candles, start=idx[screen[0]], end=idx[screen[0] + 50], warmup_bars=10,
                          record_equity=False) for c in configs], n_jobs=jobs, progress=False)
    return time.perf_counter() - began


TABLE_HEAD = ("| seed | base episodes × scored bars | Backtrader bars fed / config (full: {fb:,}) | surrogate s "
              "| of which replays and full s | full backtests s | speed-up | CPU s plain / full (speed-up) "
              "| Spearman, surrogate paths (all) | top-5 recall (10 survivors) "
              "| paths surrogate / escalated / replay / full | agreement min / q10 / median | surrogate scores off by > 1e-3 "
              "| … by > 0.05 |\n"
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|")


def _row(r):
    p, ag = r["paths"], r["ag"]
    return (f"| {r['seed']} | {r['eps']} × {r['len']} | {r['fed']:,.0f} | {r['sur']:.1f} | "
            f"{r['sur'] - r['no_full']:.1f} | "
            f"{r['full']:.1f} | {r['full'] / r['sur']:.1f}x | {r['sur_cpu']:.1f} / {r['full_cpu']:.1f} "
            f"({r['full_cpu'] / r['sur_cpu']:.1f}x) | {r['rho']:.3f} ({r['rho_all']:.3f}) | {r['rec']:.2f} | "
            f"{p['surrogate']} / {p['surrogate+escalated']} / {p['replay']} / {p['full']} | "
            f"{ag.get('min', float('nan')):.3f} / {ag.get('q10', float('nan')):.3f} / "
            f"{ag.get('median', float('nan')):.3f} | {r['wrong']} of {r['n_fast']} | {r['far']} of {r['n_fast']} |")


def run(candles, label, seeds, jobs, halving, progress, options, folders=("strategies",)):
    # One executor for the whole run, both paths' maps on its pool: each call entering its own
    # would close its pool when done, and closing a pool whose workers still map the candles
    # (memory-mapped by loky) waits ~1 s on joblib's clean-up — a cost per call, not per
    # backtest, which 13 baseline chunks and 2 screens would each pay inside their timings.
    with using(n_jobs=jobs):
        _run(candles, label, seeds, jobs, halving, progress, options, folders)


def _run(candles, label, seeds, jobs, halving, progress, options, folders):
    configs = [c for folder in folders for c in discover(ROOT / folder).configurations()
               if not issubclass(c.strategy.cls, ModelStrategy)]
    n = len(candles.frame)
    train, screen = (0, n // 2), (n // 2, int(n * 0.8))
    warm = max(warmup_bars(c) for c in configs)
    print(f"\n## {label}: {n:,} candles, screening {screen[1] - screen[0]:,}, {len(configs)} plain "
          f"configurations ({', '.join(sorted({c.strategy.name for c in configs}))}), --jobs {jobs}, "
          f"surrogate options {options}", flush=True)
    print(f"worker start-up and imports (untimed below): {_warm_workers(configs, candles, screen, jobs):.1f} s",
          flush=True)
    # The full backtests run in chunks interleaved with the surrogate seeds, so both are timed
    # over the same stretch of a shared machine's load.
    chunks = [configs[k:k + 6] for k in range(0, len(configs), 6)]
    slots = np.array_split(np.arange(len(chunks)), len(seeds))
    full, full_s, full_cpu, outs = [], 0.0, 0.0, []
    for seed, slot in zip(seeds, slots):
        for k in slot:
            t, c = time.perf_counter(), cpu_seconds()
            full += _full_chunk(chunks[k], candles, screen, jobs, progress)
            full_s += time.perf_counter() - t
            full_cpu += cpu_seconds() - c
            print(f"  full backtests {len(full)}/{len(configs)}: {full_s:.0f} s", flush=True)
        t, c = time.perf_counter(), cpu_seconds()
        out = screen_plain(configs, candles, train=train, screen=screen, seed=seed, n_jobs=jobs, progress=progress,
                           **options)
        outs.append((seed, out, time.perf_counter() - t, cpu_seconds() - c))
        print(f"  surrogate seed {seed}: {outs[-1][2]:.1f} s", flush=True)
    truth = {r["name"]: r["score"] for r in full if not r.get("error")}
    print(f"full backtests: {full_s:.1f} s, {full_cpu:.1f} CPU s (warm-up ≤ {warm} bars; {len(truth)} scored)",
          flush=True)
    rows = []
    eps0 = outs[0][1] if outs else None
    for seed, out, sur_s, sur_cpu in outs:
        pred = {r["name"]: r["score"] for r in out.records if r["score"] is not None}
        common = [k for k in truth if k in pred]
        # Fidelity of the surrogates themselves: replays and full backtests are exact (the
        # replay by construction and by test) and are left out (``rho_all`` counts them, labelled so).
        fast = [r["name"] for r in out.records if r["path"] in LEARNED and r["name"] in truth and r["score"] is not None]
        rho = spearmanr([pred[k] for k in fast], [truth[k] for k in fast]).statistic if len(fast) > 2 else float("nan")
        rho_all = spearmanr([pred[k] for k in common], [truth[k] for k in common]).statistic
        s = out.summary
        ag = s["agreement"] or {}
        off = sorted(((abs(r["score"] - truth[r["name"]]), r["name"], r["path"]) for r in out.records
                      if r["path"] != "full" and r["score"] is not None and r["name"] in truth), reverse=True)
        wrong = sum(1 for d, _, p in off if d > 1e-3 and p in LEARNED)
        far = sum(1 for d, _, p in off if d > 0.05 and p in LEARNED)
        inexact = [(d, nm) for d, nm, p in off if p == "replay" and d > 1e-9]
        if inexact:
            print(f"  REPLAYS DIFFERING FROM THEIR FULL BACKTEST: {inexact}", flush=True)
        rows.append(dict(seed=seed, sur=sur_s, no_full=sur_s - s["full_seconds"], full=full_s, rho=rho, rho_all=rho_all,
                         n_fast=len(fast), sur_cpu=sur_cpu, full_cpu=full_cpu,
                         rec=recall({k: pred[k] for k in common}, {k: truth[k] for k in common}),
                         paths=s["paths"], ag=ag, eps=s["base_episodes"], len=s["episode_length"],
                         fed=s["bars_fed"] / max(1, len(configs)), wrong=wrong, far=far, phases=s))
        print(f"seed {seed}: plain path {sur_s:.1f} s ({full_s / sur_s:.1f}x; {sur_cpu:.1f} CPU s against "
              f"{full_cpu:.1f}, {full_cpu / sur_cpu:.1f}x), Spearman {rho:.3f} over the {len(fast)} "
              f"surrogate-scored ({rho_all:.3f} over all {len(common)}, replays and full backtests included), recall "
              f"{rows[-1]['rec']:.2f}, paths {s['paths']}, escalations {s['escalations']}, phases " +
              ", ".join(f"{k[:-8]} {v:.1f}" for k, v in s.items() if k.endswith("_seconds")), flush=True)
        print(f"  agreement over configurations: {ag}; coverage {s['coverage']}", flush=True)
        protected = [r for r in out.records if (r["trust"] or {}).get("protection")]
        orders = Counter(r["trust"]["reason"].split("does not model: ", 1)[1] for r in out.records
                         if "orders the fast path does not model" in ((r["trust"] or {}).get("reason") or ""))
        print(f"  protective orders filled on the learned path: {len(protected)} configurations, "
              f"{sum(r['path'] in LEARNED for r in protected)} of them scored there; orders replayed: "
              f"{dict(sorted(orders.items()))}", flush=True)
        print("  largest score differences (surrogate paths): " +
              "; ".join(f"{nm} [{p}] {d:.4f}" for d, nm, p in off[:5]), flush=True)
    print(TABLE_HEAD.format(fb=rows[0]["phases"]["full_bars_per_configuration"] if rows else 0), flush=True)
    for r in rows:
        print(_row(r), flush=True)
    sp = np.array([r["full"] / r["sur"] for r in rows])
    cp = np.array([r["full_cpu"] / r["sur_cpu"] for r in rows])
    rh = np.array([r["rho"] for r in rows])
    print(f"\nmean ± std over seeds {seeds}: speed-up {sp.mean():.1f} ± {sp.std():.1f}x (in CPU seconds "
          f"{cp.mean():.1f} ± {cp.std():.1f}x), Spearman {rh.mean():.3f} ± "
          f"{rh.std():.3f}, recall {np.mean([r['rec'] for r in rows]):.2f}", flush=True)
    if halving and eps0 is not None:
        eps = eps0.episodes
        nb = eps0.summary["base_episodes"]
        for rungs in ((nb, 2 * nb, eps.n), (2 * nb, eps.n)):
            rungs = tuple(sorted(set(min(x, eps.n) for x in rungs)))
            sh = successive_halving(configs, eps, rungs=rungs, timeframe=candles.timeframe, n_jobs=jobs,
                                    progress=progress)
            key = sh["rank_key"]
            order = sorted(key, key=lambda k: key[k])
            rank_score = {k: i for i, k in enumerate(order)}  # higher = better
            common = [k for k in truth if k in rank_score]
            rho = spearmanr([rank_score[k] for k in common], [truth[k] for k in common]).statistic
            print(f"successive halving, rungs {rungs} episodes (same for all: common random numbers): "
                  f"{sh['seconds']:.1f} s ({full_s / sh['seconds']:.1f}x), Spearman {rho:.3f}, top-5 recall "
                  f"{recall({k: rank_score[k] for k in common}, {k: truth[k] for k in common}):.2f}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample-bars", type=int, default=500_000)
    ap.add_argument("--sample-seed", type=int, default=7)
    ap.add_argument("--data", help="a candle file (e.g. ../shared/data/UNITTEST_BTC-1m.feather) instead")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--halving", action="store_true", help="also the successive-halving baseline")
    ap.add_argument("--base-episodes", type=int, default=6)
    ap.add_argument("--length", type=int, default=400, help="scored bars per episode")
    ap.add_argument("--min-speedup", type=float, default=3.0,
                    help="configurations whose base episodes cost more than 1/this of a full backtest get the "
                         "full backtest directly (0: always try the surrogate)")
    ap.add_argument("--strategies", nargs="+", default=["strategies"],
                    help="strategy folders (relative to the project), e.g. strategies "
                         "benchmarks/plain_strategies/calibration")
    ap.add_argument("--no-own-lines", action="store_true",
                    help="surrogates read the indicator bank's columns only, not the strategies' own lines")
    ap.add_argument("--no-replay", action="store_true",
                    help="what the surrogates cannot score gets Backtrader's full run, not the replay")
    ap.add_argument("--escalate", action="store_true", help="escalate untrusted surrogates before replaying them")
    ap.add_argument("--progress", action="store_true")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    if a.data:
        candles = load_candles(a.data)
        label = f"{Path(a.data).name} (real)"
    else:
        candles = sample_market(bars=a.sample_bars, seed=a.sample_seed)
        label = f"sample market (synthetic, seed {a.sample_seed})"
    options = dict(base_episodes=a.base_episodes, length=a.length, min_speedup=a.min_speedup,
                   own_lines=not a.no_own_lines, replay=not a.no_replay, escalate=True if a.escalate else None)
    run(candles, label, seeds, a.jobs, a.halving, a.progress, options, a.strategies)


if __name__ == "__main__":
    main()
