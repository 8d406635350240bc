"""Close over the close N bars back (written as close[-10]) and over the 20-bar SMA: long; out when either fails."""

import backtrader as bt


class CloseMomentum(bt.Strategy):
    params = (("sma", 20),)
    grid = {"sma": [20, 60]}

    def __init__(self):
        self.sma = bt.ind.SMA(self.data.close, period=self.p.sma)

    def next(self):
        c = self.data.close
        up = c[0] > c[-10] and c[0] > self.sma[0]
        if not self.position and up:
            self.buy()
        elif self.position and not up:
            self.close()
