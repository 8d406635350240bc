"""Peak memory of a screen as the number of configurations grows (it should stay flat).

    python benchmarks/bench_screen_memory.py [--sample-bars 300000] [--configs 16,64,256] [--jobs 1]

Each size runs in a fresh process: one ridge model strategy whose grid (α × long × short
thresholds) gives the number of configurations asked for, screened on the sample market with
10 survivors (their full backtests are the same work at every size). Prints the process's
peak resident memory before the screen (data and imports) and after it, the growth, and the
screen's seconds per configuration. The screen keeps a fixed-size return summary per
configuration, never its equity curve, so the growth should not depend on the count.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STRATEGY = textwrap.dedent('''
    import numpy as np
    from distillbt.models import Ridge
    from distillbt.strategy import ModelStrategy

    N_LONG, N_SHORT = {n_long}, {n_short}

    class GridRidge(ModelStrategy):
        params = (("alpha", 1.0),)
        grid = {{"alpha": [0.01, 0.1, 1.0, 10.0],
                 "long_threshold": [float(x) for x in np.linspace(0.0, 0.3, N_LONG)],
                 "short_threshold": [float(x) for x in np.linspace(-0.3, 0.0, N_SHORT)]}}
        features = ("ret_1", "ret_4", "ret_16", "ma_dist_16", "ma_dist_64", "vol_ratio_16_96")
        target = "return"

        def make_estimator(self):
            return Ridge(alpha=self.p.alpha)
''')


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def child(args) -> None:
    sys.path.insert(0, str(ROOT))
    from distillbt.data.sources import load_candles
    from distillbt.screen import screen

    candles = load_candles("sample", sample_bars=args.sample_bars, seed=args.seed)
    before = _peak_mb()
    result = screen(args.folder, candles, top=10, n_jobs=args.jobs, seed=args.seed, progress=False)
    s = result.summary
    print(json.dumps({"configs": s["configurations"], "before_mb": before, "after_mb": _peak_mb(),
                      "screen_seconds": s["screen_seconds"], "survivors_seconds": s["survivors_seconds"]}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample-bars", type=int, default=300_000)
    parser.add_argument("--configs", default="16,64,256", help="comma-separated; each a multiple of 4")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child-folder", dest="folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.folder:
        return child(args)

    print(f"sample market, {args.sample_bars:,} candles, seed {args.seed}, --jobs {args.jobs}, 10 survivors")
    print("| configurations | peak MB before screen | peak MB after | growth MB | screen ms / configuration |")
    print("|---:|---:|---:|---:|---:|")
    for count in [int(c) for c in args.configs.split(",")]:
        per_alpha = count // 4
        n_long = max(1, int(round(per_alpha ** 0.5)))
        n_short = per_alpha // n_long
        with tempfile.TemporaryDirectory() as folder:
            Path(folder, "grid_ridge.py").write_text(STRATEGY.format(n_long=n_long, n_short=n_short))
            out = subprocess.run([sys.executable, __file__, "--child-folder", folder, "--sample-bars",
                                  str(args.sample_bars), "--jobs", str(args.jobs), "--seed", str(args.seed)],
                                 check=True, capture_output=True, text=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        print(f"| {row['configs']} | {row['before_mb']:.0f} | {row['after_mb']:.0f} | "
              f"{row['after_mb'] - row['before_mb']:.0f} | {1000 * row['screen_seconds'] / row['configs']:.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
