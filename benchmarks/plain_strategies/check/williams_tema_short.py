"""Short only: Williams %R leaving overbought under a falling TEMA; stop and target from fill."""

import backtrader as bt


class WilliamsTemaShort(bt.Strategy):
    params = (("period", 14), ("tema", 60), ("overbought", -20.0),
              ("stop", 0.015), ("target", 0.02))
    grid = {"target": [0.01, 0.03]}

    def __init__(self):
        self.wr = bt.ind.WilliamsR(self.data, period=self.p.period)
        tema = bt.ind.TEMA(self.data.close, period=self.p.tema)
        self.falling = tema < tema(-1)
        self.order = None
        self.entry_price = None

    def notify_order(self, order):
        if order.status == order.Completed and order.issell():
            self.entry_price = order.executed.price
        if not order.alive():
            self.order = None

    def next(self):
        if self.order:
            return

        if not self.position:
            if self.falling[0] and self.wr[-1] > self.p.overbought >= self.wr[0]:
                self.order = self.sell()
            return

        close = self.data.close[0]
        if close >= self.entry_price * (1.0 + self.p.stop):
            self.order = self.close()
        elif close <= self.entry_price * (1.0 - self.p.target):
            self.order = self.close()
