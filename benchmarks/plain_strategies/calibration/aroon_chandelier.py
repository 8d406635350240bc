"""Aroon up crossing above Aroon down starts a long; a chandelier exit ends it."""

import backtrader as bt


class AroonChandelier(bt.Strategy):
    params = (("aroon", 25), ("chandelier", 22), ("mult", 3.0))
    grid = {"aroon": [25, 60]}

    def __init__(self):
        aroon = bt.ind.AroonUpDown(self.data, period=self.p.aroon)
        self.cross = bt.ind.CrossOver(aroon.aroonup, aroon.aroondown)
        atr = bt.ind.ATR(self.data, period=self.p.chandelier)
        highest = bt.ind.Highest(self.data.high, period=self.p.chandelier)
        self.chandelier = highest - self.p.mult * atr

    def next(self):
        if not self.position:
            if self.cross[0] > 0:
                self.buy()
        elif self.data.close[0] < self.chandelier[0]:
            self.close()
