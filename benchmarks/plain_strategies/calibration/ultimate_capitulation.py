"""Rare: buy an Ultimate Oscillator extreme far below the long SMMA; sell at the SMMA or later."""

import backtrader as bt


class UltimateCapitulation(bt.Strategy):
    params = (("uo_level", 25.0), ("depth", 0.06), ("smma_period", 200), ("hold", 150))
    grid = {"depth": [0.05, 0.08]}

    def __init__(self):
        self.uo = bt.ind.UltimateOscillator(self.data)
        self.smma = bt.ind.SMMA(self.data.close, period=self.p.smma_period)
        self.entry_bar = None

    def next(self):
        close = self.data.close[0]
        if not self.position:
            if self.uo[0] < self.p.uo_level and close < self.smma[0] * (1.0 - self.p.depth):
                self.buy()
                self.entry_bar = len(self)
        elif close > self.smma[0] or len(self) - self.entry_bar > self.p.hold:
            self.close()
