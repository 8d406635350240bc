"""Always in: long or short a fixed number of coins on the side of the close against an SMA (order_target_size)."""

import backtrader as bt


class TargetSizeFlip(bt.Strategy):
    params = (("period", 50), ("units", 0.04))
    grid = {"period": [20, 50, 100]}

    def __init__(self):
        self.sma = bt.ind.SMA(self.data.close, period=self.p.period)

    def next(self):
        if self.data.close[0] > self.sma[0] and self.position.size <= 0:
            self.order_target_size(target=self.p.units)
        elif self.data.close[0] < self.sma[0] and self.position.size >= 0:
            self.order_target_size(target=-self.p.units)
