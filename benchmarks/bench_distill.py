"""Distillation wall time and peak memory on the sample market, all regimes, per method.

    python benchmarks/bench_distill.py [--bars 100000 500000 1000000] [--methods gradient distribution kernel]
                                       [--size 50] [--jobs 2]

Each row: preparing the data (features, split, scaler, regime labeller: done once and shared)
and then distilling every regime of the training period with one method, ``--jobs`` joblib
processes. Peak memory is the largest resident set of this process plus its worker processes,
sampled every 50 ms. The sample market is synthetic.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distillbt.data.sample import sample_market  # noqa: E402
from distillbt.distill.prepare import prepare  # noqa: E402
from distillbt.distill.runner import distill  # noqa: E402


def _rss_tree_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants, in MB (Linux /proc)."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                total += next(int(line.split()[1]) for line in fh if line.startswith("VmRSS"))
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    stack.extend(int(c) for c in fh.read().split())
        except (OSError, StopIteration):
            continue
    return total / 1024


class PeakMemory:
    """Samples the process tree's resident memory in a thread; ``peak_mb`` after exit."""

    def __enter__(self):
        self.peak_mb, self._stop = _rss_tree_mb(os.getpid()), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(0.05):
            self.peak_mb = max(self.peak_mb, _rss_tree_mb(os.getpid()))

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, nargs="+", default=[100_000, 500_000, 1_000_000])
    parser.add_argument("--methods", nargs="+", default=["gradient", "distribution", "kernel"])
    parser.add_argument("--size", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(f"sample market (synthetic), size {args.size} points over all regimes, {args.jobs} jobs, seed {args.seed}")
    print("| bars | training candles | prepare s | method | distil s | prepare + distil s | peak MB | converged regimes |")
    print("|---:|---:|---:|---|---:|---:|---:|---|")
    for bars in args.bars:
        candles = sample_market(bars=bars, seed=args.seed)
        with PeakMemory() as mem:
            t0 = time.perf_counter()
            data = prepare(candles)
            prep = time.perf_counter() - t0
        for method in args.methods:
            with PeakMemory() as mem_method:
                t0 = time.perf_counter()
                out = distill(data, method=method, size=args.size, per_regime=True, seed=args.seed,
                              n_jobs=args.jobs)
                seconds = time.perf_counter() - t0
            converged = sum(job["converged"] for job in out.meta["jobs"])
            print(f"| {bars:,} | {out.meta['n_source_candles']:,} | {prep:.1f} | {method} | {seconds:.1f} | "
                  f"{prep + seconds:.1f} | {max(mem.peak_mb, mem_method.peak_mb):,.0f} | "
                  f"{converged}/{len(out.meta['jobs'])} |", flush=True)


if __name__ == "__main__":
    main()
