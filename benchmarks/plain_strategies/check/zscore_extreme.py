"""Rare: buy a close z standard deviations under its 200-bar mean; sell at the mean or later."""

import backtrader as bt


class ZScoreExtreme(bt.Strategy):
    params = (("period", 200), ("z", 4.0), ("hold", 200))
    grid = {"z": [3.5, 4.5]}

    def __init__(self):
        sma = bt.ind.SMA(self.data.close, period=self.p.period)
        sd = bt.ind.StdDev(self.data.close, period=self.p.period)
        self.zscore = (self.data.close - sma) / sd
        self.bought_at = None

    def next(self):
        if not self.position:
            if self.zscore[0] < -self.p.z:
                self.buy()
                self.bought_at = len(self)
        elif self.zscore[0] > 0 or len(self) - self.bought_at >= self.p.hold:
            self.close()
