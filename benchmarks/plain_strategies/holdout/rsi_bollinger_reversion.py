"""RSI + Bollinger Bands mean reversion with a time stop.

Buy when the close is below the lower band and RSI is oversold. Sell when price returns to
the middle band, or after ``hold_bars`` bars in the trade, whichever comes first.
"""

import backtrader as bt


class RsiBollingerReversion(bt.Strategy):
    params = dict(
        bb_period=20,
        bb_dev=2.0,
        rsi_period=14,
        oversold=30,
        hold_bars=30,
    )
    grid = {"bb_period": [20, 50], "hold_bars": [30, 90]}

    def __init__(self):
        self.bb = bt.ind.BollingerBands(self.data.close, period=self.p.bb_period,
                                        devfactor=self.p.bb_dev)
        self.rsi = bt.ind.RSI(self.data.close, period=self.p.rsi_period)
        self.entry_bar = None

    def notify_trade(self, trade):
        if trade.isopen:
            self.entry_bar = len(self)
        elif trade.isclosed:
            self.entry_bar = None

    def next(self):
        if self.position.size == 0:
            if self.data.close[0] < self.bb.lines.bot[0] and self.rsi[0] < self.p.oversold:
                self.buy()
        else:
            held = len(self) - self.entry_bar if self.entry_bar is not None else 0
            if self.data.close[0] >= self.bb.lines.mid[0] or held >= self.p.hold_bars:
                self.close()
