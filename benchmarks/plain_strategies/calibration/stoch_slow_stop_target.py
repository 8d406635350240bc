"""Slow stochastic cross up when oversold; exit at a stop-loss or take-profit from the entry."""

import backtrader as bt


class StochSlowStopTarget(bt.Strategy):
    params = (("period", 14), ("oversold", 25.0), ("stop", 0.01), ("take", 0.02))
    grid = {"stop": [0.01, 0.02], "take": [0.015, 0.03]}

    def __init__(self):
        self.stoch = bt.ind.StochasticSlow(self.data, period=self.p.period, safediv=True)
        self.cross = bt.ind.CrossOver(self.stoch.percK, self.stoch.percD)

    def next(self):
        if not self.position:
            if self.cross[0] > 0 and self.stoch.percK[0] < self.p.oversold:
                self.buy()
            return

        entry = self.position.price
        close = self.data.close[0]
        if close <= entry * (1.0 - self.p.stop):
            self.close()  # stop-loss
        elif close >= entry * (1.0 + self.p.take):
            self.close()  # take-profit
