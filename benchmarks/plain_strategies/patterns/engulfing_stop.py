"""A down bar engulfed by a close over its high, above the 50-bar SMA; stop under the engulfing bar's own low, target a multiple of its range."""

import backtrader as bt


class EngulfingStop(bt.Strategy):
    params = (("target", 2.0),)
    grid = {"target": [1.0, 3.0]}

    def __init__(self):
        self.sma = bt.ind.SMA(self.data.close, period=50)
        self.stop_at = None
        self.take_at = None

    def next(self):
        d = self.data
        if not self.position:
            engulfing = d.close[-1] < d.close[-2] and d.close[0] > d.high[-1]
            if engulfing and d.close[0] > self.sma[0]:
                self.buy()
                self.stop_at = d.low[0]
                self.take_at = d.close[0] + self.p.target * (d.high[0] - d.low[0])
        elif d.close[0] < self.stop_at or d.close[0] > self.take_at:
            self.close()
