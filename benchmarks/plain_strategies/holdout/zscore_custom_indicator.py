"""Mean reversion on a home-made rolling z-score indicator.

``ZScore`` is a custom indicator computed bar by bar in its own ``next``: how many standard
deviations the close is from its rolling mean. Buy when it drops below ``-entry``, sell when
it comes back above ``exit``.
"""

import math

import backtrader as bt


class ZScore(bt.Indicator):
    lines = ("zscore",)
    params = (("period", 50),)
    plotlines = dict(zscore=dict(_plotskip=False))

    def __init__(self):
        self.addminperiod(self.p.period)

    def next(self):
        window = self.data.get(size=self.p.period)
        mean = sum(window) / len(window)
        var = sum((x - mean) ** 2 for x in window) / len(window)
        std = math.sqrt(var)
        self.lines.zscore[0] = (self.data[0] - mean) / std if std > 0 else 0.0


class ZScoreReversion(bt.Strategy):
    params = (("period", 50), ("entry", 2.0), ("exit", 0.0))
    grid = {"period": [30, 120], "entry": [2.0, 2.5]}

    def __init__(self):
        self.z = ZScore(self.data.close, period=self.p.period)

    def next(self):
        if not self.position:
            if self.z[0] < -self.p.entry:
                self.buy()
        elif self.z[0] > self.p.exit:
            self.sell(size=self.position.size)
