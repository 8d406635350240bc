"""Uptrend dip bought with an expiring limit order; limit take-profit, stop-loss or N-bar exit."""

import backtrader as bt


class HmaDipLimit(bt.Strategy):
    params = (("hma", 30), ("sma", 100), ("dip", 0.004), ("valid_bars", 3),
              ("take", 0.01), ("stop", 0.015), ("hold", 48))
    grid = {"dip": [0.003, 0.006, 0.01]}

    def __init__(self):
        hma = bt.ind.HMA(self.data.close, period=self.p.hma)
        sma = bt.ind.SMA(self.data.close, period=self.p.sma)
        self.uptrend = bt.And(hma > hma(-1), self.data.close > sma)
        self.entry = None
        self.target = None
        self.exit = None
        self.entry_price = None
        self.entry_bar = None

    def notify_order(self, order):
        if order.status in [order.Submitted, order.Accepted]:
            return
        if order == self.entry:
            self.entry = None
            if order.status == order.Completed:
                self.entry_price = order.executed.price
                self.entry_bar = len(self)
                self.target = self.sell(exectype=bt.Order.Limit,
                                        price=self.entry_price * (1.0 + self.p.take))
        elif order == self.target:
            self.target = None
        elif order == self.exit:
            self.exit = None

    def next(self):
        if self.entry or self.exit:
            return

        if not self.position:
            if self.uptrend[0]:
                now = self.data.datetime.datetime(0)
                bar = now - self.data.datetime.datetime(-1)
                self.entry = self.buy(exectype=bt.Order.Limit,
                                      price=self.data.close[0] * (1.0 - self.p.dip),
                                      valid=now + bar * self.p.valid_bars)
            return

        stopped = self.data.close[0] < self.entry_price * (1.0 - self.p.stop)
        timed_out = len(self) - self.entry_bar >= self.p.hold
        if stopped or timed_out:
            if self.target:
                self.cancel(self.target)
            self.exit = self.close()
