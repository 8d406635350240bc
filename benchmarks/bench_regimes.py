"""How well the causal regime labellers recover the sample market's regimes, and how fast.

    python benchmarks/bench_regimes.py [--bars 500000] [--seeds 1 2 3 4 5] [--timing-bars 1000000]
                                       [--repeats 3]

Prints markdown tables (the sample market is synthetic; its figures are labelled so):

1. per seed: each labeller is fitted on the first 60 % of the candles only, labels are
   predicted causally over the whole series and scored on the last 40 % (never seen by fit)
   against ``Candles.true_regimes``: raw name agreement and agreement after the best
   one-to-one renaming, for the default :class:`~distillbt.regimes.TrendVolatilityLabeller`
   (forward-filtered regime HMM) and the rule-based :class:`~distillbt.regimes.RuleLabeller`
   (the earlier default); and two chance levels on the same test period: *majority* (always
   the training period's most common true regime) and *shuffled* (a random labelling with the
   true shares: the sum of squared shares);
2. recall of each true regime (default labeller, pooled over seeds);
3. the wall time of fit (first 60 %) and predict (all bars) on ``--timing-bars`` bars: the
   median of ``--repeats`` runs (the labellers taking turns), and the process CPU time beside
   it (less sensitive to other work on a shared machine).

The defaults of the labellers were chosen on seeds 101–105 (200k bars); seeds 1–5 were not
used to tune.
"""

from __future__ import annotations

import argparse
import statistics
import time

import pandas as pd

from distillbt.data.sample import sample_market
from distillbt.regimes import REGIME_NAMES, RuleLabeller, TrendVolatilityLabeller, regime_agreement

TRAIN = 0.6


def _seed_row(seed: int, bars: int) -> tuple[dict, pd.DataFrame]:
    candles = sample_market(bars=bars, seed=seed)
    n_train = int(TRAIN * len(candles))
    true = candles.true_regimes
    test = slice(n_train, None)
    row = {"seed": seed}
    confusion = None
    for key, cls in (("filter", TrendVolatilityLabeller), ("rule", RuleLabeller)):
        labeller = cls().fit(candles.frame.iloc[:n_train])  # training candles only
        # Predict over the whole series (causal), then score the test part: no warm-up lost.
        predicted = labeller.predict(candles)
        scores = regime_agreement(true.iloc[test], predicted.iloc[test])
        row[key], row[key + "_mapped"] = scores["raw"], scores["mapped"]
        if key == "filter":
            confusion = scores["confusion"]
    majority = true.iloc[:n_train].value_counts().idxmax()
    shares = true.iloc[test].value_counts(normalize=True)
    row["majority"] = float((true.iloc[test] == majority).mean())
    row["shuffled"] = float((shares**2).sum())
    return row, confusion


def _mean_sd(values) -> str:
    values = list(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=500_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--timing-bars", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    print(f"## Regime agreement on the sample market (SYNTHETIC), {args.bars:,} bars of 15m, "
          f"fit on the first {TRAIN:.0%}, scored on the last {1 - TRAIN:.0%}\n")
    print("| seed | filter (default) | after mapping | rule labeller | after mapping "
          "| majority chance | shuffled chance |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    rows, confusion = [], None
    for seed in args.seeds:
        row, conf = _seed_row(seed, args.bars)
        rows.append(row)
        confusion = conf if confusion is None else confusion + conf
        print(f"| {seed} | {row['filter']:.3f} | {row['filter_mapped']:.3f} | {row['rule']:.3f} "
              f"| {row['rule_mapped']:.3f} | {row['majority']:.3f} | {row['shuffled']:.3f} |",
              flush=True)
    keys = ("filter", "filter_mapped", "rule", "rule_mapped", "majority", "shuffled")
    print("| mean ± sd | " + " | ".join(_mean_sd(r[k] for r in rows) for k in keys) + " |")

    print("\n## Recall per true regime, default labeller, all seeds pooled (SYNTHETIC)\n")
    pct = confusion.div(confusion.sum(axis=1), axis=0) * 100
    print("| true \\ predicted | " + " | ".join(REGIME_NAMES) + " | test bars |")
    print("|---|" + "---:|" * (len(REGIME_NAMES) + 1))
    for name in REGIME_NAMES:
        cells = " | ".join(f"**{pct.loc[name, p]:.1f}**" if p == name else f"{pct.loc[name, p]:.1f}"
                           for p in REGIME_NAMES)
        print(f"| {name} | {cells} | {int(confusion.loc[name].sum()):,} |")

    print(f"\n## Time on {args.timing_bars:,} bars (seed 7; fit on the first {TRAIN:.0%}), "
          f"median of {args.repeats} runs\n")
    candles = sample_market(bars=args.timing_bars, seed=7)
    n_train = int(TRAIN * len(candles))
    classes = (TrendVolatilityLabeller, RuleLabeller)
    runs = {cls: {"fit": [], "predict": []} for cls in classes}
    for _ in range(args.repeats):
        for cls in classes:
            labeller = cls()
            runs[cls]["fit"].append(_timed(lambda: labeller.fit(candles.frame.iloc[:n_train])))
            runs[cls]["predict"].append(_timed(lambda: labeller.predict(candles)))
    print("| labeller | fit s (CPU s) | predict s (CPU s) | predict bars/s |")
    print("|---|---:|---:|---:|")
    for cls in classes:
        fit_s, fit_cpu = (statistics.median(x) for x in zip(*runs[cls]["fit"]))
        predict_s, predict_cpu = (statistics.median(x) for x in zip(*runs[cls]["predict"]))
        print(f"| {cls.__name__} | {fit_s:.2f} ({fit_cpu:.2f}) | {predict_s:.2f} ({predict_cpu:.2f}) "
              f"| {args.timing_bars / predict_s:,.0f} |")


def _timed(work) -> tuple[float, float]:
    """Wall and process CPU seconds of ``work()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


if __name__ == "__main__":
    main()
