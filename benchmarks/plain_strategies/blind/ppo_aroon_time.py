"""Long when the PPO histogram turns positive while Aroon Up leads Aroon Down; fixed N-bar time exit."""

import backtrader as bt


class PpoAroonTimeExit(bt.Strategy):
    params = (("fast", 12), ("slow", 26), ("aroon", 25), ("hold", 15))
    grid = {"hold": [15, 40]}

    def __init__(self):
        self.ppo = bt.ind.PPO(self.data.close, period1=self.p.fast, period2=self.p.slow)
        self.aroon = bt.ind.AroonUpDown(self.data, period=self.p.aroon)
        self.signal = bt.And(bt.ind.CrossUp(self.ppo.histo, 0.0), self.aroon.aroonup > self.aroon.aroondown)
        self.order = None
        self.bar_executed = 0

    def notify_order(self, order):
        if order.status in [order.Submitted, order.Accepted]:
            return
        if order.status == order.Completed and order.isbuy():
            self.bar_executed = len(self)
        self.order = None

    def next(self):
        if self.order:
            return
        if not self.position:
            if self.signal[0]:
                self.order = self.buy()
        elif len(self) >= self.bar_executed + self.p.hold:
            self.order = self.close()
