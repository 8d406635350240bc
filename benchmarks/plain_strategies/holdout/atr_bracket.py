"""Trend pullback entries protected by an ATR bracket (buy_bracket).

When the close crosses back above a short EMA while above a long EMA, a bracket is sent:
a market entry, a stop ``stop_atr`` ATRs below the close and a take-profit ``target_atr``
ATRs above it. Nothing else is done until both sides of the bracket are gone.
"""

import backtrader as bt


class AtrBracket(bt.Strategy):
    params = (
        ("fast", 20),
        ("trend", 150),
        ("atr_period", 14),
        ("stop_atr", 1.5),
        ("target_atr", 3.0),
    )
    grid = {"stop_atr": [1.5, 3.0], "target_atr": [2.0, 4.0]}

    def __init__(self):
        self.fast = bt.ind.EMA(period=self.p.fast)
        self.trend = bt.ind.EMA(period=self.p.trend)
        self.atr = bt.ind.ATR(period=self.p.atr_period)
        self.cross = bt.ind.CrossOver(self.data.close, self.fast)
        self.orefs = []

    def notify_order(self, order):
        if order.status in [order.Submitted, order.Accepted]:
            return
        if not order.alive() and order.ref in self.orefs:
            self.orefs.remove(order.ref)

    def next(self):
        if self.orefs or self.position:
            return

        if self.cross[0] > 0 and self.data.close[0] > self.trend[0]:
            close = self.data.close[0]
            atr = self.atr[0]
            orders = self.buy_bracket(
                exectype=bt.Order.Market,
                stopprice=close - self.p.stop_atr * atr,
                limitprice=close + self.p.target_atr * atr,
            )
            self.orefs = [o.ref for o in orders]
