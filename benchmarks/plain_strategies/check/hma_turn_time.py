"""Buy when the Hull moving average turns up; sell when it turns down or after N bars."""

import backtrader as bt


class HmaTurnTime(bt.Strategy):
    params = (("period", 20), ("hold", 24))
    grid = {"period": [16, 40], "hold": [12, 48]}

    def __init__(self):
        hma = bt.ind.HMA(self.data.close, period=self.p.period)
        self.turn_up = bt.And(hma > hma(-1), hma(-1) <= hma(-2))
        self.turn_down = hma < hma(-1)
        self.bar_in = None

    def next(self):
        if not self.position:
            if self.turn_up[0]:
                self.buy()
                self.bar_in = len(self)
        elif self.turn_down[0] or len(self) - self.bar_in >= self.p.hold:
            self.close()
