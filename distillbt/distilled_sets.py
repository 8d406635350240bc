"""The screen's distillation stage: one distilled set per kind of need, chosen per estimator.

Model configurations differ in what their fit needs from distilled points
(:class:`SetNeed`): the **task** (returns for ``target = "return"``, directions for
``"direction"``), the **horizon** of the target (candles ahead) and the **family** of their
estimator (:func:`distillbt.estimators.estimator_traits`):

- ``"linear"`` (linear and logistic models, distillbt's learners): :data:`LINEAR_METHOD`,
  d + 1 points per regime whose moments reproduce the training period's exactly;
- ``"agnostic"`` (trees, forests, boosting, nearest neighbours, anything else):
  :data:`AGNOSTIC_METHOD`, :data:`AGNOSTIC_SIZE` k-means clusters of the training rows (at
  most a tenth of them), each a real member with its cluster's weight and *mean* label — a row's
  own label is mostly noise, and a model fitted on a few thousand noisy rows trades on it
  (chosen by ``benchmarks/bench_estimators.py --calibrate`` against coresets of real rows on
  strategies written for the purpose, checked on others; README "Using scikit-learn
  estimators");
- ``"moments"`` (discriminant analysis, Gaussian naive Bayes) with a direction target:
  :data:`MOMENTS_METHOD`, d + 1 points per class with the class's share, mean and covariance
  over the training period (not per regime), on which those estimators equal their fit on the
  rows (with a return target they are ``"agnostic"``);
- ``"rows"`` (stochastic gradient descent, perceptrons, neural networks: fitted by a path of
  updates that no small set reproduces; boosting that stops early on rows it holds out, or
  reweights its rows by their own errors; histogram boosting, whose fit costs about as much
  on the rows as on points): :data:`ROWS_METHOD`, no set at all — the model is fitted on the
  training candles themselves, as its full backtest fits it
  (:data:`distillbt.estimators.PATH_DEPENDENT`, :data:`~distillbt.estimators.EARLY_STOPPING`,
  :data:`~distillbt.estimators.REWEIGHTING`, :data:`~distillbt.estimators.BINNED`); the
  record's ``distilled_by`` says which.

An explicit ``method`` (``screen --method``) overrides both. Configurations with the same need
share one set; each set is distilled from the training period with targets at its horizon
(:func:`distillbt.distill.prepare.prepare`'s ``horizon``). Agnostic needs of several tasks and
horizons share more: their method's points do not depend on the labels, so the training rows
are clustered once (prepared with the longest horizon's embargo) and each need's set carries
its own target's cluster means (:func:`distillbt.distill.runner.distill_targets`).
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .baseline import is_model
from .data.candles import Candles
from .data.resample import resample_candles
from .distill.artifact import DistilledSet
from .distill.prepare import prepare
from .distill.registry import method_class
from .distill.runner import distill, distill_many, split_targets, stack_targets
from .errors import InputError, first_line
from .executor import using
from .estimators import check_estimator, estimator_traits
from .features import FEATURE_DEFAULTS, feature_options_key
from .fitting import target_horizon_of

__all__ = ["SetNeed", "feature_options_key", "LINEAR_METHOD", "MOMENTS_METHOD", "AGNOSTIC_METHOD", "AGNOSTIC_SIZE",
           "ROWS_METHOD", "SHORT_TRAINING", "TASK_OF_TARGET", "needs_of",
           "distil_sets", "given_sets", "check_sets_precede"]

#: The distilled set a model strategy's target is fitted on.
TASK_OF_TARGET = {"return": "regression", "direction": "classification"}
#: Linear and logistic estimators: moments matched exactly (d + 1 points per regime).
LINEAR_METHOD = "exact-linear"
#: Classifiers that see the rows only through class shares, means and covariances.
MOMENTS_METHOD = "class-moments"
#: Every other estimator: k-means clusters of the training rows, one real member of each with
#: its cluster's weight and mean label (:class:`~distillbt.distill.centroids.KMeansCentroids`).
AGNOSTIC_METHOD = "centroids"
#: Points of the agnostic set (over all regimes), at most a tenth of the training rows (each
#: point then averages the labels of ten rows or more).
AGNOSTIC_SIZE = 10_000
#: Path-dependent estimators: no distilled set; fitted on the candles before the screening
#: period, the rows their full backtest fits on.
ROWS_METHOD = "training-rows"
#: Training periods shorter than this (rows) fit agnostic estimators on the rows themselves:
#: the set would hold at most a tenth of them, and there fitting all of them costs little more.
#: Calibration set of ``benchmarks/bench_estimators.py --calibrate`` on sample markets of
#: 10,000 / 30,000 / 60,000 candles (4,800 / 14,800 / 29,800 training rows; seeds 0 and 1):
#: Spearman 0.970 / 0.965 / 0.958 on the sets against 0.997 / 0.994 / 0.998 on the rows,
#: distillation + fits + runs 0.7 / 1.3 / 1.7 s against 0.9 / 2.4 / 4.1 s.
SHORT_TRAINING = 20_000


@dataclass(frozen=True)
class SetNeed:
    """What one model configuration's fit needs: ``family`` of its estimator, ``task``,
    target ``horizon``, the distillation ``method`` (with ``size``, None: its default) and the
    ``features`` its points must carry: the strategy's ``feature_options`` that differ from
    :data:`~distillbt.features.FEATURE_DEFAULTS`, as sorted ``(option, windows)`` pairs
    (:func:`~distillbt.features.feature_options_key`; empty: the default windows)."""

    family: str
    task: str
    horizon: int
    method: str
    size: int | None = None
    features: tuple = ()
    #: Why a need of the training rows takes them (the record's ``distilled_by`` says it); not
    #: part of what the need is.
    reason: str = field(default="", compare=False)

    @property
    def key(self) -> str:
        """Its name in the summary's ``distilled`` (``classification``, ``regression-h4``,
        ``classification-kmedoids``, ``regression-f3b1c9e2``…): the task, then what differs from
        the linear default (other windows: a short digest of them; the set's header lists them)."""
        if self.method == ROWS_METHOD:
            return ROWS_METHOD
        parts = [self.task]
        if self.method != LINEAR_METHOD:
            parts.append(self.method)
        if self.horizon != 1:
            parts.append(f"h{self.horizon}")
        if self.features:
            parts.append("f" + hashlib.sha1(repr(self.features).encode()).hexdigest()[:8])
        return "-".join(parts)

    @property
    def feature_options(self) -> dict:
        """The ``make_features`` options of its points (the defaults and what it changes)."""
        return {**FEATURE_DEFAULTS, **dict(self.features)}


def needs_of(configs, *, method: str | None = None, size: int | None = None,
             agnostic_method: str = AGNOSTIC_METHOD, agnostic_size: int = AGNOSTIC_SIZE,
             training_rows: bool = True, n_training_rows: int | None = None,
             short_training: int = SHORT_TRAINING) -> tuple[dict, dict]:
    """``({name: SetNeed}, {name: error})`` for the model configurations of ``configs``: an
    estimator without ``fit``/``predict`` (or a hook that raises) is an error of that
    configuration, one line naming its class. ``method``/``size``: one choice for all;
    ``agnostic_method``/``agnostic_size``: the choice for non-linear estimators (what
    ``benchmarks/bench_estimators.py --calibrate`` varies); ``training_rows`` False: the
    ``"rows"`` family is distilled for as the linear one (a pooled basket, whose full backtests
    fit one model on every instrument's rows). ``n_training_rows``: the training period's rows;
    under ``short_training`` (:data:`SHORT_TRAINING`; 0: never) the agnostic family is fitted on
    them too, no set."""
    needs, errors = {}, {}
    for config in configs:
        if not is_model(config):
            continue
        cls = config.strategy.cls
        try:
            cfg = cls.configure(config.params)
            estimator = cfg.make_estimator()
            check_estimator(estimator, who=cls.__name__)
            traits = estimator_traits(estimator, n_rows=n_training_rows)
            family = traits.family
            horizon = target_horizon_of(cls, cfg)
            task = TASK_OF_TARGET[cls.target]
            features = feature_options_key(cfg.feature_spec()[1])
        except Exception as error:  # noqa: BLE001 - reported per configuration, the batch goes on
            text = first_line(error)
            errors[config.name] = text if text.startswith(cls.__name__) else f"{cls.__name__}: {text}"
            continue
        reason = "path-dependent estimator: stochastic updates" if family == "rows" else ""
        if family == "rows" and (method is not None or not training_rows):
            family = "linear"  # fitted on distilled points after all: those serving linear models
        if traits.on_rows and method is None and training_rows:
            family, reason = "rows", traits.rows_reason
        if family == "moments" and task != "classification":
            family = "agnostic"  # class moments need classes
        chosen = method or {"linear": LINEAR_METHOD, "moments": MOMENTS_METHOD,
                            "rows": ROWS_METHOD}.get(family, agnostic_method)
        if (family == "agnostic" and method is None and training_rows and n_training_rows is not None
                and n_training_rows < short_training):
            chosen = ROWS_METHOD  # a short period: its rows cost about what a set of a tenth of them does
            reason = f"{family} estimator, a short training period"
        chosen_size = size or (agnostic_size if method is None and family == "agnostic" else None)
        needs[config.name] = SetNeed(family, task, horizon, chosen, chosen_size, features,
                                     reason if chosen == ROWS_METHOD else "")
    return needs, errors


def given_sets(distilled, needs: dict, *, base_timeframe: str, horizons=()) -> dict:
    """``{key: set}`` from sets the caller distilled (a :class:`DistilledSet` or a dict task →
    set): every need is served by the set of its task (a regression set serves
    classification too: model strategies read its returns as y > 0)."""
    given = distilled if isinstance(distilled, dict) else {distilled.meta.get("task"): distilled}
    for v in given.values() if horizons else ():
        parts = v.timeframes if v.part is not None else []
        missing = [tf for tf in (base_timeframe, *horizons) if tf not in parts]
        if missing:
            raise InputError(f"horizons need a multi-horizon distilled set with {base_timeframe} and "
                             f"{', '.join(horizons)} parts (distill --timeframes); it lacks {', '.join(missing)}")
    # a multi-horizon set: the part of the screened candles' interval (all of it for horizons)
    given = {k: v.part_for(base_timeframe) if getattr(v, "part", None) is not None and not horizons else v
             for k, v in given.items()}
    sets = {}
    for need in needs.values():
        if need.method == ROWS_METHOD:
            continue
        if need.task in given:
            sets[need.key] = given[need.task]
        elif need.task == "classification" and "regression" in given:
            sets[need.key] = given["regression"]
        else:
            raise InputError(f"the distilled set is for {', '.join(map(str, given))}, but some model "
                             f"strategies need a {need.task} set: distil one with --task {need.task}")
    return sets


def distil_sets(data, needs: dict, *, per_regime: bool, seed: int, fractions, horizons=(), train_stop=None,
                progress: bool = False, method_params: dict | None = None) -> dict:
    """``{key: DistilledSet}``, one per distinct need, from the training period of ``data``
    (prepared with the screen's fractions and the default feature windows; a need with another
    horizon or other windows prepares the same candles with targets that far ahead or with its
    strategy's ``feature_options``, on ``data``'s split and regimes). ``method_params``: method →
    its distiller's parameters (what ``benchmarks/bench_estimators.py --calibrate
    --method-params`` varies). Runs on the active executor, every set's worker jobs in one pass
    (:func:`~distillbt.distill.runner.distill_many`)."""
    options = dict(per_regime=per_regime, seed=seed, progress=progress, method_params=method_params or {})
    sets = {}
    prepared = {(data.horizon, feature_options_key(data.feature_options)): data}

    def source(horizon: int, features: tuple):
        if (horizon, features) not in prepared:
            # the screen's split and regimes, labelled once (prepare's like=)
            shared = data if data.candle_regimes is not None and data.horizon <= horizon else None
            prepared[horizon, features] = prepare(data.candles, fractions=fractions, horizon=horizon,
                                                  boundaries=data.boundaries, like=shared,
                                                  feature_options={**FEATURE_DEFAULTS, **dict(features)})
        return prepared[horizon, features]

    wanted = sorted({n for n in needs.values() if n.method != ROWS_METHOD}, key=lambda n: n.key)
    if horizons:  # multi-horizon sets: each need's set with its coarse parts
        for need in wanted:
            sets[need.key] = _with_coarse_parts(_distil_one(source(need.horizon, need.features), need, **options),
                                                data.candles, horizons, train_stop, need=need,
                                                per_regime=per_regime, seed=seed)
        return sets
    # one clustering for every target of the same agnostic method, size and windows
    groups = {tuple(n.key for n in group): group for group in _shared_groups(wanted)}
    longest = {key: (max(n.horizon for n in group), group[0].features) for key, group in groups.items()}
    grouped = {k for key in groups for k in key}
    # the data the workers' pass needs before it starts (not the inline methods': prepared while
    # it runs), in threads: pandas' rolling windows and numpy release the GIL
    early = set(longest.values()) | {(n.horizon, n.features) for n in wanted
                                     if n.key not in grouped and not method_class(n.method).fits_inline}
    with using() as ex:
        ex.thread_map(source, sorted(early - set(prepared)))
    requests, shared = {}, {}
    for key, group in groups.items():
        rows = source(*longest[key])
        shared[key] = {n.key: _targets(rows, n.task, n.horizon) for n in group}
        task, labels = stack_targets(shared[key], method=group[0].method)
        requests[key] = (rows, group[0], dict(task=task, labels=labels))
    for need in wanted:
        if need.key not in grouped:
            # inline methods' data are prepared while the workers distil the others
            requests[need.key] = (functools.partial(source, need.horizon, need.features), need, {})
    for key, dset in _distil_all(requests, **options).items():
        sets.update(split_targets(dset, shared[key]) if key in shared else {key: dset})
    return sets


def _distil_all(requests: dict, *, per_regime, seed, progress, method_params) -> dict:
    """``{key: set}`` for ``requests`` ``{key: (prepared data or a function preparing it, need,
    distill keywords)}``, in one pass over the workers (:func:`~distillbt.distill.runner.
    distill_many`); a request whose per-regime distillation fails is distilled over the whole
    training period at once, its ``meta["fallback"]`` saying why."""
    def asked(by_regime, keys):
        out = {}
        for key in keys:
            data, need, extra = requests[key]
            out[key] = dict(data=data, method=need.method, task=need.task, seed=seed, per_regime=by_regime,
                            method_params=method_params.get(need.method),
                            size=functools.partial(_size, need=need, per_regime=by_regime))
            out[key].update(extra)
        return out

    done = distill_many(asked(per_regime, requests), progress=progress)
    failed = {key: error for key, error in done.items() if isinstance(error, InputError)}
    if failed and per_regime:
        # Small regimes give noisy, strong per-regime signals (e.g. exact-linear soft labels
        # outside [0, 1]): distil the whole training period at once instead, and say so.
        again = distill_many(asked(False, failed), progress=progress)
        for key, dset in again.items():
            if isinstance(dset, InputError):
                continue
            dset.meta["fallback"] = f"not per regime: {first_line(failed[key])}"
            log.warning("%s: distilling per regime failed (%s): distilled the whole training period at once",
                        key, first_line(failed[key]))
        done.update(again)
    for error in done.values():
        if isinstance(error, InputError):
            raise error
    return done


def _shared_groups(needs) -> list:
    """Agnostic needs whose method's points do not depend on the labels (``multi_target``),
    grouped by method, size and feature windows: each group is distilled once (its longest
    horizon's rows, each need's own cluster-mean labels:
    :func:`~distillbt.distill.runner.split_targets`)."""
    groups = {}
    for need in needs:
        if need.family == "agnostic" and method_class(need.method).multi_target:
            groups.setdefault((need.method, need.size, need.features), []).append(need)
    return [group for group in groups.values() if len(group) > 1]


def _targets(source, task: str, horizon: int) -> tuple:
    """``(task, labels, header)`` of the ``horizon``-candle target on ``source``'s training rows:
    scaled log returns (regression) or their signs (classification), as
    :meth:`~distillbt.distill.prepare.PreparedData.y` gives them for a set prepared with that
    horizon."""
    close = np.log(source.candles.frame["close"].to_numpy(dtype="float64"))
    at = source.candles.frame.index.get_indexer(source.times[source.parts["train"]])
    ahead = close[at + horizon] - close[at]
    scale = float(np.std(ahead))
    labels = ahead / scale if task == "regression" else (ahead > 0).astype("float64")
    return task, labels, {"horizon": int(horizon), "target_scale": scale}


def _distil_one(data, need: SetNeed, *, per_regime, seed, progress, method_params) -> DistilledSet:
    return _distil_all({need.key: (data, need, {})}, per_regime=per_regime, seed=seed, progress=progress,
                       method_params=method_params)[need.key]


def _size(data, *, need: SetNeed, per_regime: bool) -> int:
    """The need's points: an agnostic size at most a tenth of the training rows, else as asked
    or the method's default."""
    if need.size and need.family == "agnostic":
        rows = data.parts["train"].stop - data.parts["train"].start
        return max(1, min(need.size, rows // 10))
    return need.size or default_size(need.method, data, per_regime)


def default_size(method, data, per_regime) -> int:
    """Points when none are asked for: d + 1 per regime for exact-linear, 100 otherwise."""
    if method != LINEAR_METHOD:
        return 100
    regimes = len(set(data.regime[data.parts["train"]])) if per_regime else 1
    return (len(data.feature_names) + 1) * regimes


def _with_coarse_parts(base_set, candles: Candles, horizons, train_stop: int, *, need: SetNeed, per_regime,
                       seed) -> DistilledSet:
    """A multi-horizon set: ``base_set`` and, per horizon, the training period resampled and
    distilled on its own (features, scaler and labeller fitted on those candles only; the
    last 10% of them is left out as the split's validation and test, so nothing the coarse
    part learns from reaches the screening period)."""
    head = candles.rows(slice(0, train_stop))
    parts = {candles.timeframe: base_set}
    for tf in horizons:
        coarse = resample_candles(head, tf)
        try:
            data = prepare(coarse, fractions=(0.9, 0.05, 0.05), horizon=need.horizon,
                           feature_options=need.feature_options)
            parts[tf] = distill(data, method=need.method,
                                size=need.size or default_size(need.method, data, per_regime),
                                task=need.task, per_regime=per_regime, seed=seed)
        except InputError as error:
            raise InputError(f"horizon {tf}: {len(coarse)} candles in the training period: "
                             f"{first_line(error)}") from None
    return DistilledSet.combine_horizons(parts, meta={"timeframe": candles.timeframe})


def check_sets_precede(sets: dict, candles: Candles, s_start: int) -> None:
    """Refuse a set trained on candles at or after the screening period's first."""
    for dset in sets.values():
        for part in ([dset.part_for(tf) for tf in dset.timeframes] if dset.part is not None else [dset]):
            last_train = pd.Timestamp(part.meta["split"]["train"]["last"])
            if last_train >= candles.frame.index[s_start]:
                raise InputError(f"the distilled set was trained up to {last_train}, which is not before "
                                 f"the screening period ({candles.frame.index[s_start]})")


log = logging.getLogger(__name__)
