"""Donchian channel breakout entered with a stop order.

Every bar while flat, a buy Stop order is placed at the upper channel (the highest high of
the previous ``period`` bars). If it is not filled on the next bar it is cancelled and
re-placed at the new channel level. The position is exited when the close falls below the
lowest low of the last ``exit_period`` bars.
"""

import backtrader as bt


class DonchianStopBreakout(bt.Strategy):
    params = (("period", 55), ("exit_period", 20))
    grid = {"period": [40, 100, 200]}

    def __init__(self):
        self.upper = bt.ind.Highest(self.data.high(-1), period=self.p.period)
        self.lower = bt.ind.Lowest(self.data.low(-1), period=self.p.exit_period)
        self.entry_order = None
        self.exit_order = None

    def notify_order(self, order):
        if order.status in (order.Submitted, order.Accepted):
            return
        # notifications carry a copy of the order: match on the reference number
        if self.entry_order is not None and order.ref == self.entry_order.ref:
            self.entry_order = None
        elif self.exit_order is not None and order.ref == self.exit_order.ref:
            self.exit_order = None

    def next(self):
        # the entry stop only lives for one bar
        if self.entry_order is not None:
            self.cancel(self.entry_order)
            self.entry_order = None

        if not self.position:
            size = 0.95 * self.broker.getvalue() / self.upper[0]
            self.entry_order = self.buy(exectype=bt.Order.Stop, price=self.upper[0], size=size)
        elif self.exit_order is None and self.data.close[0] < self.lower[0]:
            self.exit_order = self.close()
