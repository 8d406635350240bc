"""Inside-bar breakout in an uptrend, entered with a stop-limit order; exit under the mother bar."""

import backtrader as bt


class InsideBarStopLimit(bt.Strategy):
    params = (("trend", 100), ("limit_pct", 0.002), ("valid_bars", 3), ("hold", 16))
    grid = {"hold": [8, 32]}

    def __init__(self):
        self.sma = bt.ind.SMA(self.data.close, period=self.p.trend)
        self.inside = bt.And(self.data.high < self.data.high(-1), self.data.low > self.data.low(-1))
        self.order = None
        self.placed_at = None
        self.entry_bar = None
        self.mother_low = None

    def notify_order(self, order):
        if order.status in [order.Submitted, order.Accepted]:
            return
        if order.status == order.Completed and order.isbuy():
            self.entry_bar = len(self)
        self.order = None

    def next(self):
        if self.order:
            if not self.position and len(self) - self.placed_at >= self.p.valid_bars:
                self.cancel(self.order)
            return

        if not self.position:
            if self.inside[0] and self.data.close[0] > self.sma[0]:
                mother_high = self.data.high[-1]
                self.mother_low = self.data.low[-1]
                self.order = self.buy(exectype=bt.Order.StopLimit, price=mother_high,
                                      plimit=mother_high * (1.0 + self.p.limit_pct))
                self.placed_at = len(self)
        elif self.data.close[0] < self.mother_low or len(self) - self.entry_bar >= self.p.hold:
            self.order = self.close()
