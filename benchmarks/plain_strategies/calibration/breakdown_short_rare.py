"""Rare: short a 200-bar low broken in a steep fall; cover at target, stop or after a long hold."""

import backtrader as bt


class BreakdownShortRare(bt.Strategy):
    params = (("period", 200), ("roc_period", 100), ("roc_level", -8.0),
              ("take", 0.05), ("stop", 0.03), ("hold", 200))
    grid = {"roc_level": [-10.0, -14.0]}

    def __init__(self):
        self.floor = bt.ind.Lowest(self.data.low(-1), period=self.p.period)
        self.roc = 100.0 * bt.ind.ROC(self.data.close, period=self.p.roc_period)
        self.entry_bar = None

    def next(self):
        close = self.data.close[0]
        if not self.position:
            if close < self.floor[0] and self.roc[0] < self.p.roc_level:
                self.sell()
                self.entry_bar = len(self)
            return

        entry = self.position.price
        if (close <= entry * (1.0 - self.p.take) or close >= entry * (1.0 + self.p.stop)
                or len(self) - self.entry_bar >= self.p.hold):
            self.close()
