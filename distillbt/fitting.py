"""Fitting a model strategy's model: :class:`FittedModel` and the two ways to get one.

- :func:`fit_model`: on real candles, rows whose target ends inside a period (with the
  strategy's ``horizons``: one fit per candle interval, a
  :class:`~distillbt.horizons.FittedEnsemble`);
- :func:`fit_model_on_points` / :func:`fit_model_on_distilled`: on distilled points
  (standardised features), or a :class:`~distillbt.distill.artifact.DistilledSet`'s points
  and header.

Each function takes the strategy class first and reads it through its hooks
(``cls.configure(params)``, ``cls.fit_key(params)``, ``feature_spec``, ``make_estimator``,
``target_horizon``). Authors call them as the classmethods of the same names of
:class:`~distillbt.strategy.ModelStrategy`, whose docstrings document them; this module does
not import :mod:`distillbt.strategy`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from .errors import InputError
from .estimators import check_estimator, estimator_traits, fit_estimator
from .features import FEATURE_DEFAULTS, FeatureSet, Standardizer, make_features, ohlcv_frame
from .horizons import FittedEnsemble, check_horizons, frame_timeframe, resampled_frame

__all__ = [
    "FittedModel", "TARGETS", "fit_model",
    "fit_model_pooled", "fit_model_on_points", "fit_model_on_distilled",
    "check_fitted", "period_bounds", "target_horizon_of",
]

#: What a model strategy can learn.
TARGETS: tuple[str, ...] = ("return", "direction")


@dataclass(frozen=True, eq=False)
class FittedModel:
    """A fitted model strategy's model: feature spec, scaler and estimator, as plain objects.

    Built by :meth:`ModelStrategy.fit_model <distillbt.strategy.ModelStrategy.fit_model>`
    (real candles) or :meth:`ModelStrategy.fit_model_on_points
    <distillbt.strategy.ModelStrategy.fit_model_on_points>` (distilled points), i.e. by
    :func:`fit_model` / :func:`fit_model_on_points`; both give this type and it pickles
    (joblib workers receive it).

    Attributes
    ----------
    strategy : str
        Name of the strategy class it was fitted for.
    fit_key : tuple
        The params that shaped the fit (:meth:`~distillbt.strategy.ModelStrategy.fit_key`); a
        strategy refuses a model whose key differs from its own.
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
        Candles ahead of the target actually learnt: distilled points hold targets at their
        set's horizon (``meta["horizon"]``; the screen distils one per horizon), and a
        strategy with another horizon learns those instead (see ``notes``).
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


# -- fitting --------------------------------------------------------------------------------
def fit_model(cls, candles, *, params: Mapping | None = None, start=None, end=None,
              sample_weight=None, feature_set=None) -> FittedModel:
    """:meth:`ModelStrategy.fit_model <distillbt.strategy.ModelStrategy.fit_model>`
    for the strategy class ``cls``."""
    cfg = cls.configure(params)
    if cfg.p.horizons:
        if sample_weight is not None:
            raise InputError("sample_weight is per candle of one interval: not with horizons")
        return _fit_ensemble(cls, candles, params, start, end)
    X, returns, rows, total = _training_rows(cls, cfg, candles, start, end, feature_set)
    weight = None
    if sample_weight is not None:
        weight = np.asarray(sample_weight, dtype="float64").reshape(-1)
        if len(weight) != total:
            raise InputError(f"sample_weight has {len(weight)} values for {total} candles")
        weight = weight[rows]
    return _fit_rows(cls, cfg, params, X, returns, weight)


def fit_model_pooled(cls, parts, *, params: Mapping | None = None) -> FittedModel:
    """One model fitted on the training rows of several instruments at once: ``parts`` is a
    sequence of ``(candles, start, end)`` (as :func:`fit_model`'s), each instrument's features
    computed from its own candles; the scaler and the return scale come from all the rows
    together. What a basket screen with ``pool="pooled"`` compares its distilled fit with."""
    cfg = cls.configure(params)
    if cfg.p.horizons:
        raise InputError(f"{cls.__name__} with horizons cannot be fitted on a pooled basket: use one "
                         "model per instrument")
    pieces = [_training_rows(cls, cfg, candles, start, end)[:2] for candles, start, end in parts]
    if not pieces:
        raise InputError("no instruments to fit on")
    X = np.concatenate([x for x, _ in pieces])
    returns = np.concatenate([r for _, r in pieces])
    return _fit_rows(cls, cfg, params, X, returns, None)


def _training_rows(cls, cfg, candles, start, end, feature_set=None):
    """``(X, returns, rows, candles)``: the strategy's features and ``horizon``-candle log
    returns of the training rows of ``candles[start:end]``, their positions, and how many
    candles there were (features from ``feature_set`` when given, see ``fit_model``)."""
    names, options = _feature_spec(cls, cfg)
    horizon = target_horizon_of(cls, cfg)
    frame = ohlcv_frame(candles)
    total = len(frame)
    first, stop = period_bounds(frame.index, start, end)
    frame = frame.iloc[:stop]
    if feature_set is None:
        table = make_features(frame, **options).X
    else:
        table = feature_set.X if isinstance(feature_set, FeatureSet) else feature_set
        if len(table) < stop:
            raise InputError(f"the feature set has {len(table)} rows, fewer than the {stop} candles fitted on")
        table = table.iloc[:stop]
    X = _columns(table, names, who=cls.__name__)
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
    return X[rows], future[rows], rows, total


def _fit_rows(cls, cfg, params, X, returns, weight) -> FittedModel:
    names, options = _feature_spec(cls, cfg)
    target, horizon = _target(cls, cfg), target_horizon_of(cls, cfg)
    scaler = Standardizer(clip=cfg.clip).fit(X)
    scale = float(np.std(returns))
    if target == "return":
        if not scale > 0:
            raise InputError("the training returns are all equal: nothing to learn")
        y = returns / scale
    else:
        y = (returns > 0).astype("float64")
    estimator = _new_estimator(cls, cfg)
    if weight is not None and not estimator_traits(estimator).weight_keys:
        raise InputError(f"{type(estimator).__name__}.fit takes no sample_weight: weights cannot be used")
    estimator, notes = fit_estimator(estimator, scaler.transform(X), y, weight,
                                     task="classification" if target == "direction" else "regression")
    return FittedModel(
        strategy=cls.__name__, fit_key=cls.fit_key(params), feature_names=names,
        feature_options=options, scaler=scaler, estimator=estimator, target=target,
        horizon=horizon, trained_horizon=horizon, target_scale=scale, trained_on="candles",
        n_train=len(X), notes=notes,
    )


def _fit_ensemble(cls, candles, params, start, end) -> FittedEnsemble:
    """One fit per interval (the candles' own and ``horizons``) on the same period."""
    frame = ohlcv_frame(candles)
    base = frame_timeframe(candles)
    horizons = check_horizons(base, cls.configure(params).p.horizons)
    first, stop = period_bounds(frame.index, start, end)
    # each interval's model is fitted on its own candles; they are single-interval fits
    single = {**(params or {}), "horizons": ()}
    members = [cls.fit_model(frame, params=single, start=first, end=stop)]
    for tf in horizons:
        coarse = resampled_frame(frame.iloc[:stop], base, tf)
        begin = int(coarse.index.searchsorted(frame.index[first])) if first < stop else len(coarse)
        members.append(cls.fit_model(coarse, params=single, start=begin, end=len(coarse)))
    return _ensemble(cls, params, (base, *horizons), members)


def fit_model_on_points(cls, X, y, weight=None, *, params: Mapping | None = None,
                        feature_names, scaler_stats, feature_options: Mapping | None = None,
                        task: str | None = None, target_scale: float | None = None,
                        target_horizon: int = 1, n_rows: int | None = None, seed: int = 0) -> FittedModel:
    """:meth:`ModelStrategy.fit_model_on_points
    <distillbt.strategy.ModelStrategy.fit_model_on_points>` for the strategy class ``cls``."""
    cfg = cls.configure(params)
    names, options = _feature_spec(cls, cfg)
    target, horizon = _target(cls, cfg), target_horizon_of(cls, cfg)
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
    else:
        w = np.ones(len(labels))
    notes = ()
    if horizon != target_horizon:
        notes = (f"trained on {target_horizon}-candle targets in place of {horizon}-candle "
                 f"ones (the points hold no other)",)
    estimator, fit_notes = fit_estimator(_new_estimator(cls, cfg), Z, labels, w, n_rows=n_rows,
                                         task="classification" if target == "direction" else "regression",
                                         seed=seed)
    notes += fit_notes
    return FittedModel(
        strategy=cls.__name__, fit_key=cls.fit_key(params), feature_names=names,
        feature_options=points_options, scaler=scaler, estimator=estimator, target=target,
        horizon=horizon, trained_horizon=int(target_horizon),
        target_scale=float("nan") if target_scale is None else float(target_scale),
        trained_on="points", n_train=len(points), notes=notes,
    )


def fit_model_on_distilled(cls, distilled, *, params: Mapping | None = None,
                           timeframe: str | None = None) -> FittedModel:
    """:meth:`ModelStrategy.fit_model_on_distilled
    <distillbt.strategy.ModelStrategy.fit_model_on_distilled>` for the strategy class ``cls``."""
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
            n_rows=meta.get("n_rows"),
        )
    except KeyError as error:
        raise InputError(f"the distilled set's header lacks {error.args[0]!r}") from None


# -- helpers --------------------------------------------------------------------------------
def _feature_spec(cls, cfg) -> tuple[tuple[str, ...], dict]:
    spec = cfg.feature_spec()
    try:
        names, options = spec
    except (TypeError, ValueError):
        raise InputError(f"{cls.__name__}.feature_spec() must return (names, options)") from None
    names = tuple(str(n) for n in ([names] if isinstance(names, str) else names))
    if not names:
        raise InputError(f"{cls.__name__} declares no features")
    if len(set(names)) != len(names):
        raise InputError(f"{cls.__name__} lists a feature twice: {names}")
    return names, dict(options or {})


def _target(cls, cfg) -> str:
    target = cfg.target
    if target not in TARGETS:
        raise InputError(f"{cls.__name__}.target must be one of {', '.join(TARGETS)}, not {target!r}")
    return target


def target_horizon_of(cls, cfg) -> int:
    """The strategy's target horizon (candles ahead), checked: an integer >= 1."""
    horizon = cfg.target_horizon()
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise InputError(f"{cls.__name__}'s horizon must be an integer >= 1, not {horizon!r}")
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


def _new_estimator(cls, cfg):
    """The strategy's fresh estimator, checked (a one-line StrategyError names the class), as
    a copy of its own: a ``make_estimator`` may hand out one module-level instance, which two
    configurations would otherwise fit at once in the screen's threads (and, one after the
    other, each refit would overwrite the model another configuration holds). scikit-learn's
    ``clone`` (an unfitted copy with the same parameters; a deep copy of other objects); an
    object that cannot be copied is used as it is."""
    from sklearn.base import clone

    estimator = cfg.make_estimator()
    check_estimator(estimator, who=cls.__name__)
    try:
        return clone(estimator, safe=False)
    except Exception:  # noqa: BLE001 - e.g. a constructor that changes its parameters: fit the original
        return estimator


def _ensemble(cls, params, timeframes, members) -> FittedEnsemble:
    """The members, re-keyed to the strategy's own params (horizons included)."""
    key = cls.fit_key(params)
    return FittedEnsemble(tuple(timeframes), tuple(replace(m, fit_key=key) for m in members))


def check_fitted(cls, fitted, params) -> None:
    """Refuse a model not fitted for the strategy class ``cls`` with these params: another fit
    key, or other features, target or horizon (raises :class:`~distillbt.errors.InputError`)."""
    if not isinstance(fitted, (FittedModel, FittedEnsemble)):
        raise InputError(f"fitted must be a FittedModel (see {cls.__name__}.fit_model), "
                         f"not {type(fitted).__name__}")
    if fitted.fit_key != cls.fit_key(params):
        raise InputError(
            f"this model was fitted for {dict(fitted.fit_key)}, not {dict(cls.fit_key(params))}"
        )
    # The fit key holds params only: two strategies with the same params (an alpha) have the
    # same key, so check that the model reads this strategy's features and learnt its target
    # (a subclass, e.g. one that records its fills, may use its parent's model).
    cfg = cls.configure(params)
    own = (_feature_spec(cls, cfg)[0], _target(cls, cfg), target_horizon_of(cls, cfg))
    theirs = (tuple(fitted.feature_names), fitted.target, fitted.horizon)
    if own != theirs:
        raise InputError(
            f"this model was fitted for {fitted.strategy} (features {', '.join(theirs[0])}; "
            f"target {theirs[1]}, horizon {theirs[2]}), not for {cls.__name__} (features "
            f"{', '.join(own[0])}; target {own[1]}, horizon {own[2]})"
        )


def period_bounds(index: pd.Index, start, end) -> tuple[int, int]:
    """Positions ``(first, stop)`` of the candles ``start..end``: positions like
    ``iloc[start:end]`` (end excluded), times like ``loc[start:end]`` (both included); None
    means from the first / to the last candle."""
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

