"""Aroon oscillator above zero: long; below: flat."""

import backtrader as bt


class AroonTrend(bt.Strategy):
    params = (("period", 25),)
    grid = {"period": [14, 25, 50]}

    def __init__(self):
        self.osc = bt.ind.AroonOscillator(self.data, period=self.p.period)

    def next(self):
        if not self.position and self.osc[0] > 0:
            self.buy()
        elif self.position and self.osc[0] < 0:
            self.close()
