"""An inside bar closing over its mother bar's midpoint: buy at market; out under the mother low or after N bars."""

import backtrader as bt


class InsideBarMarket(bt.Strategy):
    params = (("hold", 8),)
    grid = {"hold": [4, 16]}

    def __init__(self):
        self.mother_low = None
        self.bought = None

    def next(self):
        d = self.data
        if not self.position:
            inside = d.high[0] < d.high[-1] and d.low[0] > d.low[-1]
            if inside and d.close[0] > d.open[0]:
                self.buy()
                self.mother_low = d.low[-1]
                self.bought = len(self)
        elif d.close[0] < self.mother_low or len(self) - self.bought >= self.p.hold:
            self.close()
