"""Why the plain screen replays what it replays, and what each replay costs.

::

    python benchmarks/bench_replay_reasons.py --sample-bars 300000 --strategies strategies benchmarks/plain_strategies/calibration
    python benchmarks/bench_replay_reasons.py --sample-bars 300000 --strategies benchmarks/plain_strategies/holdout

The plain screen (``screen_plain``, default options, one seed; periods as
``bench_surrogate.py``'s: training the first 50 % of the candles, screening the next 30 %)
decides which configurations it cannot score on a learned surrogate; those are replayed. Each
of them is then replayed again here alone, one after the other in this process, with the
baseline's bounded warm-up, to time it. The table groups them by the reason in their record:
the order types the learned path does not fill, sizes or scaling it does not model, or the
trust checks the surrogate failed (``trust["failed"]``). Its seconds are one process's, not
the screen's wall (which runs replays on ``--jobs`` workers): they say where the replays'
work is, which is what a faster path would have to remove.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distillbt.backtest import run_many  # noqa: E402
from distillbt.baseline import baseline_job  # noqa: E402
from distillbt.data.sample import sample_market  # noqa: E402
from distillbt.data.sources import load_candles  # noqa: E402
from distillbt.discovery import discover  # noqa: E402
from distillbt.strategy import ModelStrategy  # noqa: E402
from distillbt.surrogate import screen_plain  # noqa: E402
from distillbt.surrogate.replay import ReplayCerebro  # noqa: E402


def reason_of(record: dict) -> str:
    """One group name for a replayed configuration's record."""
    trust = record["trust"] or {}
    reason = trust.get("reason") or ""
    if "orders the fast path does not model" in reason:
        kinds = reason.split("does not model: ")[-1]
        return "orders: " + ", ".join(k.split(" (")[0] for k in kinds.split(", "))
    if "sizes the fast path" in reason or "own sizer" in reason:
        return "sizes"
    if "change size while held" in reason:
        return "scaling in or out"
    if reason:
        return "other: " + reason.split(": ", 1)[-1][:60]
    return "untrusted: " + (", ".join(trust.get("failed") or []) or "?")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample-bars", type=int, default=300_000)
    ap.add_argument("--sample-seed", type=int, default=7)
    ap.add_argument("--data", help="a candle file instead of the sample market")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2, help="workers of the screen (the timed replays run here, alone)")
    ap.add_argument("--strategies", nargs="+", default=["strategies"])
    args = ap.parse_args()
    candles = load_candles(args.data) if args.data else sample_market(bars=args.sample_bars, seed=args.sample_seed)
    configs = [c for folder in args.strategies for c in discover(ROOT / folder).configurations()
               if not issubclass(c.strategy.cls, ModelStrategy)]
    n = len(candles.frame)
    train, screen = (0, n // 2), (n // 2, int(n * 0.8))
    out = screen_plain(configs, candles, train=train, screen=screen, seed=args.seed, n_jobs=args.jobs,
                       progress=False)
    replayed = [(c, r) for c, r in zip(configs, out.records) if r["path"] in ("replay", "full")]
    groups = defaultdict(list)
    for config, record in replayed:
        job = dataclasses.replace(baseline_job(config, candles, start=screen[0], stop=screen[1], cash=10_000.0,
                                               commission=0.001), cerebro=ReplayCerebro)
        began = time.perf_counter()
        result = run_many([job], n_jobs=1, progress=False)[0]
        seconds = time.perf_counter() - began
        groups[reason_of(record)].append((config.name, seconds, len(result.get("trades") or [])))
    total = sum(s for members in groups.values() for _, s, _ in members)
    print(f"{', '.join(args.strategies)}: {len(configs)} plain configurations, {len(replayed)} replayed "
          f"(seed {args.seed}, screening {screen[1] - screen[0]:,} bars); their replays one at a time: {total:.1f} s\n")
    print("| reason | configurations | replay s | share | configurations (replay s, trades) |")
    print("|---|---:|---:|---:|---|")
    for reason, members in sorted(groups.items(), key=lambda kv: -sum(s for _, s, _ in kv[1])):
        seconds = sum(s for _, s, _ in members)
        names = "; ".join(f"{name} ({s:.1f} s, {t:,})" for name, s, t in members)
        print(f"| {reason} | {len(members)} | {seconds:.1f} | {seconds / total:.0%} | {names} |")


if __name__ == "__main__":
    main()
