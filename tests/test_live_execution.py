"""The Backtrader execution of model strategies is independent of the vectorised one.

Inside Backtrader a model strategy's features come from :mod:`distillbt.live_features`, a
second implementation that reads only the bars delivered so far; the vectorised screen uses
:func:`~distillbt.features.make_features`. These tests check that the two agree trade for
trade on the shipped strategies, that a look-ahead planted in the vectorised features makes
them disagree (so the agreement means something), that the Backtrader decisions up to bar t
ignore every candle after t, and that Backtrader's two modes (``runonce`` True/False) agree.
"""

import numpy as np
import pandas as pd
import pytest

import backtrader as bt

from distillbt import vectorised_run
from distillbt.data.sample import sample_market
from distillbt.errors import InputError
from distillbt.features import make_features
from distillbt.live_features import CausalFeatures, volume_floor
from distillbt.models import LogisticRegression, Ridge
from distillbt.strategy import ModelStrategy

from .test_model_strategy import (
    CASH, COMMISSION, MODEL_STRATEGY_FILES, STRATEGIES, _load, assert_same_execution, recording,
)

SPLIT = 1500  # candles before it train the models; the runs trade from it


@pytest.fixture(scope="module")
def market():
    candles = sample_market(bars=3000, seed=21)
    frame = candles.frame.copy()
    # Zero-volume candles, one inside the first window: the causal volume floor is exercised.
    frame.iloc[[3, 40, 41, 900, 2200], frame.columns.get_loc("volume")] = 0.0
    return frame


def shipped():
    """(class, params) of every shipped model strategy: the grid's configuration that trades
    the most would be ideal, but any deterministic one will do; take the first."""
    out = []
    for filename in MODEL_STRATEGY_FILES:
        (cls,) = _load(STRATEGIES / filename)
        out.append(pytest.param(cls, cls.configurations()[0], id=cls.__name__))
    return out


def run(strategy, frame, *, runonce=True, **params):
    cerebro = bt.Cerebro(stdstats=False, runonce=runonce, preload=True)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame))
    cerebro.broker.setcash(CASH)
    cerebro.broker.setcommission(commission=COMMISSION)
    cerebro.broker.set_checksubmit(False)
    cerebro.addstrategy(recording(strategy), **params)
    strat = cerebro.run()[0]
    return strat, cerebro.broker.getvalue()


def lines(strat):
    """The run's predictions and targets at every bar."""
    signal = strat.model_signal
    return signal.predictions, np.asarray(signal.lines.target.array, dtype="float64")


def test_causal_features_match_make_features(market):
    fs = make_features(market)
    live = CausalFeatures(fs.names, {})
    arrays = [market[c].to_numpy() for c in ("open", "high", "low", "close", "volume")]
    floor = volume_floor(arrays[-1])
    X = live.rows(*arrays, floor, 0, len(market))
    ref = fs.X.to_numpy()
    np.testing.assert_array_equal(np.isnan(X), np.isnan(ref))
    np.testing.assert_allclose(X, ref, rtol=1e-9, atol=1e-11, equal_nan=True)
    # Any split of the rows into batches gives the same rows (what once(start, end) relies on).
    pieces = [live.rows(*arrays, floor, a, min(a + 333, len(market)))
              for a in range(0, len(market), 333)]
    np.testing.assert_array_equal(np.vstack(pieces), X)
    # A row needs lookback - 1 bars before it, no more: its value from a short tail is the same.
    t = 2500
    tail = slice(t - live.lookback + 1, t + 1)
    short = live.rows(*(a[tail] for a in arrays), floor[tail], live.lookback - 1, live.lookback)
    np.testing.assert_allclose(short[0], X[t], rtol=1e-12)
    with pytest.raises(InputError, match="ret_3 not among the features"):
        CausalFeatures(("ret_1", "ret_3"), {})


@pytest.mark.parametrize("cls, params", shipped())
def test_shipped_strategies_agree_trade_for_trade(market, cls, params):
    fitted = cls.fit_model(market, params=params, end=SPLIT)
    vec = cls.vectorised(market, fitted, params=params, start=SPLIT)
    strat, final = run(cls, market, fitted=fitted, trade_start=SPLIT, **params)
    assert vec["trades"] >= 3  # something to agree on
    assert_same_execution(vec, strat, final, SPLIT)
    assert vec["final_value"] == pytest.approx(final, rel=1e-9)
    # Backtrader's other mode gives the same decisions and the same trades.
    step, step_final = run(cls, market, runonce=False, fitted=fitted, trade_start=SPLIT, **params)
    once_signal, once_target = lines(strat)
    step_signal, step_target = lines(step)
    np.testing.assert_array_equal(once_target, step_target)
    np.testing.assert_allclose(once_signal, step_signal, rtol=1e-12, equal_nan=True)
    assert (step.entries, step.exits) == (strat.entries, strat.exits)
    assert step_final == pytest.approx(final, rel=1e-12)


class RidgeShort(ModelStrategy):
    """A long-short ridge on a few features, the look-ahead tests' subject."""

    params = (("alpha", 0.1), ("long_threshold", 0.02), ("short_threshold", -0.02))
    features = ("ret_1", "ret_4", "vol_16", "volume_z_16", "ma_dist_64")

    def make_estimator(self):
        return Ridge(alpha=self.p.alpha)


def test_a_planted_look_ahead_makes_the_executions_disagree(market, monkeypatch):
    fitted = RidgeShort.fit_model(market, end=SPLIT)  # fitted honestly, before the plant
    honest_vec = RidgeShort.vectorised(market, fitted, start=SPLIT)
    honest_bt, honest_final = run(RidgeShort, market, fitted=fitted, trade_start=SPLIT)
    assert_same_execution(honest_vec, honest_bt, honest_final, SPLIT)

    real = make_features

    def leaky(*args, **kwargs):
        fs = real(*args, **kwargs)
        fs.X["ret_1"] = fs.X["ret_1"].shift(-1)  # the next candle's return, at t
        return fs

    monkeypatch.setattr(vectorised_run, "make_features", leaky)
    leaky_vec = RidgeShort.vectorised(market, fitted, start=SPLIT)
    leaky_bt, leaky_final = run(RidgeShort, market, fitted=fitted, trade_start=SPLIT)
    # The vectorised run read the future (and profits from it)...
    assert leaky_vec["final_value"] != pytest.approx(honest_vec["final_value"], rel=1e-3)
    assert not np.array_equal(leaky_vec["positions"], honest_vec["positions"])
    # ...the Backtrader run did not: unchanged, so the two executions now disagree.
    assert (leaky_bt.entries, leaky_bt.exits, leaky_bt.fills) == \
        (honest_bt.entries, honest_bt.exits, honest_bt.fills)
    assert leaky_final == honest_final
    assert leaky_vec["final_value"] != pytest.approx(leaky_final, rel=1e-3)
    assert not np.array_equal(leaky_vec["entries"], leaky_bt.entries)


def test_backtrader_decisions_up_to_t_ignore_later_candles(market):
    fitted = RidgeShort.fit_model(market, end=SPLIT)
    base, _ = run(RidgeShort, market, fitted=fitted, trade_start=SPLIT)
    t = 2200
    moved = market.copy()
    rng = np.random.default_rng(4)
    later = np.arange(len(moved)) > t
    factor = np.exp(np.cumsum(rng.normal(0, 0.02, later.sum())))
    for col in ("open", "high", "low", "close"):
        moved.loc[later, col] = moved.loc[later, col] * factor
    moved.loc[later, "volume"] = rng.uniform(0, 1000, later.sum())
    moved.iloc[np.flatnonzero(later)[::50], moved.columns.get_loc("volume")] = 0.0
    for runonce in (True, False):
        other, _ = run(RidgeShort, moved, runonce=runonce, fitted=fitted, trade_start=SPLIT)
        (s0, t0), (s1, t1) = lines(base), lines(other)
        upto = t + 1
        np.testing.assert_array_equal(t1[:upto], t0[:upto])
        np.testing.assert_allclose(s1[:upto], s0[:upto], rtol=0 if runonce else 1e-12,
                                   equal_nan=True)
        assert not np.allclose(s1[upto:], s0[upto:], equal_nan=True)  # the future did change
        # Orders decided up to t fill at t + 1's open, which moved: compare the bars up to t.
        assert [f for f in other.fills if f[0] <= t] == [f for f in base.fills if f[0] <= t]
        assert other.values[:upto] == base.values[:upto]


class LogitTwoHorizons(ModelStrategy):
    """A logistic model at the candles' 15m and at 1h, trading their mean probability."""

    params = (("long_threshold", 0.5), ("short_threshold", 0.5))
    features = ("ret_1", "ret_4", "ma_dist_16", "vol_ratio_16_96", "volume_z_16")
    target = "direction"
    estimator = LogisticRegression(alpha=1e-2)


def test_multi_horizon_models_are_causal_too(market):
    params = {"horizons": ("1h",)}
    # A gap: the 1h candle it cuts is incomplete, so there is no 1h prediction for a while.
    frame = market.drop(market.index[2301:2303])
    fitted = LogitTwoHorizons.fit_model(frame, params=params, end=SPLIT)
    vec = LogitTwoHorizons.vectorised(frame, fitted, params=params, start=SPLIT)
    strat, final = run(LogitTwoHorizons, frame, fitted=fitted, trade_start=SPLIT, **params)
    assert vec["trades"] >= 3
    assert_same_execution(vec, strat, final, SPLIT)
    signal, target = lines(strat)
    np.testing.assert_allclose(signal, fitted.signal(frame), rtol=1e-9, equal_nan=True)
    assert np.isnan(signal[2300:2304]).any()  # the incomplete hour left the mean undefined
    step, step_final = run(LogitTwoHorizons, frame, runonce=False, fitted=fitted,
                           trade_start=SPLIT, **params)
    step_signal, step_target = lines(step)
    np.testing.assert_array_equal(step_target, target)
    np.testing.assert_allclose(step_signal, signal, rtol=1e-12, equal_nan=True)
    assert step_final == pytest.approx(final, rel=1e-12)
    # Candles after t change nothing the Backtrader run decided up to t.
    t = 2600
    moved = frame.copy()
    moved.iloc[t + 1:, :4] = moved.iloc[t + 1:, :4].to_numpy() * 1.1
    other, _ = run(LogitTwoHorizons, moved, fitted=fitted, trade_start=SPLIT, **params)
    np.testing.assert_array_equal(lines(other)[0][:t + 1], signal[:t + 1])


def test_a_model_of_another_strategy_with_the_same_params_is_refused(market):
    # Item 7 of issue 13: LogisticDirection(alpha=a) and LogisticShortHorizon(alpha=a) have the
    # same fit key (alpha is their only fit param), so a screen chunk that cached models by
    # key alone replayed one strategy with the other's model. The key cannot tell them
    # apart; the features, target and horizon can.
    (direction,) = _load(STRATEGIES / "logistic_direction.py")
    (short,) = _load(STRATEGIES / "logistic_short_horizon.py")
    params = {"alpha": 1e-3}
    assert direction.fit_key(params) == short.fit_key(params)
    other = direction.fit_model(market, params=params, end=SPLIT)
    with pytest.raises(InputError, match="fitted for LogisticDirection"):
        short.vectorised(market, other, params=params, start=SPLIT)
    with pytest.raises(InputError, match="fitted for LogisticDirection"):
        run(short, market, fitted=other, trade_start=SPLIT, **params)


def test_the_screen_replays_each_strategy_with_its_own_model(market):
    # The validation replay (screen_vectorised with sets=None) must give each configuration
    # what its own vectorised run gives, even when two strategies share a fit key in a chunk.
    from distillbt._vectorised_screen import screen_vectorised
    from distillbt.discovery import Configuration, StrategySpec

    (direction,) = _load(STRATEGIES / "logistic_direction.py")
    (short,) = _load(STRATEGIES / "logistic_short_horizon.py")
    wanted = [(direction, {"alpha": 1e-3, "edge": 0.0, "allow_short": False}),
              (short, {"alpha": 1e-3, "long_threshold": 0.52})]
    configs = [Configuration(StrategySpec.from_class(cls), params, f"{cls.__name__}{params}")
               for cls, params in wanted]
    candles = pd.DataFrame(market)
    outcomes = screen_vectorised(configs, None, candles, cash=CASH, commission=COMMISSION, start=SPLIT, stop=len(market))
    for (cls, params), outcome in zip(wanted, outcomes):
        assert outcome["error"] is None, outcome["error"]
        own = cls.vectorised(market, params=params, start=SPLIT)  # fits on [0, SPLIT)
        assert outcome["final_value"] == pytest.approx(own["final_value"], rel=1e-12)
