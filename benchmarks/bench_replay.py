"""The replay (distillbt.surrogate.replay) against Backtrader's own run, configuration by
configuration: same score and trades, and the time of each.

::

    python benchmarks/bench_replay.py --sample-bars 300000 --strategies strategies benchmarks/plain_strategies/calibration

Every plain configuration of the folders, on the screening period the plain screen uses (the
sample market's 50–80 %), with the screen's bounded warm-up (``distillbt.baseline``), run twice
with the same worker processes: replays and full backtests in alternating chunks of 6
configurations, so both are timed over the same stretch of a shared machine's load (wall time
summed per engine; per configuration, the seconds each run reports). Prints a line per
configuration and the totals; a replay whose score or trades differ from its full backtest is
flagged.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import backtrader as bt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distillbt.backtest import run_many  # noqa: E402
from distillbt.baseline import baseline_job  # noqa: E402
from distillbt.data.sample import sample_market  # noqa: E402
from distillbt.discovery import discover  # noqa: E402
from distillbt.executor import Executor  # noqa: E402
from distillbt.strategy import ModelStrategy  # noqa: E402
from distillbt.surrogate.replay import ReplayCerebro  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample-bars", type=int, default=300_000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--strategies", nargs="+", default=["strategies"])
    a = ap.parse_args()
    configs = [c for folder in a.strategies for c in discover(ROOT / folder).configurations()
               if not issubclass(c.strategy.cls, ModelStrategy)]
    candles = sample_market(bars=a.sample_bars, seed=7)
    n = len(candles.frame)
    screen = (n // 2, int(n * 0.8))
    jobs = [baseline_job(c, candles, start=screen[0], stop=screen[1], cash=10_000.0, commission=0.001)
            for c in configs]
    engines = (("replay", ReplayCerebro), ("full", bt.Cerebro))
    results, seconds = {name: [] for name, _ in engines}, {name: 0.0 for name, _ in engines}
    with Executor(n_jobs=a.jobs) as executor:  # one pool for every chunk, both engines
        run_many(jobs[:2], executor=executor, progress=False)  # start the workers, untimed
        for k in range(0, len(jobs), 6):
            for name, cerebro in engines if (k // 6) % 2 == 0 else engines[::-1]:
                began = time.perf_counter()
                results[name] += run_many([dataclasses.replace(j, cerebro=cerebro) for j in jobs[k:k + 6]],
                                          executor=executor, progress=False)
                seconds[name] += time.perf_counter() - began
    print(f"{len(configs)} plain configurations, screening {screen[1] - screen[0]:,} bars of {n:,} sample "
          f"candles, --jobs {a.jobs}\n")
    print("| configuration | trades | full s | replay s | speed-up | engine | same score and trades |")
    print("|---|---:|---:|---:|---:|---|---|")
    differing = rounding = 0
    for config, replayed, full in zip(configs, results["replay"], results["full"]):
        if replayed.get("error") or full.get("error"):
            print(f"| {config.name} | error: {replayed.get('error') or full.get('error')} |")
            differing += 1
            continue
        same = _agreement(replayed, full)
        differing += same == "**NO**"
        rounding += same != "yes" and same != "**NO**"
        print(f"| {config.name} | {len(full['trades'])} | {full['seconds']:.2f} | {replayed['seconds']:.2f} | "
              f"{full['seconds'] / replayed['seconds']:.1f}x | {replayed['engine']}"
              f"{' (' + replayed['engine_fallback'] + ')' if replayed.get('engine_fallback') else ''} | "
              f"{same} |")
    print(f"\nall replays {seconds['replay']:.1f} s, all full backtests {seconds['full']:.1f} s: "
          f"{seconds['full'] / seconds['replay']:.1f}x; {differing} of {len(configs)} differ "
          f"({rounding} agree up to floating-point rounding of an indicator's level)")


def _agreement(replayed: dict, full: dict) -> str:
    """``yes``: the same score (to 1e-9) and identical trades; ``yes, entry_price to <r>, …,
    score to <g>``: the same
    trades (times and bars exactly) whose prices, P&L and sizes differ by rounding only (relative
    ``r`` < 1e-9 for each field, each named with its own: a stop placed at an indicator's level
    computed by numpy in one, by Backtrader's running sums in the other); ``**NO**`` otherwise."""
    if abs(replayed["score"] - full["score"]) > 1e-9 or len(replayed["trades"]) != len(full["trades"]):
        return "**NO**"
    if replayed["trades"] == full["trades"]:
        return "yes"
    worst: dict = {}  # per trade field, the largest relative difference
    for a, b in zip(replayed["trades"], full["trades"]):
        if a.keys() != b.keys():
            return "**NO**"
        for key in a:
            if isinstance(a[key], float) and isinstance(b[key], float):
                # sizes are the sizer's share of a value that carries the P&L's rounding
                scale = abs(b[key]) if key == "size" else max(abs(b[key]), 1.0)
                worst[key] = max(worst.get(key, 0.0), abs(a[key] - b[key]) / scale if scale else abs(a[key]))
            elif a[key] != b[key]:
                return "**NO**"
    gap = abs(replayed["score"] - full["score"])
    if max(worst.values(), default=0.0) >= 1e-9:
        return "**NO**"
    fields = ", ".join(f"{key} to {value:.0e}" for key, value in worst.items() if value)
    return f"yes, {fields}, score to {gap:.0e}"


if __name__ == "__main__":
    main()
