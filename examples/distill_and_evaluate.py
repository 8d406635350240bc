"""Distil with a chosen method, save and reload the artifact, then measure how good such sets are.

    python examples/distill_and_evaluate.py [--method gradient] [--size 50] [--bars 50000]
                                            [--eval-bars 20000] [--seeds 2] [--out distilled.npz]

Methods (``--method``): gradient (default), distribution, kernel, trajectory, cafe,
exact-linear (always d + 1 = 21 points per regime, whatever --size says), and the baselines
kmedoids, herding, random, full. The same steps on the command line:

    python -m distillbt distill --data sample --method gradient --size 50 --per-regime --out distilled.npz
    python -m distillbt evaluate --data sample --methods gradient,random,full --sizes 50 --seeds 2

Runs offline on the synthetic sample market in about a minute.
"""

import argparse
import json
from pathlib import Path

import numpy as np

import distillbt
from distillbt.distill.artifact import DistilledSet
from distillbt.distill.prepare import prepare
from distillbt.distill.runner import METHODS, distill
from distillbt.evaluate import evaluate


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="gradient", choices=list(METHODS), help="distillation method (default gradient)")
    parser.add_argument("--size", type=int, default=50, help="distilled points in all (default 50)")
    parser.add_argument("--task", default="classification", choices=["classification", "regression"],
                        help="what the points' targets are: next-candle direction (default) or return")
    parser.add_argument("--bars", type=int, default=50_000, help="sample-market candles to distil (default 50000)")
    parser.add_argument("--eval-bars", type=int, default=20_000,
                        help="sample-market candles for the evaluation (default 20000)")
    parser.add_argument("--seeds", type=int, default=2, help="evaluation seeds (default 2)")
    parser.add_argument("--out", default="distilled.npz", help="artifact path (default distilled.npz)")
    args = parser.parse_args()

    # -- 1. distil -------------------------------------------------------------------------
    candles = distillbt.load_candles("sample", sample_bars=args.bars, seed=7)
    # Features, a chronological train/validation/test split (60/20/20 %), and a scaler and
    # regime labeller fitted on the training period only (no look-ahead).
    data = prepare(candles)
    train = data.split_info()["train"]
    print(f"data: {candles.source} (synthetic), training period {train['first']} → {train['last']}, "
          f"{train['rows']} usable rows × {len(data.feature_names)} features")

    # per_regime=True: each regime (bull, bear, sideways, volatile, crash) is distilled on its
    # own, the size split equally over them, and weighted by its share of the history.
    distilled = distill(data, method=args.method, size=size_for(args.method, args.size, data), task=args.task,
                        per_regime=True, seed=0, progress=False)

    # -- 2. save and load back -------------------------------------------------------------
    # One .npz holding arrays (X, y, weight, regime) and a JSON header (features, scaler,
    # labeller, method and configuration, seed, fingerprint of the source candles, split...).
    # It loads with allow_pickle=False: no code runs when you open someone else's set.
    path = distilled.save(args.out)
    loaded = DistilledSet.load(path)
    assert np.array_equal(loaded.X, distilled.X) and np.array_equal(loaded.weight, distilled.weight)
    # A readable copy of the header beside it (the .npz alone is the artifact).
    header_path = Path(path).with_suffix(".json")
    header_path.write_text(json.dumps(loaded.meta, indent=1))
    print(f"\nsaved {path} ({Path(path).stat().st_size:,} bytes) and its header as {header_path}")

    summary = loaded.summary()
    print(f"method:        {summary['method']} ({summary['task']}), seed {loaded.meta['seed']}")
    print(f"points:        {summary['points']} × {summary['features']} features, per regime "
          + ", ".join(f"{k} {v}" for k, v in summary["points_per_regime"].items()))
    print("weights:       " + ", ".join(f"{r} {loaded.weight[loaded.regime == r].sum():.2f}"
                                       for r in summary["points_per_regime"]) + " (sum 1)")
    for job in loaded.meta["jobs"]:
        print(f"  {job['regime']:<9} {job['points']:>3} points from {job['training_rows']:>6} rows, "
              f"{job['n_iter']} iterations, converged {job['converged']}, {job['seconds']:.2f} s")
    print(f"compression:   {summary['compression_ratio']:,.0f}x — {summary['source_candles']:,} training candles "
          f"as float64 time+OHLCV ({summary['source_candles'] * 48:,} bytes) / {summary['payload_bytes']:,} "
          "bytes of points, targets, weights and regimes")
    print(f"source:        {loaded.meta['source']}, fingerprint {loaded.meta['fingerprint'][:16]}…")

    # -- 3. evaluate -----------------------------------------------------------------------
    # The DC-BENCH protocol: for each seed, distil the training period, train learners on the
    # set and score them on the test period; penalties are chosen on the validation period.
    # The method is compared with a random subset of the same size and with the full training
    # set. A smaller sample keeps this quick; use more bars and seeds for real conclusions.
    small = prepare(distillbt.load_candles("sample", sample_bars=args.eval_bars, seed=7))
    learners = ("logistic",) if args.task == "classification" else ("ridge",)
    methods = [args.method] + [m for m in ("random", "full") if m != args.method]
    print(f"\nevaluating {', '.join(methods)} at size {size_for(args.method, args.size, small)} with {learners[0]} on {args.eval_bars} candles, "
          f"{args.seeds} seeds …")
    evaluation = evaluate(small, methods=methods, sizes=[size_for(args.method, args.size, small)], seeds=args.seeds,
                          learners=learners, progress=False)
    test = small.split_info()["test"]
    print(f"scored on the test period {test['first']} → {test['last']} (mean±std over seeds):")
    print(evaluation.table())
    print("\nic: rank correlation of the predictions with the next candle's return on the test period; "
          + ("accuracy: share of up/down calls that were right (0.5 = a coin)."
             if args.task == "classification" else
             "r2: share of the returns' variance explained; coef_rel_error: distance of ridge's "
             "coefficients to the full-data fit's (0 = the same model)."))
    print(f"{path}")


def size_for(method, size, data):
    """exact-linear has no size to choose: it is d + 1 points per regime (21 for the 20
    default features), whose weighted moments reproduce the training rows' exactly."""
    if method != "exact-linear":
        return size
    regimes = len(set(data.regime[data.parts["train"]]))
    return (len(data.feature_names) + 1) * regimes


if __name__ == "__main__":
    main()
