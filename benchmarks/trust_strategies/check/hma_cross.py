"""Hull moving averages: long while the fast one is above the slow one."""

import backtrader as bt


class HmaCross(bt.Strategy):
    params = (("fast", 10), ("slow", 50))
    grid = {"fast": [10, 20], "slow": [50, 100]}

    def __init__(self):
        self.cross = bt.ind.CrossOver(bt.ind.HMA(self.data.close, period=self.p.fast),
                                      bt.ind.HMA(self.data.close, period=self.p.slow))

    def next(self):
        if not self.position and self.cross[0] > 0:
            self.buy()
        elif self.position and self.cross[0] < 0:
            self.close()
