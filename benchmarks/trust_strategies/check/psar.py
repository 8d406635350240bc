"""Parabolic SAR: long above it, flat below."""

import backtrader as bt


class PsarTrend(bt.Strategy):
    params = (("af", 0.02), ("afmax", 0.2))
    grid = {"af": [0.01, 0.02]}

    def __init__(self):
        self.sar = bt.ind.ParabolicSAR(self.data, af=self.p.af, afmax=self.p.afmax)

    def next(self):
        if not self.position and self.data.close[0] > self.sar[0]:
            self.buy()
        elif self.position and self.data.close[0] < self.sar[0]:
            self.close()
