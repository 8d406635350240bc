"""Buy a close below the lower Bollinger band, sell when price is back at the middle band."""

import backtrader as bt


class BollingerMid(bt.Strategy):
    params = (("period", 20), ("devfactor", 2.0))
    grid = {"period": [20, 50], "devfactor": [2.0, 2.5]}

    def __init__(self):
        self.bb = bt.ind.BollingerBands(self.data.close, period=self.p.period, devfactor=self.p.devfactor)

    def next(self):
        if not self.position:
            if self.data.close[0] < self.bb.bot[0]:
                self.buy()
        elif self.data.close[0] > self.bb.mid[0]:
            self.close()
