"""Long when price is above the Ichimoku cloud with Tenkan above Kijun; flat when the close falls back below the Kijun line."""

import backtrader as bt


class IchimokuCloud(bt.Strategy):
    params = (("tenkan", 9), ("kijun", 26), ("senkou", 52), ("target", 0.9))
    grid = {"kijun": [20, 40]}

    def __init__(self):
        self.ichi = bt.ind.Ichimoku(
            self.data,
            tenkan=self.p.tenkan,
            kijun=self.p.kijun,
            senkou=self.p.senkou,
            senkou_lead=self.p.kijun,
        )
        self.cloud_top = bt.Max(self.ichi.senkou_span_a, self.ichi.senkou_span_b)
        self.cloud_bottom = bt.Min(self.ichi.senkou_span_a, self.ichi.senkou_span_b)
        self.entry = bt.And(self.ichi.tenkan_sen > self.ichi.kijun_sen, self.data.close > self.cloud_top)
        self.exit = bt.Or(self.data.close < self.ichi.kijun_sen, self.data.close < self.cloud_bottom)

    def next(self):
        if not self.position:
            if self.entry[0]:
                self.order_target_percent(target=self.p.target)
        elif self.exit[0]:
            self.order_target_percent(target=0.0)
