"""Always in: long above a rising SMMA, short below a falling one, via order_target_size."""

import backtrader as bt


class SmmaSlopeReversal(bt.Strategy):
    params = (("period", 50), ("slope_bars", 10))
    grid = {"period": [30, 100]}

    def __init__(self):
        self.smma = bt.ind.SMMA(self.data.close, period=self.p.period)
        slope = self.smma - self.smma(-self.p.slope_bars)
        self.up = bt.And(self.data.close > self.smma, slope > 0)
        self.down = bt.And(self.data.close < self.smma, slope < 0)

    def units(self):
        # crypto prices: fractional units, 95 % of the account
        return 0.95 * self.broker.getvalue() / self.data.close[0]

    def next(self):
        if self.up[0] and self.position.size <= 0:
            self.order_target_size(target=self.units())
        elif self.down[0] and self.position.size >= 0:
            self.order_target_size(target=-self.units())
