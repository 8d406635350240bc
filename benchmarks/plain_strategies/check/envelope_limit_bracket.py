"""Limit-entry bracket at the lower EMA envelope: ATR stop below, target at the EMA; expires."""

import backtrader as bt


class EnvelopeLimitBracket(bt.Strategy):
    params = (("period", 50), ("perc", 1.0), ("atr_period", 14), ("atr_mult", 2.0),
              ("valid_bars", 4))
    grid = {"perc": [0.5, 1.0, 2.0]}

    def __init__(self):
        self.env = bt.ind.EMAEnvelope(self.data.close, period=self.p.period, perc=self.p.perc)
        self.atr = bt.ind.ATR(self.data, period=self.p.atr_period)
        self.orefs = []

    def notify_order(self, order):
        if not order.alive() and order.ref in self.orefs:
            self.orefs.remove(order.ref)

    def next(self):
        if self.orefs or self.position:
            return

        entry = self.env.bot[0]
        bar = self.data.datetime.datetime(0) - self.data.datetime.datetime(-1)
        expiry = self.data.datetime.datetime(0) + bar * self.p.valid_bars
        orders = self.buy_bracket(exectype=bt.Order.Limit, price=entry,
                                  stopprice=entry - self.p.atr_mult * self.atr[0],
                                  limitprice=self.env.ema[0],
                                  oargs=dict(valid=expiry))
        self.orefs = [o.ref for o in orders]
