"""Parabolic SAR stop-and-reverse: always in, flipping with one order of the combined size."""

import backtrader as bt


class PsarReverse(bt.Strategy):
    params = (("af", 0.02), ("afmax", 0.2))
    grid = {"af": [0.005, 0.01]}

    def __init__(self):
        self.psar = bt.ind.ParabolicSAR(self.data, af=self.p.af, afmax=self.p.afmax)

    def next(self):
        close = self.data.close[0]
        units = 0.95 * self.broker.getvalue() / close
        if close > self.psar[0] and self.position.size <= 0:
            self.buy(size=units - self.position.size)
        elif close < self.psar[0] and self.position.size >= 0:
            self.sell(size=units + self.position.size)
