"""Momentum: long while the rate of change over ``period`` bars is positive, else flat."""

import backtrader as bt


class RocSign(bt.Strategy):
    params = (("period", 30),)
    grid = {"period": [10, 30, 90]}

    def __init__(self):
        self.roc = bt.ind.ROC(self.data.close, period=self.p.period)

    def next(self):
        if self.roc[0] > 0 and not self.position:
            self.buy()
        elif self.roc[0] <= 0 and self.position:
            self.close()
