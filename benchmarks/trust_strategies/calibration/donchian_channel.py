"""Turtle-style: buy a breakout above the entry channel, exit below the (shorter) exit channel."""

import backtrader as bt


class DonchianChannel(bt.Strategy):
    params = (("entry", 20), ("exit", 10))
    grid = {"entry": [20, 55], "exit": [10, 20]}

    def __init__(self):
        self.upper = bt.ind.Highest(self.data.high(-1), period=self.p.entry)
        self.lower = bt.ind.Lowest(self.data.low(-1), period=self.p.exit)

    def next(self):
        if not self.position:
            if self.data.close[0] > self.upper[0]:
                self.buy()
        elif self.data.close[0] < self.lower[0]:
            self.close()
