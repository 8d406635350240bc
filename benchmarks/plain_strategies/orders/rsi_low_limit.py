"""RSI(2) dip bought with a limit at the signal bar's low (two bars); stop under the fill bar's low; RSI exit."""

import backtrader as bt


class RsiLowLimit(bt.Strategy):
    params = (("rsi", 2), ("low", 20), ("high", 70), ("cushion", 0.995))
    grid = {"low": [10, 20, 30]}

    def __init__(self):
        self.rsi = bt.ind.RSI(self.data.close, period=self.p.rsi)
        self.entry = None
        self.stop_order = None

    def notify_order(self, order):
        if order.status in [order.Submitted, order.Accepted]:
            return
        if order == self.entry:
            self.entry = None
            if order.status == order.Completed:
                self.stop_order = self.sell(exectype=bt.Order.Stop, price=self.data.low[0] * self.p.cushion)
        elif order == self.stop_order:
            self.stop_order = None

    def next(self):
        if self.entry:
            return
        if not self.position:
            if self.rsi[0] < self.p.low:
                bar = self.data.datetime.datetime(0) - self.data.datetime.datetime(-1)
                self.entry = self.buy(exectype=bt.Order.Limit, price=self.data.low[0],
                                      valid=self.data.datetime.datetime(0) + bar * 2)
        elif self.rsi[0] > self.p.high:
            if self.stop_order:
                self.cancel(self.stop_order)
            self.close()
