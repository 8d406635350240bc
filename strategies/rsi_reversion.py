"""A plain Backtrader strategy: buy an oversold market, sell it once it is overbought.

Long when Wilder's RSI over ``period`` bars falls below ``low``; flat again when it rises above
``high``. ``safediv=True`` keeps the RSI defined (at 50) on flat stretches where nothing moved,
which would otherwise divide by zero on real candles.
"""

import backtrader as bt


class RsiReversion(bt.Strategy):
    params = (("period", 14), ("low", 30), ("high", 70))
    grid = {"period": [7, 14, 28], "low": [20, 30], "high": [60, 70]}

    def __init__(self):
        # Backtrader's RSI smooths gains and losses with Wilder's moving average (SMMA).
        self.rsi = bt.indicators.RSI(self.data.close, period=self.p.period, safediv=True)

    def next(self):
        if not self.position and self.rsi[0] < self.p.low:
            self.buy()
        elif self.position and self.rsi[0] > self.p.high:
            self.close()
