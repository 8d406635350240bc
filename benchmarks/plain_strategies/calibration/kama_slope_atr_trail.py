"""Rising KAMA under the close: buy; ATR trailing stop from the highest close, or KAMA turns."""

import backtrader as bt


class KamaSlopeAtrTrail(bt.Strategy):
    params = (("period", 20), ("slope_bars", 5), ("atr_period", 14), ("mult", 3.0))
    grid = {"period": [10, 30]}

    def __init__(self):
        self.kama = bt.ind.KAMA(self.data.close, period=self.p.period, fast=2, slow=30)
        self.slope = self.kama - self.kama(-self.p.slope_bars)
        self.atr = bt.ind.ATR(self.data, period=self.p.atr_period)
        self.highest_close = None

    def next(self):
        close = self.data.close[0]
        if not self.position:
            if self.slope[0] > 0 and close > self.kama[0]:
                self.buy()
                self.highest_close = close
            return

        self.highest_close = max(self.highest_close, close)
        trail = self.highest_close - self.p.mult * self.atr[0]
        if close < trail or self.slope[0] < 0:
            self.close()
