"""CCI hooking back inside its bands: long from below, short from above; out after N bars."""

import backtrader as bt


class CciHookTimeExit(bt.Strategy):
    params = (("period", 20), ("level", 150.0), ("hold", 12))
    grid = {"hold": [6, 16, 36]}

    def __init__(self):
        self.cci = bt.ind.CCI(self.data, period=self.p.period)
        self.order = None
        self.bar_executed = 0

    def notify_order(self, order):
        if order.status in [order.Submitted, order.Accepted]:
            return
        if order.status == order.Completed and self.position:
            self.bar_executed = len(self)
        self.order = None

    def next(self):
        if self.order:
            return

        if not self.position:
            if self.cci[-1] < -self.p.level <= self.cci[0]:
                self.order = self.buy()
            elif self.cci[-1] > self.p.level >= self.cci[0]:
                self.order = self.sell()
        elif len(self) >= self.bar_executed + self.p.hold:
            self.order = self.close()
