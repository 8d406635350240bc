"""Long when a short and a long ROC are both positive, short when both negative, else flat."""

import backtrader as bt


class RocPairLS(bt.Strategy):
    params = (("fast", 10), ("slow", 60))
    grid = {"slow": [60, 120, 200]}

    def __init__(self):
        self.fast = bt.ind.ROC(self.data.close, period=self.p.fast)
        self.slow = bt.ind.ROC(self.data.close, period=self.p.slow)

    def next(self):
        if self.fast[0] > 0 and self.slow[0] > 0:
            wanted = 1
        elif self.fast[0] < 0 and self.slow[0] < 0:
            wanted = -1
        else:
            wanted = 0

        held = (self.position.size > 0) - (self.position.size < 0)
        if wanted != held:
            units = 0.95 * self.broker.getvalue() / self.data.close[0]
            self.order_target_size(target=wanted * units)
