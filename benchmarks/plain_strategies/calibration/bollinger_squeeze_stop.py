"""After a Bollinger squeeze, a buy stop order at the upper band; exit below the middle band."""

import backtrader as bt


class BollingerSqueezeStop(bt.Strategy):
    params = (("period", 20), ("devfactor", 2.0), ("squeeze", 100), ("valid_bars", 6))
    grid = {"squeeze": [60, 150]}

    def __init__(self):
        self.bb = bt.ind.BollingerBands(self.data.close, period=self.p.period,
                                        devfactor=self.p.devfactor)
        stddev = bt.ind.StdDev(self.data.close, period=self.p.period)
        width = 2.0 * self.p.devfactor * stddev / self.bb.mid
        self.squeezed = width <= bt.ind.Lowest(width, period=self.p.squeeze)
        self.order = None
        self.placed_at = None

    def notify_order(self, order):
        if order.status in [order.Submitted, order.Accepted]:
            return
        self.order = None

    def next(self):
        if self.order:
            # an entry stop that did not trigger in time is withdrawn
            if not self.position and len(self) - self.placed_at >= self.p.valid_bars:
                self.cancel(self.order)
            return

        if not self.position:
            if self.squeezed[0]:
                self.order = self.buy(exectype=bt.Order.Stop, price=self.bb.top[0])
                self.placed_at = len(self)
        elif self.data.close[0] < self.bb.mid[0]:
            self.order = self.close()
