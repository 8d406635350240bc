"""Scale-in on pullbacks in an uptrend, then exit everything at once.

First buy: half the target allocation when RSI dips below ``rsi_entry`` while the close is
above the long SMA. Second buy (once): the other half if price falls ``add_drop`` below the
first fill. Exit the whole position when RSI is overbought or the close breaks the SMA.
"""

import backtrader as bt


class ScaleInPullback(bt.Strategy):
    params = (
        ("sma_period", 200),
        ("rsi_period", 14),
        ("rsi_entry", 35),
        ("rsi_exit", 65),
        ("add_drop", 0.003),
        ("allocation", 0.9),
    )
    grid = {"add_drop": [0.002, 0.006]}

    def __init__(self):
        self.sma = bt.indicators.SMA(self.data.close, period=self.p.sma_period)
        self.rsi = bt.indicators.RSI_Safe(self.data.close, period=self.p.rsi_period)
        self.order = None
        self.entries = 0
        self.first_price = None

    def notify_order(self, order):
        if order.status in [order.Submitted, order.Accepted]:
            return
        if order.status == order.Completed:
            if order.isbuy():
                self.entries += 1
                if self.entries == 1:
                    self.first_price = order.executed.price
            else:
                self.entries = 0
                self.first_price = None
        self.order = None

    def _half(self):
        return 0.5 * self.p.allocation * self.broker.getvalue() / self.data.close[0]

    def next(self):
        if self.order:
            return

        close = self.data.close[0]
        if not self.position:
            if close > self.sma[0] and self.rsi[0] < self.p.rsi_entry:
                self.order = self.buy(size=self._half())
            return

        if self.rsi[0] > self.p.rsi_exit or close < self.sma[0]:
            self.order = self.close()
        elif self.entries == 1 and close < self.first_price * (1 - self.p.add_drop):
            self.order = self.buy(size=self._half())
