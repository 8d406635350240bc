"""One recorded Backtrader run of a plain configuration, shared by the order tests."""

from __future__ import annotations

import math

from distillbt.backtest import feed_arrays, run_cerebro
from distillbt.surrogate.recorder import PositionRecorder


def recorded_run(candles, config, rows=slice(2_000, 8_000)):
    """``(recorder, bars, dates)``: ``config`` run in Backtrader over ``candles[rows]`` with
    the screen's conventions and :class:`PositionRecorder` attached (its orders, positions and
    decisions), the bars' open/high/low/close arrays and Backtrader's date numbers."""
    frame = candles.frame.iloc[rows]
    arrays = feed_arrays(frame.index.asi8, *(frame[k].to_numpy() for k in ("open", "high", "low", "close", "volume")))
    strat = run_cerebro(arrays=arrays, strategy_cls=config.strategy.cls, params=config.params, cash=10_000.0,
                        commission=0.001, timeframe=None, symbol=None, trade_from=-math.inf,
                        analyzers={"positions": (PositionRecorder, {})})
    bars = {k: frame[k].to_numpy() for k in ("open", "high", "low", "close")}
    return strat.analyzers.positions, bars, arrays["datetime"]
