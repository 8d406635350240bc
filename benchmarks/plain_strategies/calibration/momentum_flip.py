"""Very active: always long or short on the sign of a very short Momentum (close, then reverse)."""

import backtrader as bt


class MomentumFlip(bt.Strategy):
    params = (("period", 3),)
    grid = {"period": [2, 5]}

    def __init__(self):
        self.mom = bt.ind.Momentum(self.data.close, period=self.p.period)

    def next(self):
        if self.mom[0] > 0 and self.position.size <= 0:
            if self.position:
                self.close()
            self.buy()
        elif self.mom[0] < 0 and self.position.size >= 0:
            if self.position:
                self.close()
            self.sell()
