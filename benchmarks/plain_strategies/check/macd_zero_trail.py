"""MACD crossing zero above the SMA: buy; exit k ATRs under the highest high since entry."""

import backtrader as bt


class MacdZeroHighTrail(bt.Strategy):
    params = (("me1", 12), ("me2", 26), ("sma", 100), ("atr_period", 20), ("mult", 3.0))
    grid = {"mult": [2.0, 4.0]}

    def __init__(self):
        macd = bt.ind.MACD(self.data.close, period_me1=self.p.me1, period_me2=self.p.me2)
        self.cross = bt.ind.CrossOver(macd.macd, 0.0)
        self.sma = bt.ind.SMA(self.data.close, period=self.p.sma)
        self.atr = bt.ind.ATR(self.data, period=self.p.atr_period)
        self.highest = None

    def next(self):
        if not self.position:
            if self.cross[0] > 0 and self.data.close[0] > self.sma[0]:
                self.buy()
                self.highest = self.data.high[0]
            return

        self.highest = max(self.highest, self.data.high[0])
        if self.data.close[0] < self.highest - self.p.mult * self.atr[0]:
            self.close()
