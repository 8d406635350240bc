"""Model strategies: the Backtrader and the vectorised executions agree trade for trade.

The Backtrader side is a hand-made Cerebro with the shared conventions (PandasData feed,
``setcommission(commission=c)``, ``set_checksubmit(False)``, market orders at the next open)
and a subclass that records every fill, trade and close-of-bar value.
"""

import importlib.util
import math
import sys
from pathlib import Path

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

from distillbt.data.sample import sample_market
from distillbt.errors import InputError
from distillbt.features import Standardizer, make_features
from distillbt.models import LogisticRegression, Ridge
from distillbt.strategy import RULE_PARAMS, FittedModel, ModelStrategy
from distillbt.vectorised import positions_from_predictions, simulate

STRATEGIES = Path(__file__).resolve().parents[1] / "strategies"
MODEL_STRATEGY_FILES = (
    "linear_next_candle.py",
    "ridge_momentum.py",
    "logistic_direction.py",
    "mlp_direction.py",
    "ridge_volatility.py",
    "logistic_short_horizon.py",
)
CASH, COMMISSION = 10_000.0, 0.001
SPLIT = 3000  # candles before it train the model; the run trades from it


class RidgeLags(ModelStrategy):
    """Ridge on a few returns, a volatility, a volume z-score and a moving-average distance."""

    params = (("alpha", 0.1),)
    features = ("ret_1", "ret_4", "vol_16", "volume_z_16", "ma_dist_64")

    def make_estimator(self):
        return Ridge(alpha=self.p.alpha)


class LogitLags(ModelStrategy):
    """Logistic regression on the direction; the estimator is an object copied per fit."""

    params = (("long_threshold", 0.51), ("short_threshold", 0.49))
    features = ("ret_1", "ret_2", "ret_8", "ma_dist_16", "vol_ratio_16_96")
    target = "direction"
    estimator = LogisticRegression(alpha=1e-3)


class Scripted(ModelStrategy):
    """Targets read from ``script`` (ignores the model): tests the broker semantics alone."""

    features = ("ret_1",)
    feature_options = {"return_lags": (1,), "vol_windows": (2,), "volume_windows": (2,),
                       "ma_windows": (2,)}
    estimator = Ridge
    script = np.zeros(0)

    def position_rule(self, prediction):
        return np.asarray(self.script[: len(prediction)], dtype="float64")


def recording(strategy):
    """A subclass of ``strategy`` that logs fills, trades and each bar's value at its close."""

    class Recording(strategy):
        def start(self):
            super().start()
            self.fills, self.entries, self.exits, self.values = [], [], [], []

        def notify_order(self, order):
            if order.status in (order.Partial, order.Completed):
                self.fills.append((len(self.data) - 1, order.executed.size,
                                   order.executed.price, order.executed.comm))

        def notify_trade(self, trade):
            if trade.justopened:
                self.entries.append(len(self.data) - 1)
            if trade.isclosed:
                self.exits.append(len(self.data) - 1)

        def next(self):
            super().next()
            self.values.append(self.broker.getvalue())

    Recording.__name__ = f"Recording{strategy.__name__}"
    return Recording


def run_backtrader(strategy, frame, *, commission=COMMISSION, **params):
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame))
    cerebro.broker.setcash(CASH)
    cerebro.broker.setcommission(commission=commission)
    cerebro.broker.set_checksubmit(False)
    cerebro.addstrategy(strategy, **params)
    strat = cerebro.run()[0]
    return strat, cerebro.broker.getvalue()


def assert_same_execution(vec, strat, final, start):
    fills = np.array(strat.fills, dtype="float64").reshape(-1, 4)
    assert vec["trades"] == len(strat.entries)
    np.testing.assert_array_equal(vec["entries"], strat.entries)
    np.testing.assert_array_equal(vec["exits"], strat.exits)
    np.testing.assert_array_equal(vec["fills"]["bar"], fills[:, 0])
    # Backtrader averages a flip's two legs into one price: equal up to rounding.
    np.testing.assert_allclose(vec["fills"]["price"], fills[:, 2], rtol=1e-14)
    np.testing.assert_allclose(vec["fills"]["size"], fills[:, 1], rtol=1e-9)
    np.testing.assert_allclose(vec["fills"]["commission"], fills[:, 3], rtol=1e-9)
    np.testing.assert_allclose(vec["equity"], strat.values[start:], rtol=1e-9)
    assert vec["final_value"] == pytest.approx(final, rel=1e-6)


@pytest.fixture(scope="module")
def market():
    return sample_market(bars=6000, seed=3)


@pytest.mark.parametrize(
    "strategy, params",
    [
        (RidgeLags, {"alpha": 0.1, "long_threshold": 0.02, "short_threshold": -0.02}),
        (RidgeLags, {"alpha": 1.0, "long_threshold": 0.0, "allow_short": False}),
        (LogitLags, {"long_threshold": 0.51, "short_threshold": 0.49}),
    ],
    ids=["ridge-long-short", "ridge-long-only", "logistic-long-short"],
)
def test_backtrader_and_vectorised_agree_trade_for_trade(market, strategy, params):
    fitted = strategy.fit_model(market, params=params, end=SPLIT)
    vec = strategy.vectorised(market, fitted, params=params, start=SPLIT)
    strat, final = run_backtrader(recording(strategy), market.frame, fitted=fitted,
                                  trade_start=SPLIT, **params)
    assert vec["trades"] > 50
    if not params.get("allow_short", True):
        assert (vec["fills"]["bar"].size == 0) or (vec["positions"] >= 0).all()
    else:
        assert (vec["positions"] < 0).any()
    assert_same_execution(vec, strat, final, SPLIT)


def test_backtrader_fits_itself_on_the_bars_before_trade_start(market):
    params = {"alpha": 0.1, "long_threshold": 0.03, "short_threshold": -0.03}
    vec = RidgeLags.vectorised(market, params=params, start=SPLIT)  # fits on [0, SPLIT)
    when = market.frame.index[SPLIT]  # a time works as well as a position
    strat, final = run_backtrader(recording(RidgeLags), market.frame, trade_start=when,
                                  **params)
    assert strat.fitted_model.trained_on == "candles"
    assert_same_execution(vec, strat, final, SPLIT)


def test_a_long_entry_into_a_gap_is_dropped_in_both_executions():
    # Opening gaps of +8 %: at fraction 0.95 a long bought at such an open costs more than
    # the cash, and Backtrader drops the opening part of the order (it keeps the target).
    rng = np.random.default_rng(5)
    n = 400
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    gaps = np.where(rng.random(n) < 0.15, 1.08, 1.0)
    gaps[0] = 1.0
    open_ = np.concatenate(([100.0], close[:-1])) * gaps
    frame = pd.DataFrame(
        {"open": open_, "high": np.maximum(open_, close) * 1.002,
         "low": np.minimum(open_, close) * 0.998, "close": close,
         "volume": rng.uniform(1, 2, n)},
        index=pd.date_range("2021-01-01", periods=n, freq="1h", tz="UTC"),
    )
    script = np.repeat(rng.choice([-1.0, 0.0, 1.0], n), 2)[:n]
    Scripted.script = script
    try:
        fitted = Scripted.fit_model(frame, end=50)
        vec = Scripted.vectorised(frame, fitted, start=50)
        strat, final = run_backtrader(recording(Scripted), frame, fitted=fitted, trade_start=50)
    finally:
        Scripted.script = np.zeros(0)
    target = script[50:]
    changes = np.flatnonzero(target != np.concatenate(([0.0], target[:-1])))
    openings = int((target[changes[changes < len(target) - 1]] != 0).sum())
    assert vec["trades"] < openings  # some entries were dropped...
    assert vec["trades"] > 20  # ...and many were not
    assert_same_execution(vec, strat, final, 50)


def test_simulate_matches_a_hand_computed_equity_path():
    opens = [100.0, 100.0, 110.0, 120.0, 100.0, 90.0]
    closes = [100.0, 105.0, 115.0, 110.0, 95.0, 100.0]
    targets = [1, 1, -1, 0, 0, 1]  # the last signal has no next open: it never fills
    c, f = 0.01, 0.5
    out = simulate((opens, closes), targets, cash=1000.0, commission=c, fraction=f)

    units1 = f * 1000 / 100  # bought at bar 1's open for the signal at bar 0's close
    cash1 = 1000 - units1 * 100 * (1 + c)
    value2 = cash1 + units1 * 115  # the flip is sized at bar 2's close...
    units3 = -f * value2 / 115
    cash3 = cash1 + (units1 - units3) * 120 * (1 - c)  # ...and sold at bar 3's open
    value3 = cash3 + units3 * 110
    cash4 = cash3 + units3 * 100 * (1 + c)  # bought back at bar 4's open: flat
    expected = [1000, cash1 + units1 * 105, value2, value3, cash4, cash4]
    np.testing.assert_allclose(out["equity"], expected, rtol=1e-12)
    assert out["final_value"] == pytest.approx(cash4, rel=1e-12)
    assert out["score"] == pytest.approx(math.log(cash4 / 1000), rel=1e-12)
    assert out["trades"] == 2
    np.testing.assert_array_equal(out["entries"], [1, 3])
    np.testing.assert_array_equal(out["exits"], [3, 4])
    np.testing.assert_array_equal(out["fills"]["bar"], [1, 3, 4])
    np.testing.assert_allclose(out["fills"]["size"], [units1, units3 - units1, -units3])
    assert out["exposure"] == pytest.approx(3 / 6)

    # Starting later: earlier targets are ignored and the run starts flat with its cash.
    late = simulate((opens, closes), targets, cash=1000.0, commission=c, fraction=f,
                    start_index=3)
    np.testing.assert_allclose(late["equity"], [1000.0, 1000.0, 1000.0])
    assert late["trades"] == 0

    # A long entry into an opening gap beyond what the cash can pay is dropped.
    gap = simulate(([100.0, 110.0, 110.0], [100.0, 110.0, 110.0]), [1, 1, 1], cash=1000.0,
                   commission=0.001, fraction=0.95)
    assert gap["trades"] == 0 and gap["final_value"] == 1000.0


def test_positions_from_predictions():
    pred = np.array([np.nan, -0.2, -0.01, 0.0, 0.01, 0.2])
    both = positions_from_predictions(pred, long_threshold=0.05, short_threshold=-0.05,
                                      allow_short=True)
    np.testing.assert_array_equal(both, [0, -1, 0, 0, 0, 1])
    long_only = positions_from_predictions(pred, long_threshold=0.0, short_threshold=0.0,
                                           allow_short=False)
    np.testing.assert_array_equal(long_only, [0, 0, 0, 0, 1, 1])
    with pytest.raises(InputError, match="above long_threshold"):
        positions_from_predictions(pred, long_threshold=0.0, short_threshold=0.1,
                                   allow_short=True)


def test_fit_on_points_and_on_candles_give_the_same_model_type(market):
    fs = make_features(market)
    X, target = fs.X.to_numpy(), fs.target.to_numpy()
    rows = np.arange(300, SPLIT - 1)  # the last target inside [300, SPLIT) uses close[SPLIT - 1]
    scaler = Standardizer().fit(X[rows])
    Z, scale = scaler.transform(X[rows]), float(np.std(target[rows]))
    stats = {"mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist()}
    params = {"alpha": 0.1}

    real = RidgeLags.fit_model(market, params=params, start=300, end=SPLIT)
    points = RidgeLags.fit_model_on_points(Z, target[rows] / scale, params=params,
                                           feature_names=fs.names, scaler_stats=stats,
                                           target_scale=scale)
    assert type(real) is FittedModel and type(points) is FittedModel
    assert (real.trained_on, points.trained_on) == ("candles", "points")
    assert real.n_train == points.n_train == len(rows)
    # Every training row as a "point": both paths must learn exactly the same model.
    np.testing.assert_allclose(points.estimator.coef_, real.estimator.coef_, rtol=1e-9)
    np.testing.assert_allclose(points.signal(market), real.signal(market), rtol=1e-9,
                               atol=1e-12, equal_nan=True)

    def distilled_stand_in(seed):
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(rows), 200, replace=False)
        weight = rng.random(200)
        # Regression points serve a direction strategy as y > 0.
        return LogitLags.fit_model_on_points(Z[pick], target[rows][pick] / scale, weight,
                                             feature_names=fs.names, scaler_stats=stats,
                                             task="regression")

    first, again, other = distilled_stand_in(1), distilled_stand_in(1), distilled_stand_in(2)
    runs = [LogitLags.vectorised(market, m, start=SPLIT, feature_set=fs)
            for m in (first, again, other)]
    np.testing.assert_array_equal(runs[0]["equity"], runs[1]["equity"])
    assert runs[0]["final_value"] == runs[1]["final_value"]
    assert not np.array_equal(runs[0]["positions"], runs[2]["positions"])
    assert runs[0]["trades"] > 0


def test_exact_linear_distilled_points_reproduce_the_real_fit():
    # The screen's path end to end: prepare → distil → fit on the set's points. The exact
    # linear distiller keeps the training second moments, so a ridge on any subset of the
    # features learns exactly what it learns on the real training period.
    from distillbt.distill.prepare import prepare
    from distillbt.distill.runner import distill

    candles = sample_market(bars=4000, seed=3)
    data = prepare(candles)
    distilled = distill(data, method="exact-linear", task="regression", per_regime=False,
                        n_jobs=1, backend="threading")
    train = data.parts["train"]
    # Training rows t0..t1 with their next-candle targets: the candles up to the row after t1.
    first, after_last = data.times[train.start], data.times[train.stop]
    params = {"alpha": 0.1}
    screen = RidgeLags.fit_model_on_distilled(distilled, params=params)
    full = RidgeLags.fit_model(candles, params=params, start=first, end=after_last)
    assert (screen.n_train, full.n_train) == (len(distilled.X), train.stop - train.start)
    np.testing.assert_allclose(screen.estimator.coef_, full.estimator.coef_, rtol=1e-9)
    np.testing.assert_allclose(screen.signal(candles), full.signal(candles), rtol=1e-9,
                               atol=1e-12, equal_nan=True)
    assert screen.target_scale == pytest.approx(full.target_scale, rel=1e-12)


def test_positions_at_t_ignore_candles_after_t(market):
    params = {"alpha": 0.1, "long_threshold": 0.02, "short_threshold": -0.02}
    fitted = RidgeLags.fit_model(market, params=params, end=SPLIT)
    base = RidgeLags.vectorised(market, fitted, params=params, start=SPLIT)
    t = 4500
    frame = market.frame.copy()
    rng = np.random.default_rng(0)
    after = frame.index > frame.index[t]
    # Reshape the future: a random walk of price factors (candle invariants still hold) and
    # random volumes.
    factor = np.exp(np.cumsum(rng.normal(0, 0.02, after.sum())))
    for col in ("open", "high", "low", "close"):
        frame.loc[after, col] = frame.loc[after, col] * factor
    frame.loc[after, "volume"] = rng.uniform(1, 1000, after.sum())
    moved = RidgeLags.vectorised(frame, fitted, params=params, start=SPLIT)
    upto = t - SPLIT + 1
    np.testing.assert_array_equal(moved["positions"][:upto], base["positions"][:upto])
    np.testing.assert_array_equal(moved["equity"][:upto], base["equity"][:upto])
    assert not np.array_equal(moved["positions"], base["positions"])  # the future did change
    # Fitting reads nothing at or after its end either.
    frame.loc[frame.index >= frame.index[SPLIT], "close"] *= 1.5
    frame["high"] = frame[["open", "high", "close"]].max(axis=1)
    refit = RidgeLags.fit_model(frame, params=params, end=SPLIT)
    np.testing.assert_array_equal(refit.estimator.coef_, fitted.estimator.coef_)


def test_mistakes_raise_input_errors(market):
    with pytest.raises(InputError, match="no param 'alhpa'"):
        RidgeLags.fit_model(market, params={"alhpa": 1.0}, end=SPLIT)
    fitted = RidgeLags.fit_model(market, params={"alpha": 0.1}, end=SPLIT)
    with pytest.raises(InputError, match="fitted for"):
        RidgeLags.vectorised(market, fitted, params={"alpha": 1.0}, start=SPLIT)
    with pytest.raises(InputError, match="give a fitted model"):
        RidgeLags.vectorised(market)
    with pytest.raises(InputError, match="lack"):
        RidgeLags.fit_model_on_points(np.zeros((3, 2)), np.zeros(3),
                                      feature_names=("ret_1", "ret_2"),
                                      scaler_stats={"mean": [0, 0], "scale": [1, 1]})
    with pytest.raises(InputError, match="needs fitted"):
        run_backtrader(RidgeLags, market.frame.iloc[:400])


def _load(path: Path):
    # Registered in sys.modules before use: Backtrader looks a strategy's module up there.
    name = f"_model_strategy_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return [obj for obj in vars(module).values()
            if isinstance(obj, type) and issubclass(obj, ModelStrategy) and obj.__module__ == name]


@pytest.fixture(scope="module")
def small_market():
    return sample_market(bars=3000, seed=11)


@pytest.mark.parametrize("filename", MODEL_STRATEGY_FILES)
def test_strategy_file_loads_and_runs_every_configuration(filename, small_market):
    classes = _load(STRATEGIES / filename)
    assert len(classes) == 1
    strategy = classes[0]
    assert strategy.__doc__ and strategy.grid
    fs = make_features(small_market)
    models = {}
    for params in strategy.configurations():
        key = strategy.fit_key(params)
        if key not in models:
            models[key] = strategy.fit_model(small_market, params=params, end=1500)
        out = strategy.vectorised(small_market, models[key], params=params, start=1500,
                                  feature_set=fs)
        assert np.isfinite(out["score"]) and len(out["equity"]) == 1500
    # The screen's path: fitted on (stand-in) distilled points, run over real candles.
    rows = np.arange(300, 1499)
    X = fs.X.to_numpy()[rows]
    scaler = Standardizer().fit(X)
    pick = np.random.default_rng(0).choice(len(rows), 100, replace=False)
    y = fs.target.to_numpy()[rows][pick]
    params = strategy.configurations()[0]
    model = strategy.fit_model_on_points(scaler.transform(X)[pick], y / y.std(),
                                         np.full(100, 0.01), params=params,
                                         feature_names=fs.names, scaler_stats=scaler,
                                         task="regression")
    out = strategy.vectorised(small_market, model, params=params, start=1500)
    assert np.isfinite(out["score"])
    assert bool(model.notes) == (model.horizon != 1)


def test_the_strategy_files_hold_at_least_sixty_configurations():
    total = sum(len(cls.configurations()) for name in MODEL_STRATEGY_FILES
                for cls in _load(STRATEGIES / name))
    assert total >= 60


def test_fit_model_reads_precomputed_features_as_the_candles_give_them(market):
    frame = market.frame
    end = len(frame) * 2 // 3
    table = make_features(frame, **RidgeLags.configure({}).feature_spec()[1]).X  # every candle, past only
    own = RidgeLags.fit_model(frame, end=end)
    shared = RidgeLags.fit_model(frame, end=end, feature_set=table)
    np.testing.assert_array_equal(own.scaler.mean_, shared.scaler.mean_)
    np.testing.assert_array_equal(own.signal(frame, feature_set=table), shared.signal(frame, feature_set=table))
    with pytest.raises(InputError, match="fewer than"):
        RidgeLags.fit_model(frame, end=end, feature_set=table.iloc[: end - 1])


class CountingRidge(Ridge):
    """distillbt's Ridge counting its predictions (class-level, reset by the test)."""

    predictions = 0

    def predict(self, X):
        type(self).predictions += 1
        return super().predict(X)


class ClippingRule(ModelStrategy):
    """A rule that writes into the predictions it is given (an author may)."""

    params = (("cap", 0.0),)
    rule_params = RULE_PARAMS + ("cap",)
    features = ("ret_1", "ret_4", "vol_16")
    estimator = CountingRidge

    def position_rule(self, prediction):
        np.clip(prediction, None, self.p.cap, out=prediction)  # in place, on purpose
        return np.where(np.isfinite(prediction), np.sign(prediction - self.p.cap / 2), 0.0)


def test_rule_variants_of_one_model_predict_once_with_a_memo_and_score_as_without(market):
    fitted = ClippingRule.fit_model(market, end=SPLIT)
    table = make_features(market).X
    variants = [{"cap": 0.001}, {"cap": 0.01}, {"cap": 0.001}]
    CountingRidge.predictions = 0
    alone = [ClippingRule.vectorised(market, fitted, params=p, start=SPLIT, feature_set=table) for p in variants]
    assert CountingRidge.predictions == 3
    memo = {}
    CountingRidge.predictions = 0
    shared = [ClippingRule.vectorised(market, fitted, params=p, start=SPLIT, feature_set=table, signals=memo)
              for p in variants]
    assert CountingRidge.predictions == 1
    for a, b in zip(alone, shared):
        np.testing.assert_array_equal(a["equity"], b["equity"])
    assert alone[0]["final_value"] != alone[1]["final_value"]  # the variants differ: the memo kept them apart
    # another start is another prediction
    ClippingRule.vectorised(market, fitted, params=variants[0], start=SPLIT + 100, feature_set=table, signals=memo)
    assert CountingRidge.predictions == 2
