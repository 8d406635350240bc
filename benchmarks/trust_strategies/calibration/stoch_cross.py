"""Stochastic %K crossing %D: buy the cross up in the oversold zone, sell the cross down above
the overbought line."""

import backtrader as bt


class StochCross(bt.Strategy):
    params = (("period", 14), ("oversold", 20.0), ("overbought", 80.0))
    grid = {"period": [14, 28], "oversold": [20.0, 30.0]}

    def __init__(self):
        st = bt.ind.Stochastic(self.data, period=self.p.period, safediv=True)
        self.k = st.percK
        self.cross = bt.ind.CrossOver(st.percK, st.percD)

    def next(self):
        if not self.position:
            if self.cross[0] > 0 and self.k[0] < self.p.oversold:
                self.buy()
        elif self.cross[0] < 0 and self.k[0] > self.p.overbought:
            self.close()
