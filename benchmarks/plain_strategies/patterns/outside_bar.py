"""Outside bar closing up: long; out under the outside bar's own low (stored when it buys) or after N bars."""

import backtrader as bt


class OutsideBarUp(bt.Strategy):
    params = (("hold", 8),)
    grid = {"hold": [4, 16]}

    def __init__(self):
        self.floor = None
        self.entered = None

    def next(self):
        d = self.data
        if not self.position:
            if d.high[0] > d.high[-1] and d.low[0] < d.low[-1] and d.close[0] > d.close[-1]:
                self.buy()
                self.floor = d.low[0]
                self.entered = len(self)
        elif d.close[0] < self.floor or len(self) - self.entered >= self.p.hold:
            self.close()
