"""A plain Backtrader strategy: ride breakouts out of a Donchian channel.

Long when the close rises above the highest high of the *previous* ``entry_period`` bars; flat
again when it falls below the lowest low of the previous ``exit_period`` bars. The channel
leaves the current bar out: a close can never be above a high that includes its own bar.
"""

import backtrader as bt


class DonchianBreakout(bt.Strategy):
    params = (("entry_period", 20), ("exit_period", 10))
    grid = {"entry_period": [20, 55, 100], "exit_period": [10, 20, 50]}

    def __init__(self):
        # high(-1) / low(-1) are the lines delayed by one bar: the channel of the bars before.
        self.upper = bt.indicators.Highest(self.data.high(-1), period=self.p.entry_period)
        self.lower = bt.indicators.Lowest(self.data.low(-1), period=self.p.exit_period)

    def next(self):
        if not self.position and self.data.close[0] > self.upper[0]:
            self.buy()
        elif self.position and self.data.close[0] < self.lower[0]:
            self.close()
