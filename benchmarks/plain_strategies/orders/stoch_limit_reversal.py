"""Long and short on the fast stochastic: limit orders a fraction beyond the close, good for the next bar only; reversal on the opposite extreme."""

import backtrader as bt


class StochLimitReversal(bt.Strategy):
    params = (("period", 14), ("band", 15), ("offset", 0.001))
    grid = {"period": [7, 14, 28]}

    def __init__(self):
        self.k = bt.ind.StochasticFast(self.data, period=self.p.period).percK
        self.order = None

    def notify_order(self, order):
        if order.status in [order.Submitted, order.Accepted]:
            return
        self.order = None

    def next(self):
        if self.order:
            return
        bar = self.data.datetime.datetime(0) - self.data.datetime.datetime(-1)
        valid = self.data.datetime.datetime(0) + bar
        if self.k[0] < self.p.band and self.position.size <= 0:
            if self.position:
                self.close()
            self.order = self.buy(exectype=bt.Order.Limit, price=self.data.close[0] * (1 - self.p.offset), valid=valid)
        elif self.k[0] > 100 - self.p.band and self.position.size >= 0:
            if self.position:
                self.close()
            self.order = self.sell(exectype=bt.Order.Limit, price=self.data.close[0] * (1 + self.p.offset), valid=valid)
