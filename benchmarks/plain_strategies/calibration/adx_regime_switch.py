"""ADX picks the style: follow an EMA pair if trending, else buy under the lower Bollinger band."""

import backtrader as bt


class AdxRegimeSwitch(bt.Strategy):
    params = (("adx_period", 14), ("adx_level", 25.0), ("fast", 10), ("slow", 40),
              ("bb_period", 20))
    grid = {"adx_level": [20.0, 25.0, 30.0]}

    def __init__(self):
        adx = bt.ind.ADX(self.data, period=self.p.adx_period)
        fast = bt.ind.EMA(self.data.close, period=self.p.fast)
        slow = bt.ind.EMA(self.data.close, period=self.p.slow)
        bb = bt.ind.BollingerBands(self.data.close, period=self.p.bb_period)

        trending = adx > self.p.adx_level
        self.enter = bt.If(trending, fast > slow, self.data.close < bb.bot)
        self.leave = bt.Or(bt.And(trending, fast < slow),
                           bt.And(adx <= self.p.adx_level, self.data.close > bb.mid))

    def next(self):
        if not self.position:
            if self.enter[0]:
                self.buy()
        elif self.leave[0]:
            self.close()
