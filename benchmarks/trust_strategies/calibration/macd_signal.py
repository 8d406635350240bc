"""MACD line crossing its signal line, long only."""

import backtrader as bt


class MacdSignalCross(bt.Strategy):
    params = (("me1", 12), ("me2", 26), ("signal", 9))
    grid = {"me1": [8, 12], "me2": [26, 40]}

    def __init__(self):
        macd = bt.ind.MACD(self.data.close, period_me1=self.p.me1, period_me2=self.p.me2,
                           period_signal=self.p.signal)
        self.cross = bt.ind.CrossOver(macd.macd, macd.signal)

    def next(self):
        if not self.position and self.cross[0] > 0:
            self.buy()
        elif self.position and self.cross[0] < 0:
            self.close()
