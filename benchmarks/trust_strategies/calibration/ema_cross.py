"""Always in the market: long above the slow EMA cross, short below it."""

import backtrader as bt


class EmaLongShort(bt.Strategy):
    params = (("fast", 10), ("slow", 50))
    grid = {"fast": [10, 20], "slow": [50, 100]}

    def __init__(self):
        self.fast = bt.ind.EMA(self.data.close, period=self.p.fast)
        self.slow = bt.ind.EMA(self.data.close, period=self.p.slow)


    def go(self, direction):
        """Hold ``direction`` x 95 % of the account (fractional units: crypto prices)."""
        units = direction * 0.95 * self.broker.getvalue() / self.data.close[0]
        self.order_target_size(target=units)

    def next(self):
        if self.fast[0] > self.slow[0] and self.position.size <= 0:
            self.go(1)
        elif self.fast[0] < self.slow[0] and self.position.size >= 0:
            self.go(-1)
