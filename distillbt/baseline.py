"""The one full-backtest baseline every figure of the screen is compared with.

A screen's speed-up is only as honest as the full backtests it is divided into. Every full
backtest the screen runs or compares to — validation runs, survivors on the screening and
holdout periods, the plain path's fallbacks — is built here, the same way for model and plain
strategies: Backtrader's fastest exact run (:class:`~distillbt.backtest.NumpyFeed`,
``stdstats=False``, ``runonce=True``) fed a **bounded warm-up**, the bars the configuration's
longest window needs, not the whole history before the period::

    job = baseline_job(config, candles, start=s_start, stop=s_stop, timeframe="15m")
    result = run_many([job])[0]          # result["seconds"]: fit (models) + the run

Warm-up per configuration (:func:`warmup_bars`):

- **model strategies** (:class:`~distillbt.strategy.ModelStrategy`): every feature is a finite
  window (:func:`~distillbt.features.feature_warmup`), so the warm-up is that window plus one
  bar — exactly the same features as after any longer history; with ``horizons`` the coarse
  intervals' windows are counted in base candles (plus two coarse candles for the incomplete
  first bin). The model is fitted **outside Backtrader**, once per fit (configurations that
  differ only in rule params share it within a worker), on the real candles before the period
  — what the strategy would learn from its own ``trade_start`` — and passed as ``fitted``;
- **plain strategies**: ten times the longest window read from the configuration
  (:func:`distillbt.surrogate.plan.full_warmup`; EMA-type indicators decay like
  ``(1 - 1/p)^bars``), at least 200 bars.

``tests/test_baseline.py`` shows the bounded warm-up gives the same score as the whole history
on every shipped strategy.
"""

from __future__ import annotations

from .backtest import BacktestJob
from .data.candles import Candles
from .data.timeframes import timeframe_ms
from .discovery import Configuration
from .features import feature_warmup
from .horizons import check_horizons
from .strategy import ModelStrategy

__all__ = ["warmup_bars", "baseline_job", "is_model"]


def is_model(configuration: Configuration) -> bool:
    """Whether the configuration's strategy is a :class:`~distillbt.strategy.ModelStrategy`."""
    return issubclass(configuration.strategy.cls, ModelStrategy)


def warmup_bars(configuration: Configuration, *, timeframe: str | None = None) -> int:
    """Bars before a period that the configuration's indicators or features need (module
    docstring). ``timeframe``: the candles' interval (needed for ``horizons``)."""
    if is_model(configuration):
        return _model_warmup(configuration, timeframe)
    from .surrogate.plan import full_warmup, plan_configuration

    return full_warmup([plan_configuration(configuration)], 10**12)


def _model_warmup(configuration: Configuration, timeframe: str | None) -> int:
    cfg = configuration.strategy.cls.configure(configuration.params)
    _, options = cfg.feature_spec()
    need = feature_warmup(**dict(options)) + 1
    if cfg.p.horizons and timeframe:
        base = timeframe_ms(timeframe)
        for tf in check_horizons(timeframe, cfg.p.horizons):
            ratio = max(1, timeframe_ms(tf) // base)
            need = max(need, (feature_warmup(**dict(options)) + 3) * ratio)
    return int(need)


def baseline_job(configuration: Configuration, candles: Candles, *, start: int, stop: int,
                 cash: float, commission: float, record_equity: bool = False,
                 warmup: int | None = None, objective: str | None = None, slippage: float = 0.0,
                 fraction: float | None = None) -> BacktestJob:
    """The baseline full backtest of ``configuration`` on candle positions ``[start, stop)``.

    ``warmup``: the bounded warm-up (default :func:`warmup_bars`); model strategies are
    fitted in the worker on the candles before ``start``. ``objective``, ``slippage`` and
    ``fraction``: as :func:`~distillbt.backtest.run_backtest`'s."""
    index = candles.frame.index
    if warmup is None:
        warmup = warmup_bars(configuration, timeframe=candles.timeframe)
    return BacktestJob(configuration, candles, cash=cash, commission=commission, start=index[start],
                       end=index[stop - 1], warmup_bars=min(int(warmup), start), record_equity=record_equity,
                       fit_until=start if is_model(configuration) else None, objective=objective,
                       slippage=slippage, fraction=fraction)
