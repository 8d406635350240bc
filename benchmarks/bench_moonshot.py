"""The moonshot: ~1,000 configurations on 1M candles, end to end, with sampled validation.

    python benchmarks/bench_moonshot.py [--sample-bars 1000000] [--jobs 2] [--validate-sample 50] [--seed 0]

The shipped strategies of ``strategies/`` with large grids (each file copied into a temporary
folder with a bigger ``grid`` assigned after the class; 970 configurations: 476 model, 494
plain) are screened on the sample market exactly as ``python -m distillbt screen DIR
--validate-sample N`` would: distillation, model strategies vectorised, plain strategies by
surrogates (escalations and full fallbacks included), ranking, then the full backtests of N
configurations drawn at random (seeded) and of the 10 survivors on the screening and holdout
periods. Everything is the screen's own accounting (``distillbt.screen``, "Accounting").

Prints one table: wall time of the whole run (candles made outside it), each part, the full
backtests' time for every configuration estimated from the sample (its wall time per
configuration × the configurations), the speed-up, and the sampled Spearman with its bootstrap
90 % interval (all paths, fast paths only, per path). Goal: under 10 minutes on 2 cores with
sampled Spearman ≥ 0.9.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distillbt.data.sources import load_candles  # noqa: E402
from distillbt.screen import screen  # noqa: E402

#: Grids per shipped strategy file: about 1,000 configurations in all.
GRIDS = {
    "ridge_momentum.py": ("RidgeMomentum", {"alpha": [0.001, 0.01, 0.1, 1.0, 10.0], "lookbacks": ["short", "long"],
                                            "band": [0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4]}),
    "ridge_volatility.py": ("RidgeVolatility", {"alpha": [0.01, 0.1, 1.0, 10.0],
                                                "long_threshold": [0.0, 0.05, 0.1, 0.15, 0.2, 0.3],
                                                "short_threshold": [0.0, -0.05, -0.1, -0.15, -0.2, -0.3]}),
    "linear_next_candle.py": ("LinearNextCandle", {"long_threshold": [0.0, 0.02, 0.05, 0.08, 0.1, 0.15, 0.2, 0.25,
                                                                      0.3, 0.4],
                                                   "short_threshold": [0.0, -0.02, -0.05, -0.08, -0.1, -0.15, -0.2,
                                                                       -0.25, -0.3, -0.4]}),
    "logistic_direction.py": ("LogisticDirection", {"alpha": [1e-4, 1e-3, 1e-2, 1e-1, 1.0],
                                                    "edge": [0.0, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.06],
                                                    "allow_short": [True, False]}),
    "logistic_short_horizon.py": ("LogisticShortHorizon", {"alpha": [1e-4, 1e-3, 1e-2, 1e-1],
                                                           "long_threshold": [0.5, 0.51, 0.52, 0.53, 0.55, 0.58]}),
    "mlp_direction.py": ("MLPDirection", {"hidden": [4, 8, 16], "long_threshold": [0.51, 0.52, 0.53, 0.55],
                                          "short_threshold": [0.49, 0.48, 0.47, 0.45]}),
    "sma_cross.py": ("SmaCross", {"fast": [5, 8, 10, 13, 15, 20, 25, 30, 35, 40, 45, 50],
                                  "slow": [60, 80, 100, 120, 150, 180, 200, 250, 300, 350, 400, 500]}),
    "rsi_reversion.py": ("RsiReversion", {"period": [5, 7, 10, 14, 21, 28], "low": [15, 20, 25, 30, 35],
                                          "high": [60, 65, 70, 75, 80]}),
    "donchian_breakout.py": ("DonchianBreakout", {"entry_period": [10, 20, 30, 40, 55, 80, 100, 120, 150, 200],
                                                  "exit_period": [5, 10, 15, 20, 30, 50, 80, 100]}),
    "pullback_trailing.py": ("PullbackTrailing", {"rsi_period": [2, 3, 4, 5], "level": [5, 10, 15, 20, 25, 30],
                                                  "exit_period": [50, 100, 150, 200, 300]}),
}


def write_folder(folder: Path) -> None:
    for name, (cls, grid) in GRIDS.items():
        source = (ROOT / "strategies" / name).read_text()
        (folder / name).write_text(f"{source}\n\n# bench_moonshot.py: a larger grid\n{cls}.grid = {grid!r}\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="sample")
    parser.add_argument("--sample-bars", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--validate-sample", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()

    candles = load_candles(args.data, sample_bars=args.sample_bars, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="moonshot-") as tmp:
        write_folder(Path(tmp))
        began = time.perf_counter()
        result = screen(tmp, candles, top=args.top, validate_sample=args.validate_sample, n_jobs=args.jobs,
                        seed=args.seed, progress=True)
        wall = time.perf_counter() - began
    s = result.summary

    def rho(fields, key=""):
        if f"spearman{key}" not in fields:
            return "-"
        interval = fields.get(f"spearman{key}_ci90")
        return f"{fields[f'spearman{key}']:.3f}" + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")

    ps = s.get("plain_surrogate", {})
    print(f"data: {candles.source}{' (synthetic)' if candles.synthetic else ''}, {len(candles):,} candles; "
          f"screening {s['periods']['screening']['candles']:,}, holdout {s['periods']['holdout']['candles']:,}; "
          f"seed {args.seed}; --jobs {args.jobs}; {s['configurations']} configurations "
          f"({s['model_configurations']} model, {s['plain_configurations']} plain; plain paths {ps.get('paths')}); "
          f"{s['errors']} errors")
    print("| wall s | screen s (distil + model + plain) | survivors s | validation s (sample) "
          "| full s, all configurations (est.) | speed-up | Spearman [90%], sample | fast paths | model | plain |")
    print("|---:|---|---:|---:|---:|---:|---|---|---|---|")
    print(f"| {wall:.0f} | {s['screen_seconds']:.0f} ({s['distill_seconds']:.0f} + {s['model_seconds']:.0f} + "
          f"{s['plain_seconds']:.0f}) | {s['survivors_seconds']:.0f} | {s['validation_full_seconds']:.0f} "
          f"({s['validated_configurations']}) | {s['estimated_full_seconds']:.0f} | {s['speedup']:.1f}x | {rho(s)} "
          f"| {rho(s, '_fast_path')} | {rho(s['paths'].get('model', {}))} | {rho(s['paths'].get('plain', {}))} |")
    for line in result.summary_lines():
        print(line)


if __name__ == "__main__":
    main()
