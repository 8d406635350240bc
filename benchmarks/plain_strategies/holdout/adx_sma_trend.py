"""ADX/DMI trend filter combined with a simple moving average.

Enter long when the trend is strong (ADX above ``adx_min``), +DI is above -DI and the close
is above the SMA. Exit when the close drops below the SMA or -DI takes over.
"""

import backtrader as bt


class AdxDmiSma(bt.Strategy):
    params = dict(dmi_period=14, adx_min=25, sma_period=100)
    grid = {"adx_min": [20, 30]}

    def __init__(self):
        self.dmi = bt.indicators.DirectionalMovementIndex(self.data, period=self.p.dmi_period)
        self.sma = bt.indicators.SimpleMovingAverage(self.data.close, period=self.p.sma_period)

    def next(self):
        bullish = self.dmi.plusDI[0] > self.dmi.minusDI[0]
        if self.position.size == 0:
            if self.dmi.adx[0] > self.p.adx_min and bullish and self.data.close[0] > self.sma[0]:
                self.order_target_size(target=0.95 * self.broker.getvalue() / self.data.close[0])
        elif self.data.close[0] < self.sma[0] or not bullish:
            self.order_target_size(target=0.0)
