"""Williams %R oversold dip above an SMA trend places a limit buy below the close; exits on % stop, % target, or %R overbought."""

import datetime

import backtrader as bt


class WilliamsLimitDip(bt.Strategy):
    params = (("period", 14), ("trend", 200), ("offset", 0.002), ("valid_minutes", 60),
              ("stop_pct", 0.015), ("target_pct", 0.015))
    grid = {"period": [14, 30]}

    def __init__(self):
        self.wr = bt.ind.WilliamsR(self.data, period=self.p.period)
        self.sma = bt.ind.SMA(self.data.close, period=self.p.trend)
        self.order = None
        self.entry_price = None

    def notify_order(self, order):
        if order.status in [order.Submitted, order.Accepted]:
            return
        if order.status == order.Completed and order.isbuy():
            self.entry_price = order.executed.price
        self.order = None

    def next(self):
        if self.order:
            return
        if not self.position:
            if self.wr[0] < -90 and self.data.close[0] > self.sma[0]:
                valid = self.data.datetime.datetime(0) + datetime.timedelta(minutes=self.p.valid_minutes)
                self.order = self.buy(exectype=bt.Order.Limit, price=self.data.close[0] * (1 - self.p.offset), valid=valid)
        else:
            close = self.data.close[0]
            if (close < self.entry_price * (1 - self.p.stop_pct) or close > self.entry_price * (1 + self.p.target_pct)
                    or self.wr[0] > -10):
                self.order = self.close()
