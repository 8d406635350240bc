"""Trend pullback: a buy stop one tick over the signal bar's high, for one bar; SMA exit."""

import backtrader as bt


class PullbackHighStop(bt.Strategy):
    params = (("fast", 10), ("slow", 50))
    grid = {"fast": [5, 10], "slow": [50, 100]}

    def __init__(self):
        self.fast = bt.ind.EMA(self.data.close, period=self.p.fast)
        self.slow = bt.ind.SMA(self.data.close, period=self.p.slow)
        self.entry = None

    def notify_order(self, order):
        if order.status in [order.Submitted, order.Accepted]:
            return
        if order == self.entry:
            self.entry = None

    def next(self):
        if self.entry:
            return
        if not self.position:
            if self.fast[0] > self.slow[0] and self.data.close[0] < self.fast[0]:
                bar = self.data.datetime.datetime(0) - self.data.datetime.datetime(-1)
                self.entry = self.buy(exectype=bt.Order.Stop, price=self.data.high[0],
                                      valid=self.data.datetime.datetime(0) + bar)
        elif self.data.close[0] < self.slow[0]:
            self.close()
