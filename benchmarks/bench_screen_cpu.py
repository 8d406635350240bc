"""How busy the machine's cores are while a screen runs, stage by stage.

The screen's own timings (``screen_seconds``, of which ``distill_seconds`` and
``model_seconds``; the rest is discovery, periods, the workers' start when the folder has plain
strategies, and ranking) beside the
share of all cores busy over the screen's wall time, sampled from ``/proc/stat`` every 0.1 s
(Linux; the whole machine, so other work shows up too). A screen that keeps every core busy from
start to end is bound by the CPU-seconds it spends, not by waiting: only doing less work makes
it faster. Each seed runs in a fresh process, as a CLI run starts.

::

    python benchmarks/bench_screen_cpu.py --folder benchmarks/estimator_strategies/holdout2 --seeds 0 1
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _cpu_times() -> tuple[int, int]:
    """(all jiffies, idle + iowait jiffies) of the machine since boot."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return sum(values), values[3] + values[4]


def _one_screen(folder: str, bars: int, seed: int, jobs: int) -> dict:
    from distillbt.data.sample import sample_market
    from distillbt.screen import screen

    candles = sample_market(bars=bars, seed=7)
    samples, done = [], threading.Event()

    def sample():
        total, idle = _cpu_times()
        while not done.wait(0.1):
            total2, idle2 = _cpu_times()
            samples.append((time.perf_counter(), 1.0 - (idle2 - idle) / max(total2 - total, 1)))
            total, idle = total2, idle2

    sampler = threading.Thread(target=sample, daemon=True)
    started = time.perf_counter()
    sampler.start()
    result = screen(folder, candles, seed=seed, n_jobs=jobs, progress=False, top=1)
    done.set()
    sampler.join()
    s = result.summary
    window = [busy for t, busy in samples if t <= started + s["screen_seconds"]]
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True, kill_workers=True)
    return {"seed": seed, "screen": s["screen_seconds"], "distill": s["distill_seconds"],
            "model": s["model_seconds"], "busy": sum(window) / max(len(window), 1),
            "busy_min": min(window, default=float("nan"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", required=True)
    parser.add_argument("--bars", type=int, default=200_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as fresh:
            rows.append(fresh.submit(_one_screen, args.folder, args.bars, seed, args.jobs).result())
    print(f"folder {args.folder}, sample market {args.bars} candles, {args.jobs} workers, {os.cpu_count()} cores")
    print("| seed | screen s | distillation s | models s | the rest s | cores busy, mean | cores busy, lowest 0.1 s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        rest = r["screen"] - r["distill"] - r["model"]
        print(f"| {r['seed']} | {r['screen']:.2f} | {r['distill']:.2f} | {r['model']:.2f} | {rest:.2f} | "
              f"{100 * r['busy']:.0f} % | {100 * r['busy_min']:.0f} % |")


if __name__ == "__main__":
    main()
