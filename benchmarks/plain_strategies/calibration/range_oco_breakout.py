"""OCO buy and sell stops around the recent range; hold the side that fills for N bars."""

import backtrader as bt


class RangeOcoBreakout(bt.Strategy):
    params = (("period", 20), ("hold", 20), ("valid_bars", 4))
    grid = {"period": [20, 48]}

    def __init__(self):
        self.range_high = bt.ind.Highest(self.data.high, period=self.p.period)
        self.range_low = bt.ind.Lowest(self.data.low, period=self.p.period)
        self.entries = []
        self.placed_at = None
        self.entry_bar = None
        self.exit_order = None

    def notify_order(self, order):
        if order.status in [order.Submitted, order.Accepted]:
            return
        if order in self.entries:
            self.entries.remove(order)
            if order.status == order.Completed:
                self.entry_bar = len(self)
        elif order == self.exit_order:
            self.exit_order = None

    def next(self):
        if self.position:
            if self.exit_order:
                return
            too_long = len(self) - self.entry_bar >= self.p.hold
            if self.position.size > 0:
                failed = self.data.close[0] < self.range_low[0]
            else:
                failed = self.data.close[0] > self.range_high[0]
            if too_long or failed:
                self.exit_order = self.close()
            return

        if self.entries:
            if len(self) - self.placed_at >= self.p.valid_bars:
                for order in list(self.entries):
                    self.cancel(order)
            return

        long_entry = self.buy(exectype=bt.Order.Stop, price=self.range_high[0])
        short_entry = self.sell(exectype=bt.Order.Stop, price=self.range_low[0], oco=long_entry)
        self.entries = [o for o in (long_entry, short_entry) if o is not None]
        self.placed_at = len(self)
