"""Buy short-term dips in an uptrend; exit only when the price breaks a long low (rare)."""

import backtrader as bt


class DipLongHold(bt.Strategy):
    params = (("rsi_period", 3), ("level", 15.0), ("exit_period", 200))
    grid = {"exit_period": [150, 300], "level": [15.0, 25.0]}

    def __init__(self):
        self.rsi = bt.ind.RSI(self.data.close, period=self.p.rsi_period, safediv=True)
        self.floor = bt.ind.Lowest(self.data.low(-1), period=self.p.exit_period)

    def next(self):
        if not self.position:
            if self.rsi[0] < self.p.level:
                self.buy()
        elif self.data.close[0] < self.floor[0]:
            self.close()
