"""EMA cross long entries with a stop under the bar before's low, sent when the entry fills; cross exit."""

import backtrader as bt


class EmaPriorLowStop(bt.Strategy):
    params = (("fast", 10), ("slow", 30))
    grid = {"fast": [5, 10]}

    def __init__(self):
        self.cross = bt.ind.CrossOver(bt.ind.EMA(period=self.p.fast), bt.ind.EMA(period=self.p.slow))
        self.stop_order = None

    def notify_order(self, order):
        if order.status != order.Completed:
            if order == self.stop_order and not order.alive():
                self.stop_order = None
            return
        if order == self.stop_order:
            self.stop_order = None
        elif order.isbuy():
            self.stop_order = self.sell(exectype=bt.Order.Stop, price=self.data.low[-1])

    def next(self):
        if not self.position and self.cross[0] > 0:
            self.buy()
        elif self.position and self.cross[0] < 0:
            if self.stop_order:
                self.cancel(self.stop_order)
            self.close()
