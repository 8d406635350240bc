"""%K crossing up out of oversold: a limit buy under the close, cancelled after N bars; exit when %K overbought."""

import backtrader as bt


class StochLimitCancel(bt.Strategy):
    params = (("period", 14), ("low", 20), ("high", 80), ("offset", 0.002), ("wait", 5))
    grid = {"period": [9, 14, 21]}

    def __init__(self):
        self.stoch = bt.ind.Stochastic(self.data, period=self.p.period)
        self.order = None
        self.sent_at = None

    def notify_order(self, order):
        if order.status in [order.Submitted, order.Accepted]:
            return
        self.order = None

    def next(self):
        if self.order:
            if not self.position and len(self) - self.sent_at >= self.p.wait:
                self.cancel(self.order)
            return
        if not self.position:
            if self.stoch.percK[-1] < self.p.low <= self.stoch.percK[0]:
                self.order = self.buy(exectype=bt.Order.Limit, price=self.data.close[0] * (1 - self.p.offset))
                self.sent_at = len(self)
        elif self.stoch.percK[0] > self.p.high:
            self.order = self.close()
