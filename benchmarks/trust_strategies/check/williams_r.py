"""Williams %R: buy deep oversold, sell overbought."""

import backtrader as bt


class WilliamsRevert(bt.Strategy):
    params = (("period", 14), ("low_level", -80.0), ("high_level", -20.0))
    grid = {"period": [14, 28], "low_level": [-80.0, -90.0]}

    def __init__(self):
        self.wr = bt.ind.WilliamsR(self.data, period=self.p.period)

    def next(self):
        if not self.position:
            if self.wr[0] < self.p.low_level:
                self.buy()
        elif self.wr[0] > self.p.high_level:
            self.close()
