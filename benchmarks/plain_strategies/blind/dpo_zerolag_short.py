"""Short-only: sell when the Detrended Price Oscillator crosses below zero under a zero-lag EMA; cover after N bars or on a % stop above entry."""

import backtrader as bt


class DpoZeroLagShort(bt.Strategy):
    params = (("period", 20), ("hold", 30), ("stop_pct", 0.02))
    grid = {"period": [20, 40]}

    def __init__(self):
        self.dpo = bt.ind.DPO(self.data.close, period=self.p.period)
        self.zlag = bt.ind.ZeroLagIndicator(self.data.close, period=self.p.period)
        self.cross_down = bt.ind.CrossDown(self.dpo, 0.0)
        self.order = None
        self.entry_bar = None

    def notify_order(self, order):
        if order.status in [order.Submitted, order.Accepted]:
            return
        if order.status == order.Completed and order.issell():
            self.entry_bar = len(self)
        self.order = None

    def next(self):
        if self.order:
            return
        if not self.position:
            if self.cross_down[0] and self.data.close[0] < self.zlag[0]:
                self.order = self.sell()
        else:
            stop_hit = self.data.close[0] > self.position.price * (1 + self.p.stop_pct)
            if stop_hit or len(self) - self.entry_bar >= self.p.hold:
                self.order = self.close()
