"""TRIX crossing its signal line, long only."""

import backtrader as bt


class TrixSignal(bt.Strategy):
    params = (("period", 15), ("sigperiod", 9))
    grid = {"period": [15, 30]}

    def __init__(self):
        trix = bt.ind.TrixSignal(self.data.close, period=self.p.period, sigperiod=self.p.sigperiod)
        self.cross = bt.ind.CrossOver(trix.trix, trix.signal)

    def next(self):
        if not self.position and self.cross[0] > 0:
            self.buy()
        elif self.position and self.cross[0] < 0:
            self.close()
