"""A plain Backtrader strategy: long when the fast moving average is above the slow one.

Drop files like this one into ``strategies/``. Every ``bt.Strategy`` subclass defined here is
discovered by ``distillbt screen``; ``grid`` (a dict of lists) expands into configurations.
"""

import backtrader as bt


class SmaCross(bt.Strategy):
    params = (("fast", 10), ("slow", 50))
    grid = {"fast": [5, 10, 20], "slow": [50, 100, 200]}

    def __init__(self):
        fast = bt.indicators.SMA(self.data.close, period=self.p.fast)
        slow = bt.indicators.SMA(self.data.close, period=self.p.slow)
        self.crossover = bt.indicators.CrossOver(fast, slow)

    def next(self):
        if not self.position and self.crossover > 0:
            self.buy()
        elif self.position and self.crossover < 0:
            self.close()
