"""Break of the last bar's high with RSI over 50: long; trail a stop at the lowest low of the last 3 bars."""

import backtrader as bt


class PrevHighTrail(bt.Strategy):
    params = (("rsi", 14),)
    grid = {"rsi": [7, 14]}

    def __init__(self):
        self.rsi = bt.ind.RSI(self.data.close, period=self.p.rsi)

    def next(self):
        d = self.data
        if not self.position:
            if d.close[0] > d.high[-1] and self.rsi[0] > 50:
                self.buy()
        elif d.close[0] < min(d.low[-1], d.low[-2], d.low[-3]):
            self.close()
