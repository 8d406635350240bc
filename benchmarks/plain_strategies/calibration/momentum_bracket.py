"""Momentum turning up above a rising EMA: enter with a bracket order (stop-loss, take-profit)."""

import backtrader as bt


class MomentumBracket(bt.Strategy):
    params = (("mom_period", 12), ("ema_period", 50), ("stop", 0.01), ("take", 0.02))
    grid = {"take": [0.015, 0.03]}

    def __init__(self):
        mom = bt.ind.Momentum(self.data.close, period=self.p.mom_period)
        ema = bt.ind.EMA(self.data.close, period=self.p.ema_period)
        turned_up = bt.And(mom > 0.0, mom(-1) <= 0.0)
        self.signal = bt.And(turned_up, self.data.close > ema, ema > ema(-5))
        self.orefs = []

    def notify_order(self, order):
        if not order.alive() and order.ref in self.orefs:
            self.orefs.remove(order.ref)

    def next(self):
        if self.orefs:
            return  # the bracket is still working

        if not self.position and self.signal[0]:
            close = self.data.close[0]
            orders = self.buy_bracket(exectype=bt.Order.Market, price=close,
                                      stopprice=close * (1.0 - self.p.stop),
                                      limitprice=close * (1.0 + self.p.take))
            self.orefs = [o.ref for o in orders]
