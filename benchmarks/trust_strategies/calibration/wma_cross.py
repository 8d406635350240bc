"""Long-only crossover of two weighted moving averages."""

import backtrader as bt


class WmaCross(bt.Strategy):
    params = (("fast", 10), ("slow", 30))
    grid = {"fast": [5, 10, 20], "slow": [30, 60]}

    def __init__(self):
        fast = bt.ind.WMA(self.data.close, period=self.p.fast)
        slow = bt.ind.WMA(self.data.close, period=self.p.slow)
        self.cross = bt.ind.CrossOver(fast, slow)

    def next(self):
        if not self.position and self.cross[0] > 0:
            self.buy()
        elif self.position and self.cross[0] < 0:
            self.close()
