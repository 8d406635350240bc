"""Model strategies: a Backtrader strategy whose decisions come from a fitted model.

An author writes a small subclass of :class:`ModelStrategy` that declares what the model sees,
what it learns and how a prediction becomes a position::

    from distillbt.models import Ridge
    from distillbt.strategy import ModelStrategy

    class RidgeMomentum(ModelStrategy):
        '''Ridge on recent returns and moving-average distances.'''

        params = (("alpha", 0.1), ("long_threshold", 0.02), ("short_threshold", -0.02))
        grid = {"alpha": [0.01, 0.1, 1.0], "long_threshold": [0.0, 0.02]}
        features = ("ret_1", "ret_4", "vol_16", "ma_dist_64")   # names from make_features
        target = "return"                                        # or "direction"
        horizon = 1                                              # candles ahead

        def make_estimator(self):
            return Ridge(alpha=self.p.alpha)

The same class runs two ways that agree trade for trade (``tests/test_model_strategy.py``):

- **inside Backtrader** (full backtests): pass a :class:`FittedModel` as the ``fitted``
  param (``cerebro.addstrategy(RidgeMomentum, fitted=model, alpha=0.1)``), or give a
  ``trade_start`` and no model: the strategy then fits itself at ``start`` on the feed's bars
  before ``trade_start`` (past bars only). Each bar's decision comes from
  :class:`~distillbt.live_features.ModelSignal`, an indicator that computes the features
  from the bars Backtrader has delivered so far with a second implementation of their
  definitions (never :func:`~distillbt.features.make_features`, never the preloaded future),
  predicts with the fitted model and applies ``position_rule``; ``next`` places the order.
  It runs in numpy batches in ``runonce`` mode and one bar at a time otherwise, with the
  same values. So the agreement of the two executions checks the features' causality too:
  a look-ahead in ``make_features`` would make them disagree (``tests/test_live_execution.py``
  plants one).
- **vectorised** (the screen): :meth:`ModelStrategy.vectorised` runs features → predictions →
  targets → :func:`~distillbt.vectorised.simulate`, which replays Backtrader's fills.

Execution conventions (shared with the full-backtest engine): a target in ``{-1, 0, +1}`` is
decided at each bar's close; when it changes, one market order of
``target × fraction × broker value / close − units held`` fills at the next open;
``cerebro.broker.setcommission(commission=c)``, ``set_checksubmit(False)``; a position open
at the end is marked to the last close. Only ``self.data`` (the first feed) is traded.

A screen fits each model once on distilled points and runs every configuration vectorised
(configurations that differ only in rule params share a model, see ``fit_key``)::

    fs = make_features(candles)                       # once; models' feature_options agree
    models = {}
    for params in RidgeMomentum.configurations():
        key = RidgeMomentum.fit_key(params)
        if key not in models:
            models[key] = RidgeMomentum.fit_model_on_distilled(distilled, params=params)
        result = RidgeMomentum.vectorised(candles, models[key], params=params,
                                          start=screen_start, end=screen_end, feature_set=fs)
        result["score"]                               # log(final value / cash)

Hooks (overridable methods; they read params through ``self.p`` as in any Backtrader
strategy, and outside Backtrader they are called on a stand-in that has the class's
attributes and the resolved params, see :meth:`ModelStrategy.configure`):

- ``feature_spec()`` → ``(feature names, make_features options)``; default: the class
  attributes ``features`` and ``feature_options``;
- ``make_estimator()`` → an unfitted estimator (``fit(X, y[, sample_weight])`` and
  ``predict``; ``predict_proba`` is used for ``target = "direction"`` when present);
  default: the class attribute ``estimator`` (a factory called with no argument, or an
  estimator object that is deep-copied);
- ``target_horizon()`` → candles ahead of the target; default: a ``horizon`` param if the
  class declares one, else the class attribute ``horizon``;
- ``position_rule(prediction)`` → targets; default
  :func:`~distillbt.vectorised.positions_from_predictions` with the params
  ``long_threshold``, ``short_threshold``, ``allow_short``.

Targets and units. ``target = "return"``: the model learns the log return over the next
``horizon`` candles divided by its standard deviation over the training rows (the distilled
sets' convention, so both fitting paths learn the same thing); predictions, and the
thresholds, are in those standard deviations. ``target = "direction"``: the model learns
1 (that return > 0) or 0; predictions are probabilities of 1 (thresholds around 0.5).

Layout: this module holds the author-facing class (params, hooks, configurations) and its
Backtrader runtime; the fitting (:class:`FittedModel`, :data:`TARGETS`, re-exported here) lives
in :mod:`distillbt.fitting` and the vectorised run in :mod:`distillbt.vectorised_run`, which
the classmethods below delegate to.
"""

from __future__ import annotations

import copy
import datetime as _dt
import inspect
import itertools
from collections.abc import Mapping
from types import MappingProxyType, MethodType, SimpleNamespace

import backtrader as bt
import numpy as np
import pandas as pd

from . import fitting
from .data.candles import COLUMNS
from .errors import InputError
from .features import FeatureSet
from .fitting import TARGETS, FittedModel, check_fitted
from .live_features import ModelSignal
from .vectorised import positions_from_predictions
from .vectorised_run import run_vectorised

__all__ = ["ModelStrategy", "FittedModel", "RULE_PARAMS", "TARGETS"]

#: Params that act on the rule or the run, not on the fit: configurations differing only in
#: these share one fitted model (see :meth:`ModelStrategy.fit_key`).
RULE_PARAMS: tuple[str, ...] = (
    "fitted", "long_threshold", "short_threshold", "allow_short", "fraction", "trade_start",
)


class _Config:
    """A strategy class with resolved params: what the hooks see outside Backtrader.

    ``p`` / ``params`` hold every param (defaults overlaid with the given values); other
    attributes come from the class, with plain methods bound to this object, so a hook
    written as ``def make_estimator(self): return Ridge(alpha=self.p.alpha)`` works the same
    here and on a live strategy instance.
    """

    def __init__(self, cls, values: dict):
        self._cls = cls
        self.p = self.params = SimpleNamespace(**values)

    def __getattr__(self, name):
        raw = inspect.getattr_static(self._cls, name)
        if inspect.isfunction(raw):
            return MethodType(raw, self)
        return getattr(self._cls, name)

    def __repr__(self) -> str:
        return f"<{self._cls.__name__} config {vars(self.p)}>"


class ModelStrategy(bt.Strategy):
    """Base class of strategies that trade a fitted model's predictions (module docstring).

    Params
    ------
    fitted : FittedModel or None
        The model, fitted before the run (for this strategy and these fit params: same
        ``fit_key``, features, target and horizon). None: the strategy fits itself at start
        on the feed's candles before ``trade_start`` (which must then be > 0).
    long_threshold, short_threshold : float
        Long above ``long_threshold``, short below ``short_threshold``, flat in between.
    allow_short : bool
        False: long or flat only.
    fraction : float
        Share of the broker value a position takes (0.95).
    trade_start : int or timestamp
        First bar (position in the feed, or its time) whose signal may trade; earlier bars
        only warm the features up. Default 0. A time needs a preloaded feed; with a
        ``fitted`` model and a position, bar-by-bar runs need no preload.
    horizons : tuple of str
        Longer candle intervals (e.g. ``("1h", "4h")``) at which the model is fitted too; the
        strategy then trades the mean prediction of all of them (:mod:`distillbt.horizons`;
        ``fitted`` is then a :class:`~distillbt.horizons.FittedEnsemble`). Default: none.

    Class attributes
    ----------------
    features, feature_options, estimator, target, horizon, clip
        What the default hooks read (``clip``: clip standardised features to ±clip).
    grid : dict of lists
        Param values the screen combines into configurations (:meth:`configurations`).
    rule_params : tuple of str
        Params that do not change the fit (defaults to :data:`RULE_PARAMS`; extend it for
        params of your own ``position_rule``).

    Attributes (inside Backtrader, from ``start``)
    ----------------------------------------------
    fitted_model : FittedModel
        The model the run trades.
    model_signal : distillbt.live_features.ModelSignal
        The indicator computing each bar's features, prediction and target from the bars
        delivered so far (its line ``target``).
    """

    params = (
        ("fitted", None),
        ("long_threshold", 0.0),
        ("short_threshold", 0.0),
        ("allow_short", True),
        ("fraction", 0.95),
        ("trade_start", 0),
        ("horizons", ()),
    )

    features: tuple[str, ...] = ()
    feature_options: Mapping = MappingProxyType({})
    estimator = None
    target: str = "return"
    horizon: int = 1
    clip: float | None = None
    grid: Mapping = MappingProxyType({})
    rule_params: tuple[str, ...] = RULE_PARAMS

    # -- hooks ------------------------------------------------------------------------------
    def feature_spec(self) -> tuple[tuple[str, ...], dict]:
        """Feature names and ``make_features`` options; override to depend on params."""
        return tuple(self.features), dict(self.feature_options)

    def make_estimator(self):
        """A fresh, unfitted estimator; override to depend on params (``self.p``)."""
        # Read the attribute off the class: a factory function stored there must not be bound.
        cls = self._cls if isinstance(self, _Config) else type(self)
        factory = inspect.getattr_static(cls, "estimator")
        if isinstance(factory, (staticmethod, classmethod)):
            factory = factory.__get__(None, cls)
        if factory is None:
            raise InputError(
                f"{_name(self)} declares no estimator: set `estimator` or define make_estimator()"
            )
        if isinstance(factory, type) or not hasattr(factory, "fit"):
            return factory()
        return copy.deepcopy(factory)  # an estimator object: each fit gets its own copy

    def target_horizon(self) -> int:
        """Candles ahead of the target: a ``horizon`` param if declared, else ``horizon``."""
        return getattr(self.p, "horizon", self.horizon)

    def position_rule(self, prediction) -> np.ndarray:
        """Targets in ``{-1, 0, +1}`` from one prediction per bar.

        Must be causal: a row's target may read that row's and earlier predictions only.
        Inside Backtrader it is given the predictions from the first bar up to the newest
        one (see :class:`~distillbt.live_features.ModelSignal`)."""
        return positions_from_predictions(
            prediction,
            long_threshold=self.p.long_threshold,
            short_threshold=self.p.short_threshold,
            allow_short=bool(self.p.allow_short),
        )

    # -- configurations ---------------------------------------------------------------------
    @classmethod
    def configure(cls, params: Mapping | None = None) -> _Config:
        """The class with its params resolved (defaults overlaid with ``params``).

        Unknown names raise :class:`~distillbt.errors.InputError`. The result is what the
        hooks receive as ``self`` outside Backtrader.
        """
        values = dict(cls.params._getitems())
        for name, value in (params or {}).items():
            if name not in values:
                raise InputError(
                    f"{cls.__name__} has no param {name!r}; params: {', '.join(values)}"
                )
            if name == "horizons" and isinstance(value, list):
                value = tuple(value)  # hashable: it is part of the fit key
            values[name] = value
        return _Config(cls, values)

    @classmethod
    def configurations(cls) -> list[dict]:
        """Every combination of the ``grid`` values, as params dicts (``[{}]`` without a grid)."""
        grid = dict(cls.grid or {})
        known = set(cls.params._getkeys())
        for name, values in grid.items():
            if name not in known:
                raise InputError(f"{cls.__name__}.grid names {name!r}, which is not a param")
            if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
                raise InputError(f"{cls.__name__}.grid[{name!r}] must be a list of values")
        names = list(grid)
        combos = itertools.product(*(list(grid[name]) for name in names))
        return [dict(zip(names, combo)) for combo in combos]

    @classmethod
    def fit_key(cls, params: Mapping | None = None) -> tuple:
        """The params that shape the fit, as a sorted tuple of pairs.

        Configurations with the same key can share one :class:`FittedModel` (a threshold grid
        needs one fit per model, not one per threshold). The key holds params only: two
        strategies with the same fit params have the same key, so a cache of models shared
        by several strategies must key on the class too (a model of another strategy is
        refused wherever a fitted model is passed: its features, target or horizon differ).
        """
        values = vars(cls.configure(params).p)
        return tuple(sorted((k, v) for k, v in values.items() if k not in cls.rule_params))

    # -- fitting (distillbt.fitting) --------------------------------------------------------
    @classmethod
    def fit_model(cls, candles, *, params: Mapping | None = None, start=None, end=None,
                  sample_weight=None, feature_set: FeatureSet | pd.DataFrame | None = None) -> FittedModel:
        """Fit on the real candles ``start..end``: rows whose target ends inside that period.

        ``start``/``end`` select candles as pandas does: positions like ``iloc[start:end]``
        (end excluded), times like ``loc[start:end]`` (both included, as the full-backtest
        engine reads them); None means from the first / to the last candle. Features are
        computed from the candles up to ``end`` only (earlier candles are their warm-up) and
        the target of row ``t`` is the log return from ``close[t]`` to ``close[t + horizon]``,
        so the period's last ``horizon`` rows have none: no candle after ``end`` is read. The
        scaler's statistics come from the training rows only. ``sample_weight``: one weight
        per candle (only the training rows' are used). ``feature_set``: features of the same
        candles computed once (as :meth:`vectorised`'s), of at least the candles up to
        ``end``; only its rows before ``end`` are read, which are the same as from the candles
        up to ``end`` since every feature uses the past only.
        """
        return fitting.fit_model(cls, candles, params=params, start=start, end=end,
                                 sample_weight=sample_weight, feature_set=feature_set)

    @classmethod
    def fit_model_on_points(cls, X, y, weight=None, *, params: Mapping | None = None,
                            feature_names, scaler_stats, feature_options: Mapping | None = None,
                            task: str | None = None, target_scale: float | None = None,
                            target_horizon: int = 1, n_rows: int | None = None,
                            seed: int = 0) -> FittedModel:
        """Fit on distilled points (standardised features), giving the same model type.

        Parameters
        ----------
        X : array (M, D)
            Points in the standardised feature space of ``feature_names``.
        y : array (M,)
            Scaled next-candle returns (``task="regression"``) or 0/1 directions (soft labels
            allowed) (``task="classification"``).
        weight : array (M,) or None
            Point weights (a distilled set's sum to 1). They reach the estimator as
            :func:`distillbt.estimators.fit_estimator` says: summing to ``n_rows`` for
            estimators whose penalty is weighed against a sum of losses (scikit-learn's
            ``Ridge``, ``LogisticRegression``…), so ``alpha``/``C`` mean what they mean on the
            real rows; of mean 1 otherwise; rows resampled by weight for an estimator whose
            ``fit`` takes no ``sample_weight``. A classifier given soft labels gets each point
            as a y=1 and a y=0 row weighted by its probability.
        feature_names : sequence of str
            Names of the D columns; the strategy picks its own, which must be among them.
        scaler_stats : Standardizer or mapping with ``mean`` and ``scale``
            The statistics the points were standardised with (D values each): candles are
            standardised with them before predicting.
        feature_options : mapping or None
            ``make_features`` options the points' features were computed with (default:
            :data:`~distillbt.features.FEATURE_DEFAULTS`); the model computes its features
            with them, so a name means what it meant for the points.
        task : str or None
            The points' task; None: the one the strategy's target needs. Regression points
            serve a ``"direction"`` strategy as ``y > 0``; direction points cannot serve a
            ``"return"`` strategy.
        target_scale : float or None
            The return scale the regression targets were divided by (kept for reports).
        target_horizon : int
            Candles ahead of the points' targets. A strategy with another horizon learns
            these targets instead, and the model's ``notes`` say so.
        n_rows : int or None
            Real training rows the points stand for (a distilled set's ``meta["n_rows"]``);
            None: as many as points.
        seed : int
            Seeds the resampling of an estimator that takes no weights.
        """
        return fitting.fit_model_on_points(
            cls, X, y, weight, params=params, feature_names=feature_names,
            scaler_stats=scaler_stats, feature_options=feature_options, task=task,
            target_scale=target_scale, target_horizon=target_horizon, n_rows=n_rows, seed=seed,
        )

    @classmethod
    def fit_model_on_distilled(cls, distilled, *, params: Mapping | None = None,
                               timeframe: str | None = None) -> FittedModel:
        """:meth:`fit_model_on_points` with the points and header of a
        :class:`~distillbt.distill.artifact.DistilledSet` (``X``, ``y``, ``weight``, ``meta``).

        ``timeframe``: the interval of the candles the model will trade; a multi-horizon set
        gives the part of that interval (required when the set has several parts)."""
        return fitting.fit_model_on_distilled(cls, distilled, params=params, timeframe=timeframe)

    # -- the vectorised execution (distillbt.vectorised_run) --------------------------------
    @classmethod
    def vectorised(cls, candles, fitted: FittedModel | None = None, *,
                   params: Mapping | None = None, cash: float = 10_000.0,
                   commission: float = 0.001, start=None, end=None,
                   feature_set: FeatureSet | pd.DataFrame | None = None, slippage: float = 0.0,
                   signals: dict | None = None) -> dict:
        """Run the strategy over the candles ``start..end`` without Backtrader, as it would.

        Features are computed over the candles up to ``end`` (the bars before ``start`` are their
        warm-up), predictions become targets with ``position_rule``, and
        :func:`~distillbt.vectorised.simulate` replays the fills from ``start`` on. The result
        equals a Backtrader run of this class with ``fitted`` and ``params`` on a feed of
        the candles up to ``end`` with ``trade_start=start``.

        ``start``/``end``: positions (``iloc``-like, end excluded) or times (``loc``-like,
        end included), as in :meth:`fit_model`; ``start`` defaults to the ``trade_start``
        param. ``fitted`` None fits on the candles before ``start``
        (:meth:`fit_model`). ``feature_set``: precomputed features of all of ``candles``
        (see :meth:`FittedModel.signal`). ``slippage``: as the full backtest's
        (:func:`~distillbt.vectorised.simulate`). ``signals``: a dict kept by a caller that
        runs several configurations sharing one fitted model (rule variants) on the same
        ``candles`` and ``feature_set`` objects: the model predicts once, the rules read copies.

        Returns :func:`~distillbt.vectorised.simulate`'s dict plus ``start`` and ``end``.
        """
        return run_vectorised(cls, candles, fitted, rowwise=_rowwise(cls), params=params,
                              cash=cash, commission=commission, start=start, end=end,
                              feature_set=feature_set, slippage=slippage, signals=signals)

    # -- inside Backtrader ------------------------------------------------------------------
    def start(self):
        cls = type(self)
        values = {name: getattr(self.p, name) for name in self.p._getkeys()}
        first = _trade_start(self.p.trade_start, self.data, self.data.buflen())
        fitted = self.p.fitted
        if fitted is None:
            if first == 0:
                raise InputError(f"{cls.__name__} needs fitted=<FittedModel> (see fit_model) "
                                 f"or a trade_start: the bars before it train the model")
            # Only the bars before trade_start are read (fit_model's end), and a
            # multi-horizon model resamples them: it needs the candles' times.
            frame = _feed_frame(self.data, times=bool(self.p.horizons)).iloc[:first]
            fitted = cls.fit_model(frame, params=values, end=first)
        else:
            check_fitted(cls, fitted, values)
        self.fitted_model = fitted
        self._first = first
        # Decisions come from the bars Backtrader has delivered, never from the preloaded
        # future: see distillbt.live_features. Created here (not in __init__) because the
        # model may only exist now; Backtrader still computes it before the strategy's bars.
        self.model_signal = ModelSignal(self.data, fitted=fitted, rule=self.position_rule,
                                         rowwise=_rowwise(cls))
        self._target_line = self.model_signal.lines.target  # read at every bar
        self._target = 0.0

    def prenext(self):
        # Indicators a subclass adds must not delay the model's decisions.
        self._rebalance()

    def next(self):
        self._rebalance()

    def _rebalance(self):
        # Bars before trade_start only warm the features up.
        target = self._target_line[0] if len(self.data) > self._first else 0.0
        if target == self._target:
            return
        price = self.data.close[0]
        # The same expression, in the same order, as vectorised.simulate.
        size = target * self.p.fraction * self.broker.getvalue() / price - self.position.size
        order = True
        if size > 0:
            order = self.buy(size=size)
        elif size < 0:
            order = self.sell(size=-size)
        # A broker that refuses orders (returns None, or an order already rejected, as
        # distillbt's does during a warm-up) leaves the target unreached: try again at the
        # next close, so the run enters at its first tradable bar as the vectorised run,
        # which starts flat, does.
        if order is True or (order is not None and order.alive()):
            self._target = target


# -- helpers --------------------------------------------------------------------------------
def _rowwise(cls) -> bool:
    """Whether the strategy keeps the default ``position_rule``, which reads each bar's
    prediction alone (an author's rule may read earlier predictions)."""
    return inspect.getattr_static(cls, "position_rule") is ModelStrategy.position_rule


def _name(cfg) -> str:
    cls = cfg._cls if isinstance(cfg, _Config) else type(cfg)
    return cls.__name__


def _feed_frame(data, *, times: bool = False) -> pd.DataFrame:
    """The feed's candles as a frame, read once from its preloaded buffers (indexed by their
    UTC open times with ``times``)."""
    n = data.buflen()
    arrays = {name: getattr(data.lines, name).array for name in COLUMNS}
    if n == 0 or any(len(values) != n for values in arrays.values()):
        raise InputError(
            "ModelStrategy needs a preloaded data feed (Cerebro(preload=True), no exactbars)"
        )
    index = None
    if times:
        # Backtrader's float day numbers, to the millisecond (their float error is ~10 µs)
        days = np.asarray(data.datetime.array, dtype="float64") - _EPOCH_DAYNUM
        index = pd.DatetimeIndex(np.round(days * 86_400_000).astype("int64") * 1_000_000, tz="UTC")
    return pd.DataFrame({name: np.asarray(values, dtype="float64")
                         for name, values in arrays.items()}, index=index)


_EPOCH_DAYNUM = bt.date2num(_dt.datetime(1970, 1, 1))


def _trade_start(value, data, n: int) -> int:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if not 0 <= value <= n:
            raise InputError(f"trade_start {value} is outside the feed's 0..{n} bars")
        return int(value)
    try:
        moment = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise InputError(f"trade_start must be a bar position or a time, not {value!r}") from None
    if moment.tz is not None:
        moment = moment.tz_convert("UTC").tz_localize(None)  # Backtrader keeps naive UTC
    times = np.asarray(data.datetime.array, dtype="float64")
    return int(np.searchsorted(times, bt.date2num(moment.to_pydatetime()), side="left"))
