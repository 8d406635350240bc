"""Buy an oversold RSI, get out after a fixed number of bars in the trade."""

import backtrader as bt


class RsiTimeExit(bt.Strategy):
    params = (("rsi_period", 14), ("oversold", 30.0), ("hold", 10))
    grid = {"rsi_period": [7, 14], "hold": [5, 20]}

    def __init__(self):
        self.rsi = bt.ind.RSI(self.data.close, period=self.p.rsi_period, safediv=True)
        self.entered = None

    def next(self):
        if not self.position:
            if self.rsi[0] < self.p.oversold:
                self.buy()
                self.entered = len(self)
        elif len(self) - self.entered >= self.p.hold:
            self.close()
