"""Short-only Aroon strategy with a momentum confirmation.

Opens a short when Aroon Down crosses above Aroon Up and momentum is negative; covers when
Aroon Up crosses back above Aroon Down.
"""

import backtrader as bt


class AroonMomentumShort(bt.Strategy):
    params = (("period", 25), ("mom_period", 12))
    grid = {"period": [25, 50, 100]}

    def __init__(self):
        aroon = bt.ind.AroonUpDown(self.data, period=self.p.period)
        self.down_cross = bt.ind.CrossOver(aroon.aroondown, aroon.aroonup)
        self.mom = bt.ind.Momentum(self.data.close, period=self.p.mom_period)
        self.order = None

    def notify_order(self, order):
        if order.status in [order.Completed, order.Canceled, order.Margin, order.Rejected]:
            self.order = None

    def next(self):
        if self.order is not None:
            return
        if self.position.size == 0:
            if self.down_cross[0] > 0 and self.mom[0] < 0:
                self.order = self.sell()
        elif self.position.size < 0 and self.down_cross[0] < 0:
            self.order = self.buy(size=abs(self.position.size))
