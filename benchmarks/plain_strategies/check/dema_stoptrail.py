"""Close crossing above a DEMA: buy, protected by a percentage StopTrail order as the only exit."""

import backtrader as bt


class DemaStopTrail(bt.Strategy):
    params = (("period", 40), ("trail", 0.02))
    grid = {"period": [20, 80], "trail": [0.01, 0.03]}

    def __init__(self):
        dema = bt.ind.DEMA(self.data.close, period=self.p.period)
        self.cross = bt.ind.CrossOver(self.data.close, dema)
        self.order = None
        self.stop_order = None

    def notify_order(self, order):
        if order.status == order.Completed and order.isbuy():
            self.stop_order = self.sell(exectype=bt.Order.StopTrail, trailpercent=self.p.trail)
        if not order.alive():
            if order == self.order:
                self.order = None
            elif order == self.stop_order:
                self.stop_order = None

    def next(self):
        if self.order or self.stop_order:
            return
        if not self.position and self.cross[0] > 0:
            self.order = self.buy()
