"""Two higher lows in a row over the trend average: long; out under the average."""

import backtrader as bt


class HigherLowsTrend(bt.Strategy):
    params = (("trend", 100),)
    grid = {"trend": [50, 200]}

    def __init__(self):
        self.ema = bt.ind.EMA(self.data.close, period=self.p.trend)

    def next(self):
        low = self.data.low
        if not self.position:
            if low[0] > low[-1] > low[-2] and self.data.close[0] > self.ema[0]:
                self.buy()
        elif self.data.close[0] < self.ema[0]:
            self.close()
