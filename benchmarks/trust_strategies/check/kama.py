"""Kaufman's adaptive moving average: long while the close is above it."""

import backtrader as bt


class KamaTrend(bt.Strategy):
    params = (("period", 30),)
    grid = {"period": [10, 30]}

    def __init__(self):
        self.kama = bt.ind.KAMA(self.data.close, period=self.p.period, fast=2, slow=30)

    def next(self):
        if not self.position and self.data.close[0] > self.kama[0]:
            self.buy()
        elif self.position and self.data.close[0] < self.kama[0]:
            self.close()
