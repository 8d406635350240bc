"""Enter on a close above the SMA; exit on an ATR trailing stop under the highest close since entry."""

import backtrader as bt


class AtrTrail(bt.Strategy):
    params = (("period", 50), ("atr_period", 14), ("mult", 3.0))
    grid = {"period": [20, 50], "mult": [2.0, 4.0]}

    def __init__(self):
        self.sma = bt.ind.SMA(self.data.close, period=self.p.period)
        self.atr = bt.ind.ATR(self.data, period=self.p.atr_period)
        self.peak = None

    def next(self):
        close = self.data.close[0]
        if not self.position:
            if close > self.sma[0]:
                self.buy()
                self.peak = close
        else:
            self.peak = max(self.peak, close)
            if close < self.peak - self.p.mult * self.atr[0]:
                self.close()
