"""Trend filter with a band: long above SMA + band, flat below SMA - band, hold in between."""

import backtrader as bt


class SmaBand(bt.Strategy):
    params = (("period", 50), ("band", 0.01))
    grid = {"period": [50, 100], "band": [0.005, 0.02]}

    def __init__(self):
        self.sma = bt.ind.SMA(self.data.close, period=self.p.period)

    def next(self):
        close = self.data.close[0]
        if not self.position and close > self.sma[0] * (1 + self.p.band):
            self.buy()
        elif self.position and close < self.sma[0] * (1 - self.p.band):
            self.close()
