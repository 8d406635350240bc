"""MACD signal-line crossover, always in the market: long above the signal, short below.

``order_target_percent`` rounds sizes down to whole units (useless for BTC with a small
account), so the target is given in coins with ``order_target_size``.
"""

import backtrader as bt


class MacdLongShort(bt.Strategy):
    params = (
        ("fast", 12),
        ("slow", 26),
        ("signal", 9),
        ("target", 0.95),
    )
    grid = {"slow": [26, 52, 104]}

    def __init__(self):
        macd = bt.indicators.MACD(self.data.close,
                                  period_me1=self.p.fast,
                                  period_me2=self.p.slow,
                                  period_signal=self.p.signal)
        self.signal_cross = bt.indicators.CrossOver(macd.macd, macd.signal)

    def target_units(self):
        return self.p.target * self.broker.getvalue() / self.data.close[0]

    def next(self):
        if self.signal_cross > 0:
            self.order_target_size(target=self.target_units())
        elif self.signal_cross < 0:
            self.order_target_size(target=-self.target_units())
