"""Buy below the lower SMA envelope, sell back at the average."""

import backtrader as bt


class EnvelopeRevert(bt.Strategy):
    params = (("period", 20), ("perc", 2.5))
    grid = {"period": [20, 50], "perc": [1.5, 3.0]}

    def __init__(self):
        self.env = bt.ind.SMAEnvelope(self.data.close, period=self.p.period, perc=self.p.perc)

    def next(self):
        if not self.position:
            if self.data.close[0] < self.env.bot[0]:
                self.buy()
        elif self.data.close[0] > self.env.sma[0]:
            self.close()
