"""How far an agnostic set's model sits from its full fit, and whether a shift of its
predictions tells which configurations' screen scores to distrust.

For every configuration fitted on an agnostic set (``centroids``), on one seed: its model on
the points and on the training rows (what its full backtest fits), both run vectorised over
the screening period (the rows' run *is* the full backtest's score). Printed per
configuration: the points' score, the rows' score, the error, the predictions' error in units
of their own spread, and the points' score range when every prediction is shifted by
``±k·std`` for each ``--shifts`` k — a candidate fragility signal, which needs no rows fit.

Rejected on what it printed (seed 0; calibration, first held-out and check sets, 80
configurations): the shift's score range ranks the configurations' errors at a Spearman of
0.05 (k = 0.05), 0.05 (0.1), 0.28 (0.2) and 0.28 (0.4) — AdaBoost stumps 11 units off move by
0.7 — so no screen uses it. The predictions' own error ranks them at 0.50; it needs the rows
fit, which is the exact answer already. The points' models disagree with the rows' bar by
bar about as much as their predictions vary (error / spread: median 0.80, 0.28–2.54), and
still rank configurations: what they share with the full fit is where they trade on the whole.

::

    python benchmarks/bench_fragility.py --bars 200000 --seed 0 --folders benchmarks/estimator_strategies/calibration benchmarks/estimator_strategies/holdout benchmarks/estimator_strategies/check

Every non-linear estimator is fitted on the agnostic points here, those the screen now fits on
the rows (AdaBoost, histogram boosting) included, as the screen fitted them when this was
measured. The last lines print the summary: the Spearman of each shift's score range, and of
the predictions' error, with the configurations' absolute score errors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distillbt.data.sample import sample_market  # noqa: E402
from distillbt.discovery import discover  # noqa: E402
from distillbt.distilled_sets import distil_sets, needs_of  # noqa: E402
from distillbt.features import make_features, ohlcv_frame  # noqa: E402
from distillbt.objectives import bars_per_year, objective_score  # noqa: E402
from distillbt.screen import DEFAULT_FRACTIONS, screen_periods  # noqa: E402
from distillbt.vectorised import simulate  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402


def _score(cfg, frame, signal, first, stop, per_year):
    targets = np.asarray(cfg.position_rule(signal.copy()), dtype="float64")
    result = simulate(frame.iloc[:stop], targets, cash=10_000.0, commission=0.001,
                      fraction=cfg.p.fraction, start_index=first)
    return objective_score(None, result["equity"], cash=10_000.0, bars_per_year=per_year)


def _folder_rows(folder, args, candles, periods, data) -> list[tuple]:
    """``(name, points score, rows score, prediction error / spread, [range per shift])`` for
    every agnostic configuration of ``folder``, printed as they come."""
    configs = discover(folder).configurations()
    first, stop = periods["screening"]
    needs, _ = needs_of(configs, training_rows=False)  # the rows rules off: every non-linear fit on points
    sets = distil_sets(data, needs, per_regime=True, seed=args.seed, fractions=DEFAULT_FRACTIONS)
    frame = ohlcv_frame(candles).iloc[:stop]
    per_year = bars_per_year(getattr(candles, "timeframe", None), frame.index)
    tables, rows = {}, []
    for config in configs:
        need = needs.get(config.name)
        if need is None or need.family != "agnostic":
            continue
        cls = config.strategy.cls
        cfg = cls.configure(config.params)
        _, options = cfg.feature_spec()
        key = tuple(sorted(options.items()))
        if key not in tables:
            tables[key] = make_features(frame, **options).X
        table = tables[key]
        on_points = cls.fit_model_on_distilled(sets[need.key], params=config.params)
        on_rows = cls.fit_model(frame, params=config.params, end=first, feature_set=table)
        signals = []
        for fitted in (on_points, on_rows):
            s = np.full(stop, np.nan)
            s[first:] = fitted.signal(frame.iloc[first:], feature_set=table.iloc[first:])
            signals.append(s)
        sp, sr = signals
        spread = float(np.nanstd(sp[first:]))
        err = float(np.nanstd(sp[first:] - sr[first:]) / max(np.nanstd(sr[first:]), 1e-12))
        base, exact = (_score(cfg, frame, s, first, stop, per_year) for s in (sp, sr))
        ranges = []
        for k in args.shifts:
            shifted = [_score(cfg, frame, sp + d * k * spread, first, stop, per_year) for d in (-1.0, 1.0)]
            ranges.append(max(shifted + [base]) - min(shifted + [base]))
        print(f"| {config.name} | {base:+.2f} | {exact:+.2f} | {base - exact:+.2f} | {err:.2f} | "
              + " | ".join(f"{r:.2f}" for r in ranges) + " |", flush=True)
        rows.append((config.name, base, exact, err, ranges))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folders", nargs="+", required=True)
    parser.add_argument("--bars", type=int, default=200_000)
    parser.add_argument("--market-seed", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shifts", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.4])
    args = parser.parse_args()
    candles = sample_market(bars=args.bars, seed=args.market_seed)
    periods = screen_periods(candles, DEFAULT_FRACTIONS)
    data = periods.pop("data")
    print("| configuration | points | rows | error | pred err/std | "
          + " | ".join(f"range ±{k}" for k in args.shifts) + " |", flush=True)
    rows = [row for folder in args.folders for row in _folder_rows(folder, args, candles, periods, data)]
    error = np.abs([points - exact for _, points, exact, _, _ in rows])
    pred = np.array([err for *_, err, _ in rows])
    print(f"\n{len(rows)} configurations, seed {args.seed}; Spearman with |points - rows|:")
    for j, k in enumerate(args.shifts):
        print(f"  score range under ±{k}·std: {spearmanr(error, [r[4][j] for r in rows]).statistic:.2f}")
    print(f"  prediction error / spread: {spearmanr(error, pred).statistic:.2f} "
          f"(median {np.median(pred):.2f}, {pred.min():.2f}-{pred.max():.2f})")


if __name__ == "__main__":
    main()
