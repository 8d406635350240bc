"""Long on a close breaking above an EMA+ATR Keltner band; exit on an ATR trailing stop from the highest close since entry."""

import backtrader as bt


class KeltnerBreakout(bt.Strategy):
    params = (("period", 20), ("mult", 2.0), ("trail_mult", 3.0))
    grid = {"period": [20, 50]}

    def __init__(self):
        self.mid = bt.ind.EMA(self.data.close, period=self.p.period)
        self.atr = bt.ind.ATR(self.data, period=self.p.period)
        self.upper = self.mid + self.p.mult * self.atr
        self.breakout = bt.ind.CrossOver(self.data.close, self.upper)
        self.order = None
        self.highest = None

    def notify_order(self, order):
        if order.status in [order.Completed, order.Canceled, order.Margin, order.Rejected]:
            self.order = None

    def next(self):
        if self.order:
            return
        if not self.position:
            if self.breakout[0] > 0:
                self.order = self.buy()
                self.highest = self.data.close[0]
        else:
            self.highest = max(self.highest, self.data.close[0])
            if self.data.close[0] < self.highest - self.p.trail_mult * self.atr[0]:
                self.order = self.close()
