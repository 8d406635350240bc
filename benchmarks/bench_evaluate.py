"""The evaluate tables: test-period skill of learners trained on distilled sets, per method and
size, mean ± std over seeds, as a percentage of the full training set's skill.

    python benchmarks/bench_evaluate.py [--data sample|PATH ...] [--sample-bars 200000]
        [--methods gradient,distribution,kmedoids,random,full] [--sizes 50] [--seeds 5]
        [--learners logistic,mlp-classification] [--per-regime] [--jobs 2] [--json FILE]

Each ``--data`` gets one table (default: the sample market, synthetic, and
``../shared/data/ETH_BTC-5m.feather`` when it exists; files are read where they are, never
copied). The protocol is :func:`distillbt.evaluate.evaluate`: chronological split (train 60 %,
validation 20 %, test 20 %), every set trained with the same recipe (ridge's λ and logistic
regression's α and the MLP's weight decay chosen on the validation period per set; the MLP
trained full-batch), scored on the test period only. ``gradient`` is distilled with the
logistic model, ``gradient@mlp`` with the MLP along its own real training paths; each set is
scored by both learners (the cross-learner case is the other learner's row). Skill = information coefficient (Spearman correlation of the prediction with
the next return) on the test period; ``% of full`` = mean skill ÷ mean skill of the full
training set, and its spread the standard deviation over seeds of the seed-paired ratio.
``distil s`` = mean wall time of one distillation (all regimes) of that method and size.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# one BLAS thread per process: the jobs are the parallelism (threads oversubscribe a shared box)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distillbt.data.sources import load_candles  # noqa: E402
from distillbt.distill.prepare import prepare  # noqa: E402
from distillbt.evaluate import LEARNERS, evaluate  # noqa: E402

REAL_DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "ETH_BTC-5m.feather"


def table(result, *, skill="ic") -> str:
    """Markdown table: method, size, learner, skill mean ± std, % of full (± spread), accuracy
    (classification) or R² (regression), distillation seconds."""
    index = {(r["method"], r["size"], r["learner"], r["metric"]): r for r in result.records}
    learners = [l for l in LEARNERS if any(r["learner"] == l for r in result.records)]
    full = {l: next((r for r in result.records if r["method"] == "full" and r["learner"] == l
                     and r["metric"] == skill), None) for l in learners}
    rows = sorted({(r["method"], r["size"]) for r in result.records},
                  key=lambda k: (k[0] == "full", k[1], k[0]))
    lines = ["| method | size | learner | IC (test) mean ± std | % of full IC | accuracy / R² | distil s |",
             "|---|---:|---|---:|---:|---:|---:|"]
    for method, size in rows:
        for learner in learners:
            rec = index.get((method, size, learner, skill))
            if rec is None:
                continue
            task = LEARNERS[learner][0]
            other = index.get((method, size, learner, "accuracy" if task == "classification" else "r2"))
            ref = full[learner]
            if ref is not None and abs(ref["mean"]) > 0:
                ratios = np.asarray(rec["values"]) / np.asarray(ref["values"])
                pct = f"{100 * rec['mean'] / ref['mean']:.0f}% ± {100 * ratios.std(ddof=1) if len(ratios) > 1 else 0:.0f}"
            else:
                pct = ""
            seconds = result.distill_seconds.get(f"{method}/{size}/{task}")
            lines.append(f"| {method} | {size:,} | {learner} | {rec['mean']:.4f} ± {rec['std']:.4f} | {pct} | "
                         f"{other['mean']:.4f} ± {other['std']:.4f} | "
                         f"{'' if seconds is None else f'{seconds:.1f}'} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=None,
                        help="'sample' and/or candle files (default: sample and ETH_BTC-5m from ../shared/data)")
    parser.add_argument("--sample-bars", type=int, default=200_000)
    parser.add_argument("--sample-seed", type=int, default=7)
    parser.add_argument("--methods", default="gradient,gradient@mlp,distribution,kmedoids,random,full",
                        help="'name@learner' distils with that learner (gradient@mlp: matched on the MLP)")
    parser.add_argument("--sizes", default="50")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--learners", default="logistic,mlp-classification")
    parser.add_argument("--per-regime", action="store_true")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", metavar="FILE", help="write every evaluation as JSON to FILE")
    args = parser.parse_args(argv)

    sources = args.data or (["sample"] + ([str(REAL_DEFAULT)] if REAL_DEFAULT.exists() else []))
    methods, learners = args.methods.split(","), args.learners.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]
    saved = {}
    for source in sources:
        candles = load_candles(source, sample_bars=args.sample_bars, seed=args.sample_seed)
        data = prepare(candles)
        started = time.perf_counter()
        result = evaluate(data, methods=methods, sizes=sizes, seeds=args.seeds, learners=learners,
                          per_regime=args.per_regime, n_jobs=args.jobs, progress=False)
        seconds = time.perf_counter() - started
        split = result.context["split"]
        print(f"\n{candles.source}{'  [SYNTHETIC]' if candles.synthetic else ''}: {len(candles.frame):,} candles; "
              f"train {split['train']['rows']:,} rows, test {split['test']['rows']:,} rows "
              f"({split['test']['first'][:10]} → {split['test']['last'][:10]}); seeds 0–{args.seeds - 1}, "
              f"{'per regime' if args.per_regime else 'all regimes at once'}; {seconds:.0f} s in all")
        print(table(result), flush=True)
        saved[candles.source] = result.to_dict()
    if args.json:
        Path(args.json).write_text(json.dumps(saved, indent=1))


if __name__ == "__main__":
    main()
