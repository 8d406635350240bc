"""Vortex VI+ crossing above VI- arms a buy-stop at the signal bar's high (cancelled after a few bars); exits after a fixed number of bars."""

import backtrader as bt


class VortexStopEntry(bt.Strategy):
    params = (("period", 14), ("expiry_bars", 3), ("hold_bars", 20))
    grid = {"period": [14, 28]}

    def __init__(self):
        self.vortex = bt.ind.Vortex(self.data, period=self.p.period)
        self.cross = bt.ind.CrossOver(self.vortex.vi_plus, self.vortex.vi_minus)
        self.order = None
        self.order_bar = 0
        self.entry_bar = 0

    def notify_order(self, order):
        if order.status in [order.Submitted, order.Accepted]:
            return
        if order.status == order.Completed and order.isbuy():
            self.entry_bar = len(self)
        self.order = None

    def next(self):
        if self.order:
            if not self.position and len(self) - self.order_bar >= self.p.expiry_bars:
                self.cancel(self.order)
            return
        if not self.position:
            if self.cross[0] > 0:
                self.order = self.buy(exectype=bt.Order.Stop, price=self.data.high[0])
                self.order_bar = len(self)
        elif len(self) - self.entry_bar >= self.p.hold_bars:
            self.order = self.close()
