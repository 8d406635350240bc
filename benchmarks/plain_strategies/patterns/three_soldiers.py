"""Three white soldiers: three up candles in a row, each closing higher; out under the last bar's low or after N bars."""

import backtrader as bt


class ThreeSoldiers(bt.Strategy):
    params = (("hold", 10),)
    grid = {"hold": [5, 20]}

    def __init__(self):
        self.bar_in = None

    def next(self):
        d = self.data
        if not self.position:
            if all(d.close[-i] > d.open[-i] and d.close[-i] > d.close[-i - 1] for i in range(3)):
                self.buy()
                self.bar_in = len(self)
        elif d.close[0] < d.low[-1] or len(self) - self.bar_in >= self.p.hold:
            self.close()
