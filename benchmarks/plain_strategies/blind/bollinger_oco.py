"""Bollinger breakout both ways: an OCO pair of stop orders at the upper and lower bands; exit when price crosses back over the middle band."""

import backtrader as bt


class BollingerOcoBreakout(bt.Strategy):
    params = (("period", 30), ("devfactor", 2.0), ("expiry", 5))
    grid = {"period": [30, 60]}

    def __init__(self):
        self.bb = bt.ind.BollingerBands(self.data.close, period=self.p.period, devfactor=self.p.devfactor)
        self.entries = []
        self.exit_order = None
        self.placed_bar = 0

    def notify_order(self, order):
        if order.status in [order.Submitted, order.Accepted]:
            return
        if order in self.entries:
            self.entries.remove(order)
        if order == self.exit_order:
            self.exit_order = None

    def next(self):
        if self.position:
            if self.exit_order is None:
                if self.position.size > 0 and self.data.close[0] < self.bb.mid[0]:
                    self.exit_order = self.close()
                elif self.position.size < 0 and self.data.close[0] > self.bb.mid[0]:
                    self.exit_order = self.close()
        elif self.entries:
            if len(self) - self.placed_bar >= self.p.expiry:
                self.cancel(self.entries[0])
        elif self.bb.bot[0] < self.data.close[0] < self.bb.top[0]:
            long_entry = self.buy(exectype=bt.Order.Stop, price=self.bb.top[0])
            short_entry = self.sell(exectype=bt.Order.Stop, price=self.bb.bot[0], oco=long_entry)
            self.entries = [long_entry, short_entry]
            self.placed_bar = len(self)
