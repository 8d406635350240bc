"""A plain Backtrader strategy whose exits are much rarer than its entry signals.

Buy a short pullback — Wilder's RSI over ``rsi_period`` bars (2 or 3: a very short RSI that
dips below ``level`` every few dozen bars) — and hold it until the close falls below the lowest
low of the previous ``exit_period`` bars: a long trailing channel that rarely triggers. The
entry signal fires all the time; the exit decides how long a trade lasts, often hundreds of
bars. It is the hard case for a screen that learns from short windows (docs/design.md §6: holds that
outlast every episode).
"""

import backtrader as bt


class PullbackTrailing(bt.Strategy):
    params = (("rsi_period", 2), ("level", 10), ("exit_period", 100))
    grid = {"rsi_period": [2, 3], "level": [10, 25], "exit_period": [50, 100, 200]}

    def __init__(self):
        self.rsi = bt.indicators.RSI(self.data.close, period=self.p.rsi_period, safediv=True)
        # low(-1): the channel of the bars before this one, as in the Donchian strategy.
        self.floor = bt.indicators.Lowest(self.data.low(-1), period=self.p.exit_period)

    def next(self):
        if not self.position and self.rsi[0] < self.p.level:
            self.buy()
        elif self.position and self.data.close[0] < self.floor[0]:
            self.close()
