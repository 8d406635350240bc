"""Compression ratio of a distilled set, and what storing it in fewer bytes costs in skill.

    python benchmarks/bench_compression.py [--sample-bars 2200000] [--size 20] [--method gradient] [--seeds 0,1,2]

Distils the training period of the sample market (60% of the usable candles: 1.3M candles at
the default 2.2M bars) into ``--size`` points per seed (all regimes, per regime), stores the
set as float64, float32 and float16, and prints per precision: the bytes of the points as
stored (X, y and weight in that precision + one byte of regime per point; the npz's zip
compression is not counted, and the JSON header — scaler, labeller, provenance — is not
payload either), the file size on disk, the compression ratio (raw time + OHLCV of the
training candles as float64, 48 bytes a candle, over the payload), and the test-period
information coefficient of a logistic model trained on the stored points (mean ± std over
seeds): the price of rounding.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distillbt.data.sources import load_candles  # noqa: E402
from distillbt.distill.artifact import PRECISIONS, DistilledSet, raw_candle_bytes  # noqa: E402
from distillbt.distill.prepare import prepare  # noqa: E402
from distillbt.distill.runner import distill  # noqa: E402
from distillbt.models import LogisticRegression  # noqa: E402


def test_ic(dset: DistilledSet, data) -> float:
    model = LogisticRegression().fit(dset.X, dset.y, sample_weight=dset.weight)
    test = data.parts["test"]
    return float(spearmanr(model.predict_proba(data.X[test]), data.target[test]).statistic)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample-bars", type=int, default=2_200_000)
    parser.add_argument("--size", type=int, default=20)
    parser.add_argument("--method", default="gradient")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]

    candles = load_candles("sample", sample_bars=args.sample_bars, seed=0)
    data = prepare(candles)
    n_train = data.parts["train"].stop - data.parts["train"].start
    rows = {p: {"payload": [], "file": [], "ratio": [], "ic": []} for p in PRECISIONS}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            dset = distill(data, method=args.method, size=args.size, task="classification", per_regime=True,
                           seed=seed, n_jobs=args.jobs, progress=False)
            for precision in PRECISIONS:
                path = dset.with_precision(precision).save(Path(tmp, f"{seed}-{precision}.npz"))
                back = DistilledSet.load(path)
                rows[precision]["payload"].append(back.payload_bytes)
                rows[precision]["file"].append(path.stat().st_size)
                rows[precision]["ratio"].append(back.compression_ratio)
                rows[precision]["ic"].append(test_ic(back, data))
    print(f"sample market (synthetic), {len(candles):,} candles; training period {n_train:,} candles "
          f"= {raw_candle_bytes(n_train):,} raw bytes; {args.method}, {args.size} points × "
          f"{len(data.feature_names)} features, per regime; seeds {args.seeds}")
    print("| stored as | payload bytes | file bytes (npz + JSON header) | compression ratio | logistic test IC |")
    print("|---|---:|---:|---:|---:|")
    for precision, r in rows.items():
        print(f"| {precision} | {np.mean(r['payload']):,.0f} | {np.mean(r['file']):,.0f} | "
              f"{np.mean(r['ratio']):,.0f}x | {np.mean(r['ic']):.4f} ± {np.std(r['ic']):.4f} |")


if __name__ == "__main__":
    main()
