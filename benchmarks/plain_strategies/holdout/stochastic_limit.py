"""Stochastic oversold cross with a limit entry below the close.

When %K crosses above %D in the oversold zone, a buy Limit is placed ``offset`` below the
close and left working for ``valid_bars`` bars. The long is closed when %K crosses below %D
in the overbought zone.
"""

import backtrader as bt


class StochasticLimitEntry(bt.Strategy):
    params = (
        ("period", 14),
        ("oversold", 20.0),
        ("overbought", 80.0),
        ("offset", 0.001),
        ("valid_bars", 5),
        ("stake", 0.9),
    )
    grid = {"period": [14, 42]}

    def log(self, txt):
        pass  # print(f"{self.data.datetime.datetime(0)} {txt}")

    def __init__(self):
        self.stoch = bt.indicators.Stochastic(self.data, period=self.p.period,
                                              period_dfast=3, period_dslow=3)
        self.kd_cross = bt.indicators.CrossOver(self.stoch.percK, self.stoch.percD)
        self.order = None
        self.order_bar = 0

    def notify_order(self, order):
        if order.status in [order.Submitted, order.Accepted]:
            return
        if order.status == order.Completed:
            side = "BUY" if order.isbuy() else "SELL"
            self.log(f"{side} EXECUTED, {order.executed.price:.2f}")
        self.order = None

    def next(self):
        if self.order:
            if self.order.isbuy() and len(self) - self.order_bar >= self.p.valid_bars:
                self.cancel(self.order)
            return

        if not self.position:
            if self.kd_cross[0] > 0 and self.stoch.percK[0] < self.p.oversold + 10:
                limit = self.data.close[0] * (1.0 - self.p.offset)
                size = self.p.stake * self.broker.getvalue() / limit
                self.order = self.buy(exectype=bt.Order.Limit, price=limit, size=size)
                self.order_bar = len(self)
        elif self.kd_cross[0] < 0 and self.stoch.percK[0] > self.p.overbought - 10:
            self.order = self.sell(size=self.position.size)
