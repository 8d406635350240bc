"""Commodity Channel Index: mean reversion from -level back to zero; a long/short breakout."""

import backtrader as bt


class CciReversion(bt.Strategy):
    params = (("period", 20), ("level", 100.0))
    grid = {"period": [14, 20], "level": [100.0, 150.0]}

    def __init__(self):
        self.cci = bt.ind.CCI(self.data, period=self.p.period)

    def next(self):
        if not self.position:
            if self.cci[0] < -self.p.level:
                self.buy()
        elif self.cci[0] > 0:
            self.close()


class CciBreakout(bt.Strategy):
    params = (("period", 40), ("level", 100.0))
    grid = {"period": [40, 80]}

    def __init__(self):
        self.cci = bt.ind.CCI(self.data, period=self.p.period)

    def go(self, direction):
        """Hold ``direction`` x 95 % of the account (fractional units: crypto prices)."""
        units = direction * 0.95 * self.broker.getvalue() / self.data.close[0]
        self.order_target_size(target=units)

    def next(self):
        if self.cci[0] > self.p.level and self.position.size <= 0:
            self.go(1)
        elif self.cci[0] < -self.p.level and self.position.size >= 0:
            self.go(-1)
