"""Awesome Oscillator crossing above zero in an EMA uptrend enters long with a bracket: fixed % stop-loss and % take-profit."""

import backtrader as bt


class AwesomeBracket(bt.Strategy):
    params = (("trend", 100), ("stop_pct", 0.01), ("take_pct", 0.02))
    grid = {"stop_pct": [0.01, 0.02]}

    def __init__(self):
        self.ao = bt.ind.AwesomeOscillator(self.data)
        self.ema = bt.ind.EMA(self.data.close, period=self.p.trend)
        self.signal = bt.And(bt.ind.CrossUp(self.ao, 0.0), self.data.close > self.ema)
        self.orefs = []

    def notify_order(self, order):
        if not order.alive() and order.ref in self.orefs:
            self.orefs.remove(order.ref)

    def next(self):
        if self.orefs or self.position:
            return
        if self.signal[0]:
            close = self.data.close[0]
            orders = self.buy_bracket(
                exectype=bt.Order.Market,
                stopprice=close * (1.0 - self.p.stop_pct),
                limitprice=close * (1.0 + self.p.take_pct),
            )
            self.orefs = [o.ref for o in orders]
