"""Slow stochastic cross (%K over %D) below a level: limit entry at the bar's low, valid 3 bars; stop-loss and %D exit."""

import backtrader as bt


class StochLowLimit(bt.Strategy):
    params = (("period", 14), ("level", 30), ("exit_level", 70), ("stop", 0.02))
    grid = {"period": [9, 14], "level": [25, 35]}

    def __init__(self):
        self.stoch = bt.ind.StochasticSlow(self.data, period=self.p.period)
        self.cross = bt.ind.CrossOver(self.stoch.percK, self.stoch.percD)
        self.entry = None
        self.stop_order = None

    def notify_order(self, order):
        if order.status in [order.Submitted, order.Accepted]:
            return
        if order == self.entry:
            self.entry = None
            if order.status == order.Completed:
                self.stop_order = self.sell(exectype=bt.Order.Stop, price=order.executed.price * (1 - self.p.stop))
        elif order == self.stop_order:
            self.stop_order = None

    def next(self):
        if self.entry:
            return
        if not self.position:
            if self.cross[0] > 0 and self.stoch.percD[0] < self.p.level:
                bar = self.data.datetime.datetime(0) - self.data.datetime.datetime(-1)
                self.entry = self.buy(exectype=bt.Order.Limit, price=self.data.low[0],
                                      valid=self.data.datetime.datetime(0) + bar * 3)
        elif self.stoch.percD[0] > self.p.exit_level:
            if self.stop_order:
                self.cancel(self.stop_order)
            self.close()
