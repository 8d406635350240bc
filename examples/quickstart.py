"""Quick start: candles → distilled points → screen → report, through the Python API.

    python examples/quickstart.py [OUT_DIR] [--bars 10000] [--strategies ridge_momentum.py,sma_cross.py]

The same calls ``python -m distillbt screen strategies/ --validate --top 5 --report OUT_DIR``
makes, one step at a time. It screens a few files copied from strategies/ on the embedded
sample market (synthetic, no network) and writes the report to OUT_DIR (default
./quickstart-report): open OUT_DIR/index.html in a browser. About a minute.

For your own data, replace the first step with ``distillbt.load_candles("candles.csv")`` or
``distillbt.load_candles("bybit:BTC/USDT:USDT:15m")`` (after ``python -m distillbt fetch``).
"""

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import distillbt
from distillbt.distill.prepare import prepare
from distillbt.distill.runner import distill
from distillbt.errors import InputError
from distillbt.report import write_report
from distillbt.screen import DEFAULT_FRACTIONS, screen

STRATEGIES = Path(__file__).resolve().parents[1] / "strategies"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="quickstart-report", help="report folder (default ./quickstart-report)")
    parser.add_argument("--bars", type=int, default=10_000, help="sample-market candles (default 10000)")
    parser.add_argument("--strategies", default="ridge_momentum.py,sma_cross.py",
                        help="comma-separated files of strategies/ to screen (default: "
                             "ridge_momentum.py,sma_cross.py — one model strategy, one plain)")
    parser.add_argument("--jobs", type=int, default=1, help="processes for the backtests (default 1)")
    args = parser.parse_args()

    # 1. Candles. "sample" is the embedded synthetic market; any other source name works the
    #    same way (a CSV/Parquet/Feather path, or bybit:SYMBOL:TIMEFRAME from the cache).
    candles = distillbt.load_candles("sample", sample_bars=args.bars, seed=7)
    print(f"data: {candles.source}, {len(candles)} candles of {candles.timeframe} "
          f"({candles.start} → {candles.end}){' [SYNTHETIC]' if candles.synthetic else ''}")

    # 2. A folder of strategy files: every bt.Strategy subclass in its .py files is screened,
    #    each `grid` expanded into configurations. Here, a few files copied from strategies/.
    with tempfile.TemporaryDirectory(prefix="distillbt-quickstart-") as folder:
        for name in args.strategies.split(","):
            shutil.copy(STRATEGIES / name.strip(), folder)

        # 3. Distil the training period (the first 50 % of the candles, as the screen splits
        #    them): model strategies are fitted on these few weighted points instead of on
        #    the real candles. One set per task (return-predicting and direction-predicting
        #    models). screen() would do this itself if given no `distilled`.
        data = prepare(candles, fractions=DEFAULT_FRACTIONS)
        sets = {task: distill_training(data, task) for task in ("regression", "classification")}
        for task, dset in sets.items():
            s = dset.summary()
            print(f"distilled ({task}): {s['method']}, {s['points']} points from {s['source_candles']} "
                  f"training candles, {s['compression_ratio']:.0f}x smaller")

        # 4. The screen: every model configuration is fitted on the points and run vectorised
        #    over the screening period (the next 30 %); plain strategies are screened by a
        #    learned surrogate of each configuration (a full backtest where it cannot be
        #    trusted). The top 5 survive and are backtested in full on the screening period and
        #    on the holdout period (the last 20 %, which nothing was chosen on). validate=True
        #    also backtests every configuration in full, to measure how far the screen's
        #    ranking can be trusted and how much time it saved (slower; leave it off in daily
        #    use, or pass validate_sample=N to check N configurations drawn at random).
        result = screen(folder, candles, distilled=sets, top=5, validate=True, n_jobs=args.jobs,
                        progress=False)

    # 5. What came out: the ranked table and the trust figures.
    print()
    print(result.table())
    for record in result.records:
        if record.error:
            print(f"failed {record.name}: {record.error}")
    # The timings, fidelity and speed-up lines the CLI prints, from the same summary fields.
    print()
    print("\n".join(result.summary_lines()))
    print("survivors (holdout = the period nothing was selected on):")
    for r in (r for r in result.records if r.survivor):
        holdout = r.holdout_stats or {}
        print(f"  {r.name:<55} holdout score {fmt(r.holdout_score)}, "
              f"Sharpe {fmt(holdout.get('sharpe'), '{:.2f}')}, "
              f"Deflated Sharpe {fmt(r.deflated_sharpe, '{:.2f}')}")

    # 6. Save the results (what `screen --out` writes: `python -m distillbt report FILE --out DIR`
    #    redraws a report from it) and write the report: index.html + summary.md + PNG plots.
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "screen.json").write_text(json.dumps(result.to_dict(), indent=1, default=plain))
    report = write_report(result, out)
    print(f"\nreport: {report.resolve()}")


def distill_training(data, task):
    """Exact-linear points (the screen's default: d + 1 = 21 per regime reproduce the training
    period's means and covariances). On a short history a small regime can refuse (its soft
    labels leave [0, 1]); the screen then distils the whole period at once, and so do we."""
    d1 = len(data.feature_names) + 1
    regimes = len(set(data.regime[data.parts["train"]]))
    try:
        return distill(data, method="exact-linear", size=d1 * regimes, task=task, per_regime=True)
    except InputError:
        return distill(data, method="exact-linear", size=d1, task=task, per_regime=False)


def fmt(value, spec="{:+.4f}"):
    """A number, or "-" when there is none (e.g. the Sharpe ratio of a run that never traded)."""
    return "-" if value is None or value != value else spec.format(value)


def plain(value):
    """JSON for numpy numbers and timestamps."""
    return value.item() if hasattr(value, "item") else str(value)


if __name__ == "__main__":
    main()
