"""Long/short on the MACD histogram's sign when the DMI confirms a trend; flat as ADX fades."""

import backtrader as bt


class MacdHistoDmi(bt.Strategy):
    params = dict(me1=12, me2=26, signal=9, dmi_period=14, adx_min=25.0)
    grid = {"dmi_period": [10, 20, 30]}

    def __init__(self):
        macd = bt.ind.MACDHisto(self.data.close, period_me1=self.p.me1,
                                period_me2=self.p.me2, period_signal=self.p.signal)
        dmi = bt.ind.DMI(self.data, period=self.p.dmi_period)
        self.adx = dmi.adx
        trending = dmi.adx > self.p.adx_min
        self.long_signal = bt.And(macd.histo > 0, dmi.plusDI > dmi.minusDI, trending)
        self.short_signal = bt.And(macd.histo < 0, dmi.minusDI > dmi.plusDI, trending)

    def next(self):
        if self.long_signal[0]:
            if self.position.size < 0:
                self.close()
                self.buy()
            elif not self.position:
                self.buy()
        elif self.short_signal[0]:
            if self.position.size > 0:
                self.close()
                self.sell()
            elif not self.position:
                self.sell()
        elif self.position and self.adx[0] < self.p.adx_min:
            self.close()
