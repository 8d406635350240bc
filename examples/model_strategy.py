"""Writing a model strategy: fit it on distilled points and on real candles, run it both ways.

    python examples/model_strategy.py [--bars 20000] [--method exact-linear] [--seed 7]

The strategy itself is in examples/strategies_demo/my_strategy.py (read that file first: it
shows features, estimator, target/horizon, position rule and grid). This script does by hand,
for that one strategy, what ``distillbt screen`` does for a whole folder:

1. split the candles in time: training | screening | holdout (the screen's 50/30/20 %);
2. distil the training period into a few weighted points;
3. for each configuration of the grid, fit the model twice — on the distilled points (what
   the screen does, milliseconds) and on the real training candles (what a full backtest
   does) — and compare the two fits;
4. run each configuration over the screening period **vectorised** (numpy) and **in
   Backtrader**, and check that the two executions give the same final value.

Runs offline on the synthetic sample market in well under a minute.
"""

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

import distillbt
from distillbt.backtest import run_backtest
from distillbt.discovery import discover
from distillbt.distill.prepare import prepare
from distillbt.distill.runner import distill
from distillbt.errors import InputError, first_line
from distillbt.screen import DEFAULT_FRACTIONS

HERE = Path(__file__).resolve().parent
CASH, COMMISSION = 10_000.0, 0.001


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=20_000, help="sample-market candles (default 20000)")
    parser.add_argument("--method", default="exact-linear",
                        help="distillation method (default exact-linear, the screen's; try gradient)")
    parser.add_argument("--seed", type=int, default=7, help="sample-market seed")
    args = parser.parse_args()

    # -- the strategy, found the way the screen finds it (by reading the folder's files) -----
    found = discover(HERE / "strategies_demo")
    for problem in found.errors:
        raise SystemExit(f"{problem.file}: {problem.message}")
    strategy = found.strategies[0].cls
    configurations = strategy.configurations()  # the grid, expanded
    print(f"strategy {strategy.__name__}: {len(configurations)} configurations, features "
          f"{', '.join(strategy.features)}, target {strategy.target!r}, horizon {strategy.horizon}")

    # -- data and periods ------------------------------------------------------------------
    candles = distillbt.load_candles("sample", sample_bars=args.bars, seed=args.seed)
    # prepare() computes the features, splits the usable candles in time and fits the scaler
    # and the regime labeller on the training period only.
    data = prepare(candles, fractions=DEFAULT_FRACTIONS)
    index = candles.frame.index
    # Positions in the candles: training rows train_start..train_last (the first candles are
    # the features' and regime labeller's warm-up), screening screen_start..screen_stop - 1.
    train_start = index.get_loc(data.times[data.parts["train"]][0])
    train_last = index.get_loc(data.times[data.parts["train"]][-1])
    screen_start = index.get_loc(data.times[data.parts["validation"]][0])
    screen_stop = index.get_loc(data.times[data.parts["validation"]][-1]) + 1
    print(f"candles: {len(candles)} of {candles.timeframe} ({candles.source}, synthetic)")
    print(f"training  {index[train_start]} → {index[train_last]} (after {train_start} warm-up candles)")
    print(f"screening {index[screen_start]} → {index[screen_stop - 1]}\n")

    # -- distil the training period (next-candle returns: this strategy's target) ----------
    distilled = distill_training(data, args.method)
    s = distilled.summary()
    print(f"distilled: {s['method']}, {s['points']} points × {s['features']} features from "
          f"{s['source_candles']} training candles ({s['compression_ratio']:.0f}x smaller)\n")

    # -- fit both ways, run both ways ------------------------------------------------------
    rows, fits = [], {}
    for params in configurations:
        key = strategy.fit_key(params)  # configurations differing only in `band` share a fit
        if key not in fits:
            started = time.perf_counter()
            on_points = strategy.fit_model_on_distilled(distilled, params=params)
            points_seconds = time.perf_counter() - started
            # The same training rows as the points stand for (end is exclusive; +1 because the
            # last row's target is the next candle's return)...
            same_rows = strategy.fit_model(candles, params=params, start=train_start, end=train_last + 2)
            # ...and what a full backtest fits on: every candle before the screening period.
            started = time.perf_counter()
            on_candles = strategy.fit_model(candles, params=params, end=screen_start)
            candles_seconds = time.perf_counter() - started
            fits[key] = (on_points, on_candles)
            describe_fits(params, on_points, same_rows, on_candles, points_seconds, candles_seconds)
        on_points, on_candles = fits[key]

        # Vectorised: features → predictions → position_rule → a numpy replay of the fills.
        screened = strategy.vectorised(candles, on_points, params=params, cash=CASH, commission=COMMISSION,
                                       start=screen_start, end=screen_stop)
        vectorised = strategy.vectorised(candles, on_candles, params=params, cash=CASH, commission=COMMISSION,
                                         start=screen_start, end=screen_stop)
        # Backtrader: the same fitted model passed as the `fitted` param; the training candles
        # are fed first as warm-up (no order fills before trade_start).
        started = time.perf_counter()
        backtrader = run_backtest(
            strategy, candles, params={**params, "fitted": on_candles, "trade_start": index[screen_start]},
            cash=CASH, commission=COMMISSION, start=index[screen_start], end=index[screen_stop - 1],
            warmup_bars=screen_start, record_equity=False, name=str(params))
        bt_seconds = time.perf_counter() - started
        rows.append({
            "configuration": ", ".join(f"{k}={v}" for k, v in params.items()),
            "screen": screened["score"], "real_vectorised": vectorised["final_value"],
            "real_backtrader": backtrader["final_value"], "score": backtrader["score"],
            "trades": backtrader["n_trades"], "bt_seconds": bt_seconds,
        })

    # -- the table -------------------------------------------------------------------------
    print("\nthe screening period (score = log(final value / 10,000)):")
    print("  screen score: the model fitted on the distilled points, run vectorised (what the screen ranks by)")
    print("  vectorised, Backtrader: final values of the model fitted on the real candles, run both ways")
    print("  full score: the Backtrader run's score (what a full backtest says)\n")
    print(f"{'configuration':<36} {'screen score':>12}  {'vectorised':>11} {'Backtrader':>11} "
          f"{'rel. diff':>9} {'full score':>10} {'trades':>6}")
    for r in rows:
        diff = abs(r["real_vectorised"] - r["real_backtrader"]) / r["real_backtrader"]
        r["diff"] = diff
        print(f"{r['configuration']:<36} {r['screen']:>+12.4f}  {r['real_vectorised']:>11,.2f} "
              f"{r['real_backtrader']:>11,.2f} {diff:>9.1e} {r['score']:>+10.4f} {r['trades']:>6.0f}")
    worst = max(r["diff"] for r in rows)
    rho = spearmanr([r["screen"] for r in rows], [r["score"] for r in rows]).statistic
    print(f"\nvectorised vs Backtrader (same model): largest relative difference {worst:.1e} "
          f"({'agree' if worst < 1e-9 else 'DISAGREE'})")
    print(f"screen (distilled fit, vectorised) vs full (real fit, Backtrader): Spearman {rho:.3f} "
          f"over {len(rows)} configurations")
    # Why the fits differ: exact-linear points reproduce the training rows' means and
    # covariances, which is all a least-squares or ridge fit depends on, so "ridge" on the
    # points equals ridge on those rows (to rounding); a full backtest's model also learns from
    # the warm-up candles before them, hence a small gap. A robust loss such as Huber's
    # depends on more than those moments, so its fit on the points can be far off: check a new
    # estimator like this before trusting its screen (--validate does it for every one).
    print(f"one Backtrader run took {np.mean([r['bt_seconds'] for r in rows]):.2f} s on average; "
          "the vectorised runs take milliseconds")
    print("\nnext: python -m distillbt screen examples/strategies_demo --validate")


def distill_training(data, method):
    """The training period as a few weighted points (the screen's default: exact-linear,
    21 points per regime), per regime; on a short history some regimes are too small for
    that, and like the screen we then distil the whole period at once."""
    size = 100 if method != "exact-linear" else None
    regimes = sorted(set(data.regime[data.parts["train"]]))
    d1 = len(data.feature_names) + 1
    try:
        return distill(data, method=method, size=size or d1 * len(regimes), task="regression",
                       per_regime=True, seed=0)
    except InputError as error:
        print(f"(per-regime distillation refused: {first_line(error)}; distilling the "
              "whole training period at once)")
        return distill(data, method=method, size=size or d1, task="regression", per_regime=False, seed=0)


def describe_fits(params, on_points, same_rows, on_candles, points_seconds, candles_seconds):
    """How far the model fitted on the points is from models fitted on real candles."""
    fit_params = {k: v for k, v in params.items() if k != "band"}

    def gap(other):  # relative distance between coefficient vectors
        a, b = np.ravel(on_points.estimator.coef_), np.ravel(other.estimator.coef_)
        return np.linalg.norm(a - b) / np.linalg.norm(b)

    print(f"fit {fit_params}: {on_points.n_train} points in {points_seconds * 1e3:.0f} ms, "
          f"{on_candles.n_train} candles in {candles_seconds * 1e3:.0f} ms; coefficients differ by "
          f"{gap(same_rows):.1e} (relative) from the fit on the same {same_rows.n_train} training rows, "
          f"{gap(on_candles):.1e} from the full backtest's fit")
    for note in on_points.notes:
        print(f"  note: {note}")

if __name__ == "__main__":
    main()
