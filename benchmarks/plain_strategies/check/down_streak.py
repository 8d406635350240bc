"""Very active: buy after N lower closes in a row; sell on the first up close or after N bars."""

import backtrader as bt


class DownStreak(bt.Strategy):
    params = (("streak", 2), ("max_bars", 5))
    grid = {"streak": [2, 3]}

    def __init__(self):
        self.bar_in = None

    def next(self):
        close = self.data.close
        if not self.position:
            if all(close[-i] < close[-i - 1] for i in range(self.p.streak)):
                self.buy()
                self.bar_in = len(self)
        elif close[0] > close[-1] or len(self) - self.bar_in >= self.p.max_bars:
            self.close()
