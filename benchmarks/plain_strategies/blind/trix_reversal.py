"""Stop-and-reverse on TRIX crossing its signal line: long on the cross up, short on the cross down."""

import backtrader as bt


class TrixReversal(bt.Strategy):
    params = (("period", 20), ("sigperiod", 9))
    grid = {"period": [20, 40]}

    def __init__(self):
        self.trix = bt.ind.TrixSignal(self.data.close, period=self.p.period, sigperiod=self.p.sigperiod)
        self.cross = bt.ind.CrossOver(self.trix.trix, self.trix.signal)

    def next(self):
        if self.cross[0] > 0:
            if self.position.size < 0:
                self.close()
            if self.position.size <= 0:
                self.buy()
        elif self.cross[0] < 0:
            if self.position.size > 0:
                self.close()
            if self.position.size >= 0:
                self.sell()
