"""EMA cross bought with a fixed stake (buy(size=…)); closed on the cross back or 2 % under the entry."""

import backtrader as bt


class StakeCross(bt.Strategy):
    params = (("fast", 10), ("slow", 40), ("stake", 0.05), ("stop", 0.02))
    grid = {"fast": [5, 10], "stake": [0.03, 0.06]}

    def __init__(self):
        self.cross = bt.ind.CrossOver(bt.ind.EMA(period=self.p.fast), bt.ind.EMA(period=self.p.slow))

    def next(self):
        if not self.position:
            if self.cross[0] > 0:
                self.buy(size=self.p.stake)
        elif self.cross[0] < 0 or self.data.close[0] < self.position.price * (1 - self.p.stop):
            self.close()
