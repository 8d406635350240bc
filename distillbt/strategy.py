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

- **inside Backtrader** (full backtests): pass a :class:`FittedModel` as the ``fitted`` param
  (``cerebro.addstrategy(RidgeMomentum, fitted=model, alpha=0.1)``). At ``start`` the
  strategy computes the features of every candle of its (preloaded) feed with the same code
  as the vectorised path, predicts all rows at once and turns them into targets; ``next``
  only reads row ``t`` and places the order. Precomputing is as honest as computing bar by
  bar: every feature at row ``t`` uses candles up to ``t`` only and the model predicts each
  row on its own, so nothing after ``t`` can reach the decision at ``t`` (the tests perturb
  the future and check). It is just much faster.
- **vectorised** (the screen): :meth:`ModelStrategy.vectorized` runs features → predictions →
  targets → :func:`~distillbt.vectorized.simulate`, which replays Backtrader's fills.

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
        result = RidgeMomentum.vectorized(candles, models[key], params=params,
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
  :func:`~distillbt.vectorized.positions_from_predictions` with the params
  ``long_threshold``, ``short_threshold``, ``allow_short``.

Targets and units. ``target = "return"``: the model learns the log return over the next
``horizon`` candles divided by its standard deviation over the training rows (the distilled
sets' convention, so both fitting paths learn the same thing); predictions, and the
thresholds, are in those standard deviations. ``target = "direction"``: the model learns
1 (that return > 0) or 0; predictions are probabilities of 1 (thresholds around 0.5).
"""

from __future__ import annotations

import copy
import datetime as _dt
import inspect
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType, MethodType, SimpleNamespace

import backtrader as bt
import numpy as np
import pandas as pd

from .data.candles import COLUMNS
from .errors import InputError
from .features import FEATURE_DEFAULTS, FeatureSet, Standardizer, make_features, ohlcv_frame
from .horizons import FittedEnsemble, check_horizons, frame_timeframe, resampled_frame
from .vectorized import positions_from_predictions, simulate

__all__ = ["ModelStrategy", "FittedModel", "RULE_PARAMS", "TARGETS"]

#: Params that act on the rule or the run, not on the fit: configurations differing only in
#: these share one fitted model (see :meth:`ModelStrategy.fit_key`).
RULE_PARAMS: tuple[str, ...] = (
    "fitted", "long_threshold", "short_threshold", "allow_short", "fraction", "trade_start",
)
#: What a model strategy can learn.
TARGETS: tuple[str, ...] = ("return", "direction")


@dataclass(frozen=True, eq=False)
class FittedModel:
    """A fitted model strategy's model: feature spec, scaler and estimator, as plain objects.

    Built by :meth:`ModelStrategy.fit_model` (real candles) or
    :meth:`ModelStrategy.fit_model_on_points` (distilled points); both give this type and it
    pickles (joblib workers receive it).

    Attributes
    ----------
    strategy : str
        Name of the strategy class it was fitted for.
    fit_key : tuple
        The params that shaped the fit (:meth:`ModelStrategy.fit_key`); a strategy refuses a
        model whose key differs from its own.
    feature_names : tuple of str
        Columns of :func:`~distillbt.features.make_features` the model reads, in order.
    feature_options : dict
        Options of ``make_features`` the features are computed with.
    scaler : Standardizer
        Training mean and scale of those features (and the clip, if any).
    estimator : object
        The fitted estimator.
    target : str
        ``"return"`` or ``"direction"``.
    horizon : int
        Candles ahead of the strategy's target.
    trained_horizon : int
        Candles ahead of the target actually learnt: distilled points hold next-candle
        targets, so a strategy with ``horizon > 1`` learns those instead (see ``notes``).
    target_scale : float
        Standard deviation of the training log return the regression target was divided by
        (NaN when unknown); ``prediction × target_scale`` is a log return.
    trained_on : str
        ``"candles"`` or ``"points"``.
    n_train : int
        Training rows (candles) or points.
    notes : tuple of str
        Anything a report should say about this fit.
    """

    strategy: str
    fit_key: tuple
    feature_names: tuple[str, ...]
    feature_options: dict
    scaler: Standardizer
    estimator: object
    target: str
    horizon: int
    trained_horizon: int
    target_scale: float
    trained_on: str
    n_train: int
    notes: tuple[str, ...] = field(default=())

    def predict(self, X) -> np.ndarray:
        """Predictions for rows of raw (unstandardised) features, columns as ``feature_names``.

        ``"return"``: the scaled return the estimator predicts; ``"direction"``: the
        probability of an up move (``predict_proba``'s column for class 1), or the
        estimator's ``predict`` when it has no ``predict_proba``.
        """
        Z = self.scaler.transform(X)
        estimator = self.estimator
        if self.target == "direction" and hasattr(estimator, "predict_proba"):
            proba = np.asarray(estimator.predict_proba(Z), dtype="float64")
            if proba.ndim == 2:
                classes = list(getattr(estimator, "classes_", range(proba.shape[1])))
                proba = proba[:, classes.index(1) if 1 in classes else proba.shape[1] - 1]
            return proba.reshape(-1)
        return np.asarray(estimator.predict(Z), dtype="float64").reshape(-1)

    def signal(self, candles, *,
               feature_set: FeatureSet | pd.DataFrame | None = None) -> np.ndarray:
        """One prediction per candle (NaN where a feature is not defined yet, e.g. warm-up).

        ``feature_set`` may be a :class:`~distillbt.features.FeatureSet` (or its ``X``)
        computed once from the same candles with ``make_features(candles,
        **feature_options)``, so a screen of many configurations computes features once.
        """
        frame = ohlcv_frame(candles)
        if feature_set is None:
            table = make_features(frame, **self.feature_options).X
        else:
            table = feature_set.X if isinstance(feature_set, FeatureSet) else feature_set
            if len(table) != len(frame):
                raise InputError(
                    f"the feature set has {len(table)} rows but there are {len(frame)} candles"
                )
        X = _columns(table, self.feature_names, who=self.strategy)
        ok = np.isfinite(X).all(axis=1)
        out = np.full(len(frame), np.nan)
        if ok.any():
            out[ok] = self.predict(X[ok])
        return out


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
        The model, fitted before the run. None: the strategy fits itself at start on the
        feed's candles before ``trade_start`` (which must then be > 0).
    long_threshold, short_threshold : float
        Long above ``long_threshold``, short below ``short_threshold``, flat in between.
    allow_short : bool
        False: long or flat only.
    fraction : float
        Share of the broker value a position takes (0.95).
    trade_start : int or timestamp
        First bar (position in the feed, or its time) whose signal may trade; earlier bars
        only warm the features up. Default 0.
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
        """Targets in ``{-1, 0, +1}`` from one prediction per bar (must be causal per row)."""
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
        needs one fit per model, not one per threshold).
        """
        values = vars(cls.configure(params).p)
        return tuple(sorted((k, v) for k, v in values.items() if k not in cls.rule_params))

    # -- fitting ----------------------------------------------------------------------------
    @classmethod
    def fit_model(cls, candles, *, params: Mapping | None = None, start=None, end=None,
                  sample_weight=None) -> FittedModel:
        """Fit on the real candles ``start..end``: rows whose target ends inside that period.

        ``start``/``end`` select candles as pandas does: positions like ``iloc[start:end]``
        (end excluded), times like ``loc[start:end]`` (both included, as the full-backtest
        engine reads them); None means from the first / to the last candle. Features are
        computed from the candles up to ``end`` only (earlier candles are their warm-up) and
        the target of row ``t`` is the log return from ``close[t]`` to ``close[t + horizon]``,
        so the period's last ``horizon`` rows have none: no candle after ``end`` is read. The
        scaler's statistics come from the training rows only. ``sample_weight``: one weight
        per candle (only the training rows' are used).
        """
        cfg = cls.configure(params)
        if cfg.p.horizons:
            if sample_weight is not None:
                raise InputError("sample_weight is per candle of one interval: not with horizons")
            return cls._fit_ensemble(candles, params, start, end)
        names, options = _feature_spec(cfg)
        target, horizon = _target(cfg), _horizon(cfg)
        frame = ohlcv_frame(candles)
        total = len(frame)
        first, stop = _bounds(frame.index, start, end)
        frame = frame.iloc[:stop]
        X = _columns(make_features(frame, **options).X, names, who=cls.__name__)
        log_close = np.log(frame["close"].to_numpy())
        future = np.full(stop, np.nan)
        future[: max(stop - horizon, 0)] = log_close[horizon:] - log_close[:-horizon]
        rows = np.arange(first, stop)
        ok = np.isfinite(X[rows]).all(axis=1) & np.isfinite(future[rows])
        rows = rows[ok]
        if len(rows) < 2:
            raise InputError(
                f"only {len(rows)} training rows between {first} and {stop} after the feature "
                f"warm-up and the {horizon}-candle target: give a longer training period"
            )
        weight = None
        if sample_weight is not None:
            weight = np.asarray(sample_weight, dtype="float64").reshape(-1)
            if len(weight) != total:
                raise InputError(f"sample_weight has {len(weight)} values for {total} candles")
            weight = weight[rows]
        scaler = Standardizer(clip=cfg.clip).fit(X[rows])
        returns = future[rows]
        scale = float(np.std(returns))
        if target == "return":
            if not scale > 0:
                raise InputError("the training returns are all equal: nothing to learn")
            y = returns / scale
        else:
            y = (returns > 0).astype("float64")
        estimator = _fit(cfg.make_estimator(), scaler.transform(X[rows]), y, weight)
        return FittedModel(
            strategy=cls.__name__, fit_key=cls.fit_key(params), feature_names=names,
            feature_options=options, scaler=scaler, estimator=estimator, target=target,
            horizon=horizon, trained_horizon=horizon, target_scale=scale, trained_on="candles",
            n_train=len(rows),
        )

    @classmethod
    def _fit_ensemble(cls, candles, params, start, end) -> FittedEnsemble:
        """One fit per interval (the candles' own and ``horizons``) on the same period."""
        frame = ohlcv_frame(candles)
        base = frame_timeframe(candles)
        horizons = check_horizons(base, cls.configure(params).p.horizons)
        first, stop = _bounds(frame.index, start, end)
        # each interval's model is fitted on its own candles; they are single-interval fits
        single = {**(params or {}), "horizons": ()}
        members = [cls.fit_model(frame, params=single, start=first, end=stop)]
        for tf in horizons:
            coarse = resampled_frame(frame.iloc[:stop], base, tf)
            begin = int(coarse.index.searchsorted(frame.index[first])) if first < stop else len(coarse)
            members.append(cls.fit_model(coarse, params=single, start=begin, end=len(coarse)))
        return _ensemble(cls, params, (base, *horizons), members)

    @classmethod
    def fit_model_on_points(cls, X, y, weight=None, *, params: Mapping | None = None,
                            feature_names, scaler_stats, feature_options: Mapping | None = None,
                            task: str | None = None, target_scale: float | None = None,
                            target_horizon: int = 1) -> FittedModel:
        """Fit on distilled points (standardised features), giving the same model type.

        Parameters
        ----------
        X : array (M, D)
            Points in the standardised feature space of ``feature_names``.
        y : array (M,)
            Scaled next-candle returns (``task="regression"``) or 0/1 directions (soft labels
            allowed) (``task="classification"``).
        weight : array (M,) or None
            Point weights (a distilled set's sum to 1). They are passed to the estimator
            rescaled to mean 1: our learners normalise them anyway; scikit-learn's losses are
            sums, so a point then counts as one row.
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
        """
        cfg = cls.configure(params)
        names, options = _feature_spec(cfg)
        target, horizon = _target(cfg), _horizon(cfg)
        points_options = dict(FEATURE_DEFAULTS if feature_options is None else feature_options)
        available = [str(name) for name in feature_names]
        missing = [name for name in names if name not in available]
        if missing:
            raise InputError(
                f"{cls.__name__} uses {', '.join(missing)}, which the points lack "
                f"(they have {', '.join(available)})"
            )
        for name in names:
            if _definition(name, options) != _definition(name, points_options):
                raise InputError(
                    f"{cls.__name__}'s {name} is computed with other windows than the points' "
                    f"(feature_options differ)"
                )
        points = np.asarray(X, dtype="float64")
        if points.ndim != 2 or points.shape[1] != len(available):
            raise InputError(f"X must have shape (M, {len(available)}), got {points.shape}")
        mean, scale = _scaler_stats(scaler_stats, len(available))
        columns = [available.index(name) for name in names]
        scaler = Standardizer(clip=cfg.clip)
        scaler.mean_, scaler.scale_ = mean[columns], scale[columns]
        scaler.n_features_in_ = len(columns)
        Z = points[:, columns]
        if cfg.clip is not None:
            Z = np.clip(Z, -cfg.clip, cfg.clip)  # the same clip the candles will get

        labels = np.asarray(y, dtype="float64").reshape(-1)
        if len(labels) != len(points):
            raise InputError(f"X has {len(points)} points but y has {len(labels)}")
        task = task or ("regression" if target == "return" else "classification")
        if task not in ("regression", "classification"):
            raise InputError(f"unknown task {task!r}: choose regression or classification")
        if target == "return" and task == "classification":
            raise InputError(
                f"{cls.__name__} predicts returns; direction (0/1) points cannot train it"
            )
        if target == "direction" and task == "regression":
            labels = (labels > 0).astype("float64")
        if target == "direction" and ((labels < 0) | (labels > 1)).any():
            raise InputError("direction targets must lie in [0, 1]")
        w = None
        if weight is not None:
            w = np.asarray(weight, dtype="float64").reshape(-1)
            if len(w) != len(points) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
                raise InputError("weight must be finite, non-negative, one per point, not all zero")
            w = w * (len(w) / w.sum())
        notes = ()
        if horizon != target_horizon:
            notes = (f"trained on {target_horizon}-candle targets in place of {horizon}-candle "
                     f"ones (the points hold no other)",)
        estimator = _fit(cfg.make_estimator(), Z, labels, w)
        return FittedModel(
            strategy=cls.__name__, fit_key=cls.fit_key(params), feature_names=names,
            feature_options=points_options, scaler=scaler, estimator=estimator, target=target,
            horizon=horizon, trained_horizon=int(target_horizon),
            target_scale=float("nan") if target_scale is None else float(target_scale),
            trained_on="points", n_train=len(points), notes=notes,
        )

    @classmethod
    def fit_model_on_distilled(cls, distilled, *, params: Mapping | None = None,
                               timeframe: str | None = None) -> FittedModel:
        """:meth:`fit_model_on_points` with the points and header of a
        :class:`~distillbt.distill.artifact.DistilledSet` (``X``, ``y``, ``weight``, ``meta``).

        ``timeframe``: the interval of the candles the model will trade; a multi-horizon set
        gives the part of that interval (required when the set has several parts)."""
        horizons = cls.configure(params).p.horizons
        if horizons:
            parts = getattr(distilled, "timeframes", None) or []
            if getattr(distilled, "part", None) is None or timeframe is None:
                raise InputError(f"{cls.__name__} with horizons needs a multi-horizon distilled set "
                                 f"(distill --timeframes) and the traded interval (timeframe=)")
            wanted = (timeframe, *check_horizons(timeframe, horizons))
            missing = [tf for tf in wanted if tf not in parts]
            if missing:
                raise InputError(f"the distilled set has no {', '.join(missing)} part (it has {', '.join(parts)})")
            single = {**(params or {}), "horizons": ()}
            members = [cls.fit_model_on_distilled(distilled.part_for(tf), params=single) for tf in wanted]
            return _ensemble(cls, params, wanted, members)
        if getattr(distilled, "part", None) is not None:
            if timeframe is None:
                if len(distilled.timeframes) != 1:
                    raise InputError(f"the distilled set has parts for {', '.join(distilled.timeframes)}: "
                                     "say which with timeframe=")
                timeframe = distilled.timeframes[0]
            distilled = distilled.part_for(timeframe)
        meta = distilled.meta
        try:
            return cls.fit_model_on_points(
                distilled.X, distilled.y, distilled.weight, params=params,
                feature_names=meta["feature_names"], scaler_stats=meta["scaler"],
                feature_options=meta.get("feature_options"), task=meta.get("task"),
                target_scale=meta.get("target_scale"), target_horizon=meta.get("horizon", 1),
            )
        except KeyError as error:
            raise InputError(f"the distilled set's header lacks {error.args[0]!r}") from None

    # -- the vectorised execution -----------------------------------------------------------
    @classmethod
    def vectorized(cls, candles, fitted: FittedModel | None = None, *,
                   params: Mapping | None = None, cash: float = 10_000.0,
                   commission: float = 0.001, start=None, end=None,
                   feature_set: FeatureSet | pd.DataFrame | None = None) -> dict:
        """Run the strategy over the candles ``start..end`` without Backtrader, as it would.

        Features are computed over the candles up to ``end`` (the bars before ``start`` are their
        warm-up), predictions become targets with ``position_rule``, and
        :func:`~distillbt.vectorized.simulate` replays the fills from ``start`` on. The result
        equals a Backtrader run of this class with ``fitted`` and ``params`` on a feed of
        the candles up to ``end`` with ``trade_start=start``.

        ``start``/``end``: positions (``iloc``-like, end excluded) or times (``loc``-like,
        end included), as in :meth:`fit_model`; ``start`` defaults to the ``trade_start``
        param. ``fitted`` None fits on the candles before ``start``
        (:meth:`fit_model`). ``feature_set``: precomputed features of all of ``candles``
        (see :meth:`FittedModel.signal`).

        Returns :func:`~distillbt.vectorized.simulate`'s dict plus ``start`` and ``end``.
        """
        cfg = cls.configure(params)
        frame = ohlcv_frame(candles)
        if start is None:
            start = cfg.p.trade_start
        first, stop = _bounds(frame.index, start, end)
        if first >= stop:
            raise InputError(f"nothing to run: start {first} is not before end {stop}")
        if fitted is None:
            if first == 0:
                raise InputError(
                    "give a fitted model, or a start: the candles before it train the model"
                )
            fitted = cls.fit_model(frame, params=params, end=first)
        else:
            _check_fitted(cls, fitted, params)
        if feature_set is not None:
            table = feature_set.X if isinstance(feature_set, FeatureSet) else feature_set
            if len(table) != len(frame):
                raise InputError(
                    f"the feature set has {len(table)} rows but there are {len(frame)} candles"
                )
            feature_set = table.iloc[:stop]
        frame = frame.iloc[:stop]
        targets = np.asarray(cfg.position_rule(fitted.signal(frame, feature_set=feature_set)),
                             dtype="float64")
        result = simulate(frame, targets, cash=cash, commission=commission,
                          fraction=cfg.p.fraction, start_index=first)
        result["start"], result["end"] = first, stop
        return result

    # -- inside Backtrader ------------------------------------------------------------------
    def start(self):
        cls = type(self)
        # a multi-horizon model resamples the feed: it needs the candles' times
        frame = _feed_frame(self.data, times=bool(self.p.horizons))
        values = {name: getattr(self.p, name) for name in self.p._getkeys()}
        first = _trade_start(self.p.trade_start, self.data, len(frame))
        fitted = self.p.fitted
        if fitted is None:
            if first == 0:
                raise InputError(f"{cls.__name__} needs fitted=<FittedModel> (see fit_model) "
                                 f"or a trade_start: the bars before it train the model")
            fitted = cls.fit_model(frame, params=values, end=first)
        else:
            _check_fitted(cls, fitted, values)
        targets = np.asarray(self.position_rule(fitted.signal(frame)), dtype="float64")
        targets[:first] = 0.0
        self.fitted_model = fitted
        self._targets = targets.tolist()
        self._target = 0.0

    def prenext(self):
        # Indicators a subclass adds must not delay the model's decisions.
        self._rebalance()

    def next(self):
        self._rebalance()

    def _rebalance(self):
        target = self._targets[len(self.data) - 1]
        if target == self._target:
            return
        price = self.data.close[0]
        # The same expression, in the same order, as vectorized.simulate.
        size = target * self.p.fraction * self.broker.getvalue() / price - self.position.size
        order = True
        if size > 0:
            order = self.buy(size=size)
        elif size < 0:
            order = self.sell(size=-size)
        # A broker that refuses orders (returns None; e.g. one that drops orders during a
        # warm-up) leaves the target unreached: try again at the next close, so the run
        # enters at its first tradable bar as the vectorised run, which starts flat, does.
        if order is not None:
            self._target = target


# -- helpers --------------------------------------------------------------------------------
def _name(cfg) -> str:
    cls = cfg._cls if isinstance(cfg, _Config) else type(cfg)
    return cls.__name__


def _feature_spec(cfg) -> tuple[tuple[str, ...], dict]:
    spec = cfg.feature_spec()
    try:
        names, options = spec
    except (TypeError, ValueError):
        raise InputError(f"{_name(cfg)}.feature_spec() must return (names, options)") from None
    names = tuple(str(n) for n in ([names] if isinstance(names, str) else names))
    if not names:
        raise InputError(f"{_name(cfg)} declares no features")
    if len(set(names)) != len(names):
        raise InputError(f"{_name(cfg)} lists a feature twice: {names}")
    return names, dict(options or {})


def _target(cfg) -> str:
    target = cfg.target
    if target not in TARGETS:
        raise InputError(f"{_name(cfg)}.target must be one of {', '.join(TARGETS)}, not {target!r}")
    return target


def _horizon(cfg) -> int:
    horizon = cfg.target_horizon()
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise InputError(f"{_name(cfg)}'s horizon must be an integer >= 1, not {horizon!r}")
    return int(horizon)


def _columns(table: pd.DataFrame, names, *, who: str) -> np.ndarray:
    missing = [name for name in names if name not in table.columns]
    if missing:
        raise InputError(
            f"{who} uses {', '.join(missing)}, not among the features "
            f"({', '.join(map(str, table.columns))}): check features and feature_options"
        )
    return table[list(names)].to_numpy(dtype="float64")


def _definition(name: str, options: Mapping):
    """What a feature's value depends on beyond its name: ma_dist_<w> is scaled by the longest
    volatility window, so the same name can mean two things under two option sets."""
    if name.startswith("ma_dist_"):
        windows = options.get("vol_windows", FEATURE_DEFAULTS["vol_windows"])
        windows = (windows,) if isinstance(windows, (int, np.integer)) else tuple(windows)
        return (name, max(windows))
    return (name,)


def _scaler_stats(stats, d: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(stats, Standardizer):
        if not hasattr(stats, "mean_"):
            raise InputError("scaler_stats is a Standardizer that is not fitted")
        mean, scale = stats.mean_, stats.scale_
    elif isinstance(stats, Mapping) and "mean" in stats and "scale" in stats:
        mean, scale = stats["mean"], stats["scale"]
    else:
        raise InputError(
            "scaler_stats must be a fitted Standardizer or a mapping with mean and scale"
        )
    mean = np.asarray(mean, dtype="float64").reshape(-1)
    scale = np.asarray(scale, dtype="float64").reshape(-1)
    if mean.shape != (d,) or scale.shape != (d,):
        raise InputError(
            f"scaler_stats must hold {d} means and scales, got {mean.size} and {scale.size}"
        )
    if not (np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()):
        raise InputError("scaler_stats must be finite, with positive scales")
    return mean, scale


def _fit(estimator, X, y, weight):
    if estimator is None or not hasattr(estimator, "fit") or not hasattr(estimator, "predict"):
        raise InputError(f"the estimator must have fit and predict, got {estimator!r}")
    if weight is None:
        fitted = estimator.fit(X, y)
    else:
        try:
            accepts = inspect.signature(estimator.fit).parameters
        except (TypeError, ValueError):
            accepts = {"sample_weight": None}
        if "sample_weight" not in accepts and not any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in accepts.values()
        ):
            raise InputError(
                f"{type(estimator).__name__}.fit takes no sample_weight: weights cannot be used"
            )
        fitted = estimator.fit(X, y, sample_weight=weight)
    return estimator if fitted is None else fitted


def _ensemble(cls, params, timeframes, members) -> FittedEnsemble:
    """The members, re-keyed to the strategy's own params (horizons included)."""
    key = cls.fit_key(params)
    return FittedEnsemble(tuple(timeframes), tuple(replace(m, fit_key=key) for m in members))


def _check_fitted(cls, fitted, params) -> None:
    if not isinstance(fitted, (FittedModel, FittedEnsemble)):
        raise InputError(f"fitted must be a FittedModel (see {cls.__name__}.fit_model), "
                         f"not {type(fitted).__name__}")
    if fitted.fit_key != cls.fit_key(params):
        raise InputError(
            f"this model was fitted for {dict(fitted.fit_key)}, not {dict(cls.fit_key(params))}"
        )


def _bounds(index: pd.Index, start, end) -> tuple[int, int]:
    n = len(index)

    def position(value, default: int, label: str) -> int:
        if value is None:
            return default
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            if not 0 <= value <= n:
                raise InputError(f"{label} {value} is outside 0..{n}")
            return int(value)
        if not isinstance(index, pd.DatetimeIndex):
            raise InputError(f"{label} {value!r} is a time but the candles have no time index")
        try:
            moment = pd.Timestamp(value)
        except (TypeError, ValueError):
            raise InputError(f"{label} must be a position or a time, not {value!r}") from None
        if index.tz is not None:
            moment = (moment.tz_localize(index.tz) if moment.tz is None
                      else moment.tz_convert(index.tz))
        elif moment.tz is not None:
            moment = moment.tz_convert("UTC").tz_localize(None)
        # Like .loc: a time includes the candle opening at that time, as a start or an end.
        return int(index.searchsorted(moment, side="left" if label == "start" else "right"))

    first, stop = position(start, 0, "start"), position(end, n, "end")
    if first > stop:
        raise InputError(f"start ({first}) is after end ({stop})")
    return first, stop


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

