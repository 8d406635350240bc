"""Rare: join only very strong DMI trends, long or short; out when ADX rolls over."""

import backtrader as bt


class DmiStrongTrend(bt.Strategy):
    params = (("period", 14), ("adx_level", 50.0), ("spread", 30.0))
    grid = {"adx_level": [55.0, 65.0]}

    def __init__(self):
        plus = bt.ind.PlusDI(self.data, period=self.p.period)
        minus = bt.ind.MinusDI(self.data, period=self.p.period)
        adx = bt.ind.ADX(self.data, period=self.p.period)
        strong = bt.And(adx > self.p.adx_level, adx > adx(-1))
        self.go_long = bt.And(strong, plus - minus > self.p.spread)
        self.go_short = bt.And(strong, minus - plus > self.p.spread)
        self.rollover = adx < adx(-3)

    def next(self):
        if not self.position:
            if self.go_long[0]:
                self.buy()
            elif self.go_short[0]:
                self.sell()
        elif self.rollover[0]:
            self.close()
