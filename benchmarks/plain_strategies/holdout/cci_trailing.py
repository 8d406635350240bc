"""CCI oversold rebound with a percentage trailing stop as the only exit."""

import backtrader as bt


class CciTrailingStop(bt.Strategy):
    params = (
        ("cci_period", 20),
        ("level", -100),
        ("trail", 0.01),
    )
    grid = {"trail": [0.005, 0.01, 0.02]}

    def __init__(self):
        self.cci = bt.indicators.CommodityChannelIndex(self.data, period=self.p.cci_period)
        self.order = None
        self.trail_order = None

    def notify_order(self, order):
        if order.status in (order.Submitted, order.Accepted):
            return
        if order.status == order.Completed and order.isbuy():
            self.trail_order = self.sell(exectype=bt.Order.StopTrail,
                                         trailpercent=self.p.trail,
                                         size=order.executed.size)
        if order == self.trail_order and not order.alive():
            self.trail_order = None
        if order == self.order:
            self.order = None

    def next(self):
        if self.order or self.trail_order:
            return
        if not self.position:
            # CCI leaves the oversold zone
            if self.cci[-1] < self.p.level <= self.cci[0]:
                self.order = self.buy()
