"""What one recorded run costs: a fixed part per run and a part per bar.

::

    python benchmarks/bench_record_overhead.py --strategies strategies benchmarks/plain_strategies/calibration

A plain strategy's surrogate learns from many short windows (about 600 bars: warm-up and
scored bars), each recorded by its own run (:func:`distillbt.surrogate.recorder.record_job`:
the feed's arrays, the strategy's ``__init__``, its lines computed in numpy, the replay of its
``next()``). For each strategy of the folders (its first configuration), on the sample market
(15-minute bars, seed 7): the fastest of ``--repeats`` runs over one window of 300, 611 and
1,222 bars (200 of them warm-up), and the fixed and per-bar costs of the line through the 300-
and 1,222-bar times. Single process; the machine's load moves single runs, so the table takes
the fastest of each.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distillbt.data.sample import sample_market  # noqa: E402
from distillbt.discovery import discover  # noqa: E402
from distillbt.strategy import ModelStrategy  # noqa: E402
from distillbt.surrogate.recorder import record_job  # noqa: E402

SIZES = (300, 611, 1222)
WARMUP = 200


def _fastest(configuration, frame, size, repeats) -> float:
    rows = frame.iloc[1000:1000 + size]
    window = (rows.index.asi8, rows[["open", "high", "low", "close", "volume"]].to_numpy(), WARMUP, size - WARMUP)
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        rec = record_job(configuration, [0], [window], 10_000.0, 0.001, "15m")
        best = min(best, time.perf_counter() - began)
        if rec.get("error"):
            raise SystemExit(rec["error"])
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--strategies", nargs="+", default=["strategies", "benchmarks/plain_strategies/calibration"])
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args()
    frame = sample_market(bars=20_000, seed=7).frame
    firsts = {}
    for folder in a.strategies:
        for c in discover(ROOT / folder).configurations():
            if not issubclass(c.strategy.cls, ModelStrategy):
                firsts.setdefault(c.strategy.name, c)
    print("| strategy | 300 bars ms | 611 bars ms | 1,222 bars ms | fixed ms | per bar µs |")
    print("|---|---:|---:|---:|---:|---:|")
    fixed, per_bar, at_611 = [], [], []
    for name, configuration in sorted(firsts.items()):
        _fastest(configuration, frame, SIZES[0], 1)  # imports and first-use caches, untimed
        t = [_fastest(configuration, frame, n, a.repeats) for n in SIZES]
        slope = (t[2] - t[0]) / (SIZES[2] - SIZES[0])
        fixed.append(t[0] - slope * SIZES[0])
        per_bar.append(slope)
        at_611.append(t[1])
        print(f"| {name} | {1e3 * t[0]:.2f} | {1e3 * t[1]:.2f} | {1e3 * t[2]:.2f} | {1e3 * fixed[-1]:.2f} | "
              f"{1e6 * slope:.1f} |", flush=True)
    print(f"\nmedian over {len(firsts)} strategies: fixed {1e3 * np.median(fixed):.2f} ms a run, "
          f"{1e6 * np.median(per_bar):.1f} µs a bar; a 611-bar window {1e3 * np.median(at_611):.2f} ms "
          f"(mean {1e3 * np.mean(at_611):.2f})")


if __name__ == "__main__":
    main()
