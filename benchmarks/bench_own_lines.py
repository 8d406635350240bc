"""A strategy's own lines without the bar loop: numpy against Backtrader's once() and a full run.

    python benchmarks/bench_own_lines.py [--bars 30000] [--repeats 3]

For four strategies (an RSI + SMA + CrossOver rule; one with 28 of the indicators authors
use; one with ParabolicSAR, a recursion computed by the loops of ``own_loops.py``; one with
Aroon at two periods, whose window positions are found in numpy), prints
the best of ``--repeats`` wall times of :func:`own_lines` (graph build included), of
Backtrader's ``once()`` pass over the same graph (build included) and of a full Backtrader run
of the strategy with the screen's conventions, on the sample market.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import backtrader as bt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distillbt.backtest import feed_arrays, run_backtest  # noqa: E402
from distillbt.data.sample import sample_market  # noqa: E402
from distillbt.surrogate.own_lines import backtrader_lines, own_lines, strategy_graph  # noqa: E402


class RsiSmaCross(bt.Strategy):
    def __init__(self):
        self.rsi = bt.indicators.RSI(period=14)
        self.sma = bt.indicators.SMA(period=50)
        self.cross = bt.indicators.CrossOver(self.data.close, self.sma)

    def next(self):
        if not self.position and self.cross > 0 and self.rsi < 70:
            self.buy()
        elif self.position and self.cross < 0:
            self.close()


class TwentyEightIndicators(bt.Strategy):
    def __init__(self):
        ind = bt.indicators
        self.lines_ = [ind.SMA(period=30), ind.EMA(period=10), ind.WMA(period=10), ind.SMMA(period=10),
                       ind.DEMA(period=10), ind.TEMA(period=10), ind.HMA(period=16), ind.RSI(), ind.Stochastic(),
                       ind.StochasticFast(), ind.StochasticFull(), ind.MACD(), ind.MACDHisto(), ind.ATR(),
                       ind.TrueRange(), ind.ADX(), ind.DMI(), ind.BollingerBands(), ind.CCI(), ind.WilliamsR(),
                       ind.ROC(), ind.Momentum(), ind.Highest(self.data.high, period=20),
                       ind.Lowest(self.data.low, period=20), ind.AroonUpDown(), ind.Envelope(), ind.StdDev(),
                       ind.UltimateOscillator()]
        self.sma, self.rsi = self.lines_[0], self.lines_[7]

    def next(self):
        if not self.position and self.rsi < 30:
            self.buy()
        elif self.position and self.data.close > self.sma:
            self.close()


class WithPsar(RsiSmaCross):
    def __init__(self):
        super().__init__()
        self.psar = bt.indicators.PSAR()


class WithAroon(RsiSmaCross):
    def __init__(self):
        super().__init__()
        self.aroon = bt.indicators.AroonUpDown(period=25)
        self.oscillator = bt.indicators.AroonOscillator(period=60)


def _best(function, repeats):
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - began)
    return min(times), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=30_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    candles = sample_market(bars=args.bars, seed=0)
    f = candles.frame
    arrays = feed_arrays(f.index.asi8, f.open, f.high, f.low, f.close, f.volume)
    print(f"sample market, {args.bars:,} candles, best of {args.repeats}")
    print("| strategy | lines | own_lines | how | Backtrader once() | full run | once / own_lines | full / own_lines |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for cls in (RsiSmaCross, TwentyEightIndicators, WithPsar, WithAroon):
        ours, out = _best(lambda: own_lines(cls, {}, arrays), args.repeats)
        once, _ = _best(lambda: backtrader_lines(strategy_graph(cls, {}, arrays)), args.repeats)
        full, _ = _best(lambda: run_backtest(cls, candles), args.repeats)
        print(f"| {cls.__name__} | {len(out.lines)} | {ours * 1e3:.0f} ms | {out.how} | {once * 1e3:.0f} ms | "
              f"{full * 1e3:.0f} ms | {once / ours:.1f}x | {full / ours:.1f}x |")


if __name__ == "__main__":
    main()
