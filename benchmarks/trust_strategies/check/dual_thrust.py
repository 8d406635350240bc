"""Dual thrust: a range from the last N bars' highs, lows and closes; long above
open + k * range, short below open - k * range."""

import backtrader as bt


class DualThrust(bt.Strategy):
    params = (("lookback", 10), ("k", 0.5))
    grid = {"lookback": [10, 20], "k": [0.5, 1.0]}

    def __init__(self):
        hh = bt.ind.Highest(self.data.high(-1), period=self.p.lookback)
        hc = bt.ind.Highest(self.data.close(-1), period=self.p.lookback)
        lc = bt.ind.Lowest(self.data.close(-1), period=self.p.lookback)
        ll = bt.ind.Lowest(self.data.low(-1), period=self.p.lookback)
        self.range = bt.Max(hh - lc, hc - ll)

    def go(self, direction):
        """Hold ``direction`` x 95 % of the account (fractional units: crypto prices)."""
        units = direction * 0.95 * self.broker.getvalue() / self.data.close[0]
        self.order_target_size(target=units)

    def next(self):
        upper = self.data.open[0] + self.p.k * self.range[0]
        lower = self.data.open[0] - self.p.k * self.range[0]
        if self.data.close[0] > upper and self.position.size <= 0:
            self.go(1)
        elif self.data.close[0] < lower and self.position.size >= 0:
            self.go(-1)
