"""Short after N up closes in a row under the 200 EMA (a bounce in a downtrend); cover on the first down close."""

import backtrader as bt


class BounceShort(bt.Strategy):
    params = (("ups", 3),)
    grid = {"ups": [2, 4]}

    def __init__(self):
        self.ema = bt.ind.EMA(self.data.close, period=200)

    def next(self):
        c = self.data.close
        if not self.position:
            if c[0] < self.ema[0] and all(c[-k] > c[-k - 1] for k in range(self.p.ups)):
                self.sell()
        elif c[0] < c[-1]:
            self.close()
