"""Price crossing a DEMA; a TEMA pair crossing, long and short."""

import backtrader as bt


class DemaPrice(bt.Strategy):
    params = (("period", 20),)
    grid = {"period": [20, 50]}

    def __init__(self):
        self.dema = bt.ind.DEMA(self.data.close, period=self.p.period)

    def next(self):
        if not self.position and self.data.close[0] > self.dema[0]:
            self.buy()
        elif self.position and self.data.close[0] < self.dema[0]:
            self.close()


class TemaPairLS(bt.Strategy):
    params = (("fast", 10), ("slow", 40))
    grid = {"fast": [10, 20], "slow": [40]}

    def __init__(self):
        self.cross = bt.ind.CrossOver(bt.ind.TEMA(self.data.close, period=self.p.fast),
                                      bt.ind.TEMA(self.data.close, period=self.p.slow))

    def go(self, direction):
        """Hold ``direction`` x 95 % of the account (fractional units: crypto prices)."""
        units = direction * 0.95 * self.broker.getvalue() / self.data.close[0]
        self.order_target_size(target=units)

    def next(self):
        if self.cross[0] > 0:
            self.go(1)
        elif self.cross[0] < 0:
            self.go(-1)
