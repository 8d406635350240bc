"""EMA/WMA crossover with a fixed percentage stop-loss.

Goes long when the fast EMA crosses above the slow WMA. Once the entry fills, a protective
Stop sell order is placed a fixed percentage below the fill price. The position is closed on
the opposite cross (cancelling the stop) or by the stop itself.
"""

import backtrader as bt


class EmaWmaStopLoss(bt.Strategy):
    params = (
        ("fast", 12),
        ("slow", 60),
        ("stop_pct", 0.01),
    )
    grid = {"fast": [12, 30], "stop_pct": [0.005, 0.015]}

    def __init__(self):
        self.ema = bt.indicators.ExponentialMovingAverage(self.data.close, period=self.p.fast)
        self.wma = bt.indicators.WeightedMovingAverage(self.data.close, period=self.p.slow)
        self.cross = bt.indicators.CrossOver(self.ema, self.wma)
        self.order = None
        self.stop_order = None

    def notify_order(self, order):
        if order.status in [order.Submitted, order.Accepted]:
            return

        if order.status == order.Completed:
            if order.isbuy():
                stop_price = order.executed.price * (1.0 - self.p.stop_pct)
                self.stop_order = self.sell(exectype=bt.Order.Stop, price=stop_price,
                                            size=order.executed.size)
            elif self.stop_order is not None and order.ref == self.stop_order.ref:
                self.stop_order = None

        elif order.status in [order.Canceled, order.Margin, order.Rejected]:
            if self.stop_order is not None and order.ref == self.stop_order.ref:
                self.stop_order = None

        if self.order is not None and order.ref == self.order.ref:
            self.order = None

    def next(self):
        if self.order:
            return

        if not self.position:
            if self.cross[0] > 0:
                self.order = self.buy()
        elif self.cross[0] < 0:
            if self.stop_order is not None:
                self.cancel(self.stop_order)
                self.stop_order = None
            self.order = self.close()
