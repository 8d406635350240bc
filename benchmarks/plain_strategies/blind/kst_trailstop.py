"""Long when KST crosses above its signal line, protected by a percent trailing stop order; also exits on the opposite KST cross."""

import backtrader as bt


class KstTrailStop(bt.Strategy):
    params = (("rsignal", 9), ("trail", 0.01))
    grid = {"trail": [0.01, 0.02]}

    def __init__(self):
        self.kst = bt.ind.KnowSureThing(self.data.close, rsignal=self.p.rsignal)
        self.cross = bt.ind.CrossOver(self.kst.kst, self.kst.signal)
        self.order = None
        self.stop_order = None

    def notify_order(self, order):
        if order.status in [order.Submitted, order.Accepted]:
            return
        if order == self.order:
            self.order = None
        elif order == self.stop_order:
            self.stop_order = None

    def next(self):
        if self.order:
            return
        if not self.position:
            if self.cross[0] > 0:
                self.order = self.buy()
        elif self.stop_order is None:
            self.stop_order = self.sell(size=self.position.size, exectype=bt.Order.StopTrail,
                                        trailpercent=self.p.trail)
        elif self.cross[0] < 0:
            self.cancel(self.stop_order)
            self.order = self.close()
