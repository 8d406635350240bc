"""Full stochastic %D/slow cross taken in the DEMA slope's direction, long or short."""

import backtrader as bt


class StochFullDemaLS(bt.Strategy):
    params = (("period", 14), ("dema", 100), ("slope_bars", 5))
    grid = {"period": [9, 14, 28]}

    def __init__(self):
        stoch = bt.ind.StochasticFull(self.data, period=self.p.period, safediv=True)
        self.cross = bt.ind.CrossOver(stoch.percD, stoch.percDSlow)
        dema = bt.ind.DEMA(self.data.close, period=self.p.dema)
        self.slope = dema - dema(-self.p.slope_bars)

    def next(self):
        pos = self.position.size
        if self.cross[0] > 0 and self.slope[0] > 0 and pos <= 0:
            if pos < 0:
                self.close()
            self.buy()
        elif self.cross[0] < 0 and self.slope[0] < 0 and pos >= 0:
            if pos > 0:
                self.close()
            self.sell()
        elif (pos > 0 and self.slope[0] < 0) or (pos < 0 and self.slope[0] > 0):
            self.close()
