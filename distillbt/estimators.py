"""What a model strategy's estimator needs from distilled points, and fitting it on them.

Users bring scikit-learn estimators (or anything with ``fit``/``predict``). Distilled points
differ from the real rows an estimator is normally fitted on in three ways, and this module
bridges each of them the same way for every estimator:

- **labels**: distillers may give soft labels (a probability of "up" per point). A
  scikit-learn classifier refuses them (``Unknown label type: continuous``), so a point with
  soft label ``p`` and weight ``w`` becomes two rows: ``y = 1`` with weight ``w·p`` and
  ``y = 0`` with weight ``w·(1 − p)``. Any loss that is a weighted sum over rows (log loss,
  hinge, squared error, impurity) then sees exactly the soft label's expected loss;
- **weights**: passed as ``sample_weight`` to every step whose ``fit`` takes it (a
  :class:`~sklearn.pipeline.Pipeline` routes ``<step>__sample_weight``, so a
  ``StandardScaler`` is fitted on the weighted points too). An estimator whose ``fit`` takes
  none is fitted on rows drawn from the points in proportion to their weights (systematic
  resampling, seeded), and the fitted model's notes say so;
- **hyperparameters that count rows** (:data:`ROW_COUNTS`: a tree's ``min_samples_leaf``,
  a neighbours model's ``n_neighbors``…) are scaled by points / rows, so a leaf or a
  neighbourhood holds the same share of the data on the points as on the real rows (a
  ``min_samples_leaf=100`` leaf is 0.1 % of 100,000 rows but 10 % of 1,000 points); the
  fitted model's notes list what was scaled;
- **penalties**: scikit-learn's penalised losses are *sums* over rows (``Ridge``: ``Σ (y −
  xβ)² + α|β|²``; ``LogisticRegression``: ``C Σ ℓ + |β|²/2``), so ``alpha`` or ``C`` weigh the
  penalty against the number of rows. Points standing for ``n`` real rows get weights summing
  to ``n`` for those estimators (:data:`SUM_LOSS`), so a ridge fitted on exact-linear points
  equals its fit on the real rows, penalty included. Estimators whose loss is a mean
  (``SGDClassifier``, ``Lasso``, distillbt's own learners) get weights of mean 1.

Which distillation serves an estimator (:func:`estimator_traits`'s ``family``):

- ``"linear"`` — linear and logistic models (``sklearn.linear_model`` but its robust and
  Poisson-like fits, :data:`MOMENT_BLIND`; distillbt's learners; a pipeline of
  ``StandardScaler`` steps before one): their fits depend on the data mostly
  through its moments, which exact-linear and gradient matching reproduce with d + 1 points
  per regime;
- ``"agnostic"`` — everything else (trees, forests, boosting, nearest neighbours, kernels,
  unknown objects): a few d + 1-point sets say nothing useful to them, so they are fitted on
  real training rows standing for clusters of rows, with the clusters' weights and mean labels
  (:data:`distillbt.distilled_sets.AGNOSTIC_METHOD`, sized by ``benchmarks/bench_estimators.py``);
- ``"moments"`` — classifiers that model each class as a Gaussian (:data:`CLASS_MOMENTS`:
  linear and quadratic discriminant analysis, Gaussian naive Bayes; a pipeline of
  ``StandardScaler`` steps before one): their fit is the class shares, means and covariances,
  which d + 1 points per class reproduce exactly
  (:class:`~distillbt.distill.moments.ClassMoments`). Without ``sample_weight`` they are
  fitted on the points repeated in proportion to their weights (:data:`MOMENT_ROWS` rows in
  all), a class's points alike, so its mean and covariance stay exact;
- ``"rows"`` — estimators whose fit is a *path* through the rows rather than an optimum of
  their statistics (:data:`PATH_DEPENDENT`: stochastic gradient descent, perceptrons,
  passive-aggressive updates, neural networks). Where they stop depends on how many rows they
  pass over, in which order and at which scale, so no small set reproduces it (an
  ``SGDClassifier`` fitted on exact-linear points reaches the penalised optimum its full fit
  never reaches); they are fitted on the training candles themselves, as their full backtest
  fits them — cheap for these estimators, which are linear-time in the rows. Boosting by
  reweighting (:data:`REWEIGHTING`: AdaBoost) joins them, since each round reweights the rows
  by the previous rounds' errors on their own labels, and so does boosting that stops early on
  rows it holds out of its fit while early stopping is on (:data:`EARLY_STOPPING`): where it
  stops is decided by those real rows. Histogram boosting joins them too (:data:`BINNED`):
  not because points cannot stand for it, but because its fit costs about as much on the
  rows, where it is exact. :attr:`EstimatorTraits.rows_reason` says which applies.

**Row draws on split labels.** A classifier fitted on soft labels sees each point as a ``y = 1``
and a ``y = 0`` row. An estimator that draws rows for each of its trees (:data:`ROW_DRAWS`:
``subsample``, ``max_samples``, ``bootstrap``) draws the two halves apart, so its trees see
hard labels again, on a tenth of the rows: the label noise the mean labels removed, several
times over. Fitted on such points, those hyperparameters are set to draw every row (the notes
say so); on real rows, or on points with hard labels, they are left alone.

**Row counts of one tree's draw.** A tree of an ensemble that draws rows (:data:`TREE_DRAWS`)
counts its ``min_samples_leaf`` among the rows of its draw: with ``max_samples=0.25`` a
forest's tree fits about 22 % of the rows, so 250 rows are 1.1 % of what it sees. Scaled against
every row instead, the points' trees grew leaves four times smaller than the full fit's. And an
ensemble that keeps drawing on the points (a bagging ensemble, a regression forest:
:data:`WEIGHT_DRAWS`) draws as many rows per tree as a share of the weights' sum, so the points'
weights sum to the rows they stand for and each tree draws as many as in the full fit. On a set
written to calibrate both (``benchmarks/estimator_strategies/calibration_draws``: bagged
classification and regression trees, a regression forest; 12 configurations, seeds 0 and 1)
the screen ranked at 0.524 before, 0.801 with the leaves and 0.934 with both.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np

from ._weighted_binning import fast_weighted_binning
from .discovery import StrategyError

__all__ = ["EstimatorTraits", "SUM_LOSS", "WEIGHT_DRAWS", "ROW_COUNTS", "ROW_AUTO", "ROW_DRAWS", "TREE_DRAWS",
           "TreeDraw", "PATH_DEPENDENT", "REWEIGHTING", "BINNED", "EARLY_STOPPING", "LINEAR_MODULES", "MOMENT_BLIND", "CLASS_MOMENTS", "MOMENT_ROWS",
           "estimator_traits", "check_estimator", "fit_estimator"]

#: Estimator classes whose penalty is weighed against a *sum* of per-row losses: points that
#: stand for ``n`` rows get weights summing to ``n``, so ``alpha``/``C`` mean what they mean
#: on the real rows. Others get weights of mean 1 (their loss is a mean, or weights only
#: rescale it).
SUM_LOSS = frozenset({
    "Ridge", "RidgeClassifier", "RidgeCV", "RidgeClassifierCV", "LogisticRegression", "LogisticRegressionCV",
    "LinearSVC", "LinearSVR", "SVC", "SVR", "NuSVC", "NuSVR", "KernelRidge", "BayesianRidge", "ARDRegression",
    "HistGradientBoostingClassifier", "HistGradientBoostingRegressor", "LGBMClassifier", "LGBMRegressor",
    "XGBClassifier", "XGBRegressor",
})
#: Ensembles that draw each tree's rows in proportion to ``sample_weight``, a float
#: ``max_samples`` being a share of the weights' sum (scikit-learn's frequency semantics; older
#: versions draw uniformly, where the weights' scale changes nothing). Their points' weights sum
#: to the rows the points stand for, as :data:`SUM_LOSS`'s do, so each tree draws as many rows
#: as in the full fit: with weights of mean 1 it drew that share of the points, a tenth as many
#: draws, and each tree saw ten times the full fit's sampling noise.
WEIGHT_DRAWS = frozenset({
    "BaggingClassifier", "BaggingRegressor", "RandomForestClassifier", "RandomForestRegressor",
    "ExtraTreesClassifier", "ExtraTreesRegressor",
})
#: Hyperparameters that count rows (integers; fractions are left alone) and the smallest
#: value each may take once scaled by points / rows.
ROW_COUNTS = {"min_samples_leaf": 1, "min_samples_split": 2, "n_neighbors": 1, "min_child_samples": 1}
#: Hyperparameters whose ``"auto"`` is decided by how many rows the estimator is given, and the
#: row count above which it means True (histogram boosting's ``early_stopping``: on above 10,000
#: rows). On points they are decided as the full fit decides them, by the rows the points stand
#: for: a default ``HistGradientBoostingRegressor`` stops early on ~100,000 training rows and
#: would run every round on 8,000 points.
ROW_AUTO = {"early_stopping": 10_000}
#: Classifiers that draw rows for each tree or round, and the hyperparameters that make them
#: draw every row instead (set on points whose soft labels were split in two rows; module
#: docstring). Declared per class: a ``BaggingClassifier`` is left alone, since without its
#: bootstrap it draws rows without replacement and its trees would ignore the weights.
ROW_DRAWS = {
    "GradientBoostingClassifier": {"subsample": 1.0},
    "RandomForestClassifier": {"bootstrap": False, "max_samples": None},
    "ExtraTreesClassifier": {"bootstrap": False, "max_samples": None},
    "LGBMClassifier": {"subsample": 1.0},
    "XGBClassifier": {"subsample": 1.0},
}


@dataclass(frozen=True)
class TreeDraw:
    """How an ensemble draws the rows each of its trees fits (:data:`TREE_DRAWS`).

    ``size``: the parameter giving a draw's size (a share of the rows as a float, a count as an
    int, None for as many as there are rows); ``replace``: the one saying the draw is with
    replacement (None: never); ``whole_without_replacement``: without replacement every row is
    fitted and ``size`` is ignored (a forest without its bootstrap)."""

    size: str
    replace: str | None = None
    whole_without_replacement: bool = False

    def distinct_share(self, params: dict, n_rows: int, *, weight_sum: float | None = None) -> float:
        """Expected share of ``n_rows`` distinct rows one tree fits (with replacement, ``m``
        draws reach ``1 - exp(-m / n)`` of them). ``weight_sum``: what a float ``size`` is a
        share of when the ensemble draws by weight (:data:`WEIGHT_DRAWS`); None: the rows."""
        size = params.get(self.size)
        with_replacement = self.replace is not None and params.get(self.replace) is True
        if not with_replacement and self.whole_without_replacement:
            return 1.0
        if size is None or isinstance(size, bool):
            draws = float(n_rows)
        elif isinstance(size, (float, np.floating)):
            draws = float(size) * (n_rows if weight_sum is None else weight_sum)
        else:
            draws = float(size)
        share = draws / max(n_rows, 1)
        return float(1.0 - np.exp(-share)) if with_replacement else min(1.0, share)


#: Ensembles whose trees each fit a draw of the rows. A row count of their trees
#: (``min_samples_leaf``: rows of *that draw*) is scaled against the rows one tree sees in the
#: full fit, not against all of them: a forest with ``max_samples=0.25`` fits each tree on about
#: 22 % of the rows, so ``min_samples_leaf=250`` asks for leaves of about 1.1 % of a tree's
#: rows, not 0.25 %. Declared per class, as :data:`ROW_DRAWS`.
TREE_DRAWS = {
    **dict.fromkeys(("RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier",
                     "ExtraTreesRegressor"), TreeDraw("max_samples", "bootstrap", whole_without_replacement=True)),
    **dict.fromkeys(("BaggingClassifier", "BaggingRegressor"), TreeDraw("max_samples", "bootstrap")),
    **dict.fromkeys(("GradientBoostingClassifier", "GradientBoostingRegressor"), TreeDraw("subsample")),
}
#: Estimator classes fitted by a path of updates over the rows (the ``"rows"`` family: fitted
#: on the training candles, not on distilled points).
PATH_DEPENDENT = frozenset({
    "SGDClassifier", "SGDRegressor", "SGDOneClassSVM", "Perceptron", "PassiveAggressiveClassifier",
    "PassiveAggressiveRegressor", "MLPClassifier", "MLPRegressor",
})
#: Boosting by reweighting (AdaBoost's SAMME and R2): each round raises the weight of every
#: row whose *own* label the previous rounds got wrong (R2 then draws the next round's rows by
#: those weights). With a row's label replaced by its cluster's mean, which is what makes the
#: agnostic points work for the others, that path is lost: the weights go where the rows' label
#: noise was, and boosting by reweighting is known to chase exactly that noise. Fitted on the
#: training rows (``EstimatorTraits.reweights``), as the early-stopping ones are. Prompted by the
#: first held-out set (AdaBoost stumps 11–22 log-return units from their full backtests on
#: cluster points); decided on ``benchmarks/estimator_strategies/calibration_reweighting``.
REWEIGHTING = frozenset({"AdaBoostClassifier", "AdaBoostRegressor"})
#: Histogram boosting, by class and the module it must come from: the rows are binned once, and
#: each round's cost is mostly the split search over the bins × features × leaves, which does not
#: grow with the rows — so a fit on the training rows costs about twice one on the agnostic
#: points (fits and vectorised runs in worker seconds, ``bench_estimators.py``'s per-strategy
#: lines on their calibration sets: scikit-learn 1.8x, LightGBM 2.4x, XGBoost 2.6x), and it is
#: the full fit itself. Fitted on the training rows (``EstimatorTraits.binned``); XGBoost with
#: ``tree_method="exact"`` is not binned.
BINNED = {"HistGradientBoostingClassifier": "sklearn.", "HistGradientBoostingRegressor": "sklearn.",
          "LGBMClassifier": "lightgbm.", "LGBMRegressor": "lightgbm.",
          "XGBClassifier": "xgboost.", "XGBRegressor": "xgboost."}
#: Estimators that can stop on a score of rows they hold out of their own fit (a validation
#: share of the training rows, drawn with their ``random_state``), and the hyperparameter that
#: turns it on: ``early_stopping`` True, or ``"auto"`` above :data:`ROW_AUTO`'s rows;
#: ``n_iter_no_change`` set. Where they stop is a property of those real rows, which points
#: cannot stand for, so with it on they are fitted on the training rows as the path-dependent
#: ones are (the ``"rows"`` family; ``benchmarks/estimator_strategies/calibration_auto``: 0.845
#: on points with ``"auto"`` decided by the rows they stand for, 1.000 on the rows).
EARLY_STOPPING = {
    "HistGradientBoostingClassifier": "early_stopping", "HistGradientBoostingRegressor": "early_stopping",
    "GradientBoostingClassifier": "n_iter_no_change", "GradientBoostingRegressor": "n_iter_no_change",
}
#: Modules whose estimators are linear or logistic in the features (the ``"linear"`` family).
LINEAR_MODULES = ("sklearn.linear_model", "distillbt.models")
#: Linear models of those modules whose loss is not squared or logistic (robust, quantile,
#: resampling-consensus and Poisson-like fits): the moments exact-linear points reproduce do not
#: determine their fit, so they are ``"agnostic"``.
MOMENT_BLIND = frozenset({
    "HuberRegressor", "QuantileRegressor", "RANSACRegressor", "TheilSenRegressor", "PoissonRegressor",
    "GammaRegressor", "TweedieRegressor",
})
#: scikit-learn classifiers that see their rows only through each class's share, mean and
#: covariance (the ``"moments"`` family).
CLASS_MOMENTS = frozenset({"LinearDiscriminantAnalysis", "QuadraticDiscriminantAnalysis", "GaussianNB"})
#: Rows a ``"moments"`` estimator without ``sample_weight`` is fitted on (its points repeated
#: in proportion to their weights: class shares rounded to about 1 / MOMENT_ROWS).
MOMENT_ROWS = 20_000
#: Transformers that keep a linear model linear in the original features (affine maps).
AFFINE_STEPS = frozenset({"StandardScaler"})


@dataclass(frozen=True)
class EstimatorTraits:
    """What fitting on distilled points must know about one estimator.

    ``name``: its class (``Pipeline(StandardScaler, LogisticRegression)`` for a pipeline);
    ``family``: ``"linear"``, ``"agnostic"`` or ``"rows"`` (module docstring); ``classifier``: it takes
    class labels only (scikit-learn's ``is_classifier``), so soft labels become two hard rows;
    ``weight_keys``: the ``fit`` keywords weights go to (empty: none accepted, rows are
    resampled); ``sum_loss``: weights sum to the rows the points stand for (:data:`SUM_LOSS`,
    :data:`WEIGHT_DRAWS`); ``stops_early``: it stops on rows it holds out of its fit
    (:data:`EARLY_STOPPING`; ``"auto"`` decided by the ``n_rows`` it was asked about);
    ``reweights``: it boosts by reweighting the rows by their own errors (:data:`REWEIGHTING`);
    ``binned``: its fit costs about as much on the rows as on points (:data:`BINNED`). Any of
    the three makes the screen fit it on the training rows when it can (:attr:`on_rows`)."""

    name: str
    family: str
    classifier: bool
    weight_keys: tuple[str, ...]
    sum_loss: bool
    stops_early: bool = False
    reweights: bool = False
    binned: bool = False

    @property
    def rows_reason(self) -> str:
        """Why the screen fits it on the training rows though its family would take points
        (only they reproduce its full fit, or they cost about what points do); empty if it
        does not. A caller's ``--method`` or a pooled basket fits it on its family's points
        all the same."""
        if self.stops_early:
            return "early stopping on rows it holds out"
        if self.reweights:
            return "boosting that reweights its rows by their own errors"
        if self.binned:
            return "histogram boosting: the rows cost about what points do"
        return ""

    @property
    def on_rows(self) -> bool:
        """Whether :attr:`rows_reason` has one."""
        return bool(self.rows_reason)


def check_estimator(estimator, *, who: str) -> None:
    """Raise :class:`~distillbt.discovery.StrategyError` (one line, naming ``who``) unless
    ``estimator`` has callable ``fit`` and ``predict``."""
    missing = [m for m in ("fit", "predict") if not callable(getattr(estimator, m, None))]
    if estimator is None or missing:
        raise StrategyError(f"{who}: the estimator {type(estimator).__name__} has no "
                            f"{' or '.join(missing or ['fit'])} method")


def estimator_traits(estimator, *, n_rows: int | None = None) -> EstimatorTraits:
    """The :class:`EstimatorTraits` of an unfitted estimator (read from its class, its
    parameters and its ``fit`` signatures; nothing is fitted). ``n_rows``: the rows its full
    fit gets, for what an ``"auto"`` decides by them (None: unknown, ``"auto"`` counts as off)."""
    steps = _pipeline_steps(estimator)
    if steps is not None:
        last = steps[-1][1]
        inner = estimator_traits(last, n_rows=n_rows)
        before = [type(s).__name__ for _, s in steps[:-1] if s not in (None, "passthrough")]
        family = inner.family if inner.family == "rows" or all(b in AFFINE_STEPS for b in before) else "agnostic"
        keys = tuple(f"{name}__sample_weight" for name, step in steps
                     if step not in (None, "passthrough") and _takes_weight(step))
        # without weights on the last step the fit ignores them: resample instead
        if f"{steps[-1][0]}__sample_weight" not in keys:
            keys = ()
        name = f"Pipeline({', '.join([*before, inner.name])})"
        return EstimatorTraits(name, family, _is_classifier(estimator) or inner.classifier, keys, inner.sum_loss,
                               inner.stops_early, inner.reweights, inner.binned)
    cls = type(estimator)
    module = cls.__module__ or ""
    if cls.__name__ in PATH_DEPENDENT:
        family = "rows"
    elif cls.__name__ in CLASS_MOMENTS and module.startswith("sklearn."):
        family = "moments"
    else:
        linear = module.startswith(LINEAR_MODULES) and cls.__name__ not in MOMENT_BLIND
        family = "linear" if linear else "agnostic"
    keys = ("sample_weight",) if _takes_weight(estimator) else ()
    return EstimatorTraits(cls.__name__, family, _is_classifier(estimator), keys,
                           cls.__name__ in SUM_LOSS or cls.__name__ in WEIGHT_DRAWS,
                           _stops_early(estimator, n_rows), cls.__name__ in REWEIGHTING,
                           _binned(estimator))


def _binned(estimator) -> bool:
    """Whether ``estimator`` (not a pipeline) is histogram boosting (:data:`BINNED`; XGBoost
    unless its ``tree_method`` is ``"exact"``)."""
    prefix = BINNED.get(type(estimator).__name__)
    if prefix is None or not (type(estimator).__module__ or "").startswith(prefix):
        return False
    get_params = getattr(estimator, "get_params", None)
    return (get_params(deep=False).get("tree_method") if get_params else None) != "exact"


def _stops_early(estimator, n_rows: int | None) -> bool:
    """Whether ``estimator`` (not a pipeline) stops on rows it holds out (:data:`EARLY_STOPPING`)."""
    name = EARLY_STOPPING.get(type(estimator).__name__)
    if name is None or not hasattr(estimator, "get_params"):
        return False
    value = estimator.get_params(deep=False).get(name)
    if name in ROW_AUTO and isinstance(value, str) and value == "auto":
        return n_rows is not None and n_rows > ROW_AUTO[name]
    if name == "n_iter_no_change":
        return value is not None
    return isinstance(value, (bool, np.bool_)) and bool(value)


def fit_estimator(estimator, X, y, weight=None, *, n_rows: int | None = None, task: str = "regression",
                  seed: int = 0):
    """Fit ``estimator`` on points ``X``/``y`` with point weights ``weight`` (module
    docstring); returns ``(fitted estimator, notes)``.

    ``n_rows``: the real rows the points stand for (None: as many as points); ``task``:
    ``"classification"`` when ``y`` holds probabilities of 1. ``weight`` None fits the rows
    as they are (real candles).
    """
    traits = estimator_traits(estimator)
    X = np.asarray(X, dtype="float64")
    y = np.asarray(y, dtype="float64").reshape(-1)
    n_points = len(y)
    notes = []
    if weight is None:
        if task == "classification" and traits.classifier and _soft(y):
            weight = np.ones(len(y))
        else:
            return _fitted(estimator, estimator.fit(X, y)), ()
    as_given = _flat_params(estimator)  # before anything below sets draws: the full fit's own
    w = np.asarray(weight, dtype="float64").reshape(-1)
    if task == "classification" and traits.classifier and _soft(y):
        p = np.clip(y, 0.0, 1.0)
        X = np.concatenate([X, X])
        y = np.concatenate([np.ones(len(p)), np.zeros(len(p))])
        w = np.concatenate([w * p, w * (1.0 - p)])
        notes.append(f"soft labels as hard ones: each of {len(p)} points split into y=1 and y=0 rows "
                     f"weighted by its probability")
        notes.extend(_draw_every_row(estimator))
    keep = w > 0
    X, y, w = X[keep], y[keep], w[keep]
    if n_rows and n_rows > n_points:
        notes.extend(_scale_row_counts(estimator, n_points, n_rows, as_given=as_given))
        notes.extend(_decide_row_auto(estimator, n_rows))
    total = float(n_rows) if (n_rows and traits.sum_loss) else float(len(w))
    w = w * (total / w.sum())
    if traits.weight_keys:
        with fast_weighted_binning():  # boosting's weighted binning, same thresholds, one pass per column
            fitted = estimator.fit(X, y, **{key: w for key in traits.weight_keys})
        return _fitted(estimator, fitted), tuple(notes)
    if np.allclose(w, w[0]):
        return _fitted(estimator, estimator.fit(X, y)), tuple(notes)
    if traits.family == "moments":
        rows = np.repeat(np.arange(len(w)), np.maximum(1, np.rint(MOMENT_ROWS * w / w.sum())).astype(int))
        notes.append(f"{traits.name}.fit takes no sample_weight: fitted on the points repeated in proportion to "
                     f"their weights ({len(rows)} rows; a class's points alike, so its moments stay exact)")
        return _fitted(estimator, estimator.fit(X[rows], y[rows])), tuple(notes)
    rows = _systematic_resample(w, len(w), seed)
    notes.append(f"{traits.name}.fit takes no sample_weight: fitted on {len(rows)} rows drawn in proportion "
                 f"to the points' weights (systematic resampling, seed {seed})")
    return _fitted(estimator, estimator.fit(X[rows], y[rows])), tuple(notes)


def _flat_params(estimator) -> dict:
    get_params = getattr(estimator, "get_params", None)
    return dict(get_params(deep=True)) if get_params is not None else {}


def _tree_share(estimator, flat: dict, path: str, n_rows: int, *, weight_sum: float | None = None) -> float:
    """Share of ``n_rows`` distinct rows one tree fits for a row count at ``path`` (its
    parameter name less the last part): the draw of the nearest :data:`TREE_DRAWS` ensemble
    owning it (the object at ``path``, then its parents), as ``flat`` declares it; 1 without.
    ``weight_sum``: the weights' sum, which sizes the draws of a :data:`WEIGHT_DRAWS` owner."""
    parts = path.split("__") if path else []
    for depth in range(len(parts), -1, -1):
        prefix = "__".join(parts[:depth])
        owner = flat.get(prefix) if prefix else estimator
        draw = TREE_DRAWS.get(type(owner).__name__)
        if draw is not None:
            lead = f"{prefix}__" if prefix else ""
            own = {k[len(lead):]: v for k, v in flat.items() if k.startswith(lead) and "__" not in k[len(lead):]}
            by_weight = weight_sum if type(owner).__name__ in WEIGHT_DRAWS else None
            return draw.distinct_share(own, n_rows, weight_sum=by_weight)
    return 1.0


def _scale_row_counts(estimator, n_points: int, n_rows: int, *, as_given: dict | None = None) -> list:
    """Scale the :data:`ROW_COUNTS` hyperparameters of ``estimator`` (pipeline steps included)
    from the rows one of its trees sees in the full fit to the points one sees here, in place;
    notes of what changed. A tree's ``min_samples_leaf`` becomes ``min_weight_fraction_leaf``
    (the same share of a tree's rows, exact with unequal weights) where the estimator has one
    left at 0. ``as_given``: its parameters as the full fit uses them (before row draws were
    set for the points; :data:`TREE_DRAWS`)."""
    params = _flat_params(estimator)
    if not params:
        return []
    as_given = params if as_given is None else as_given
    changed = {}
    for name, value in params.items():
        base = name.rsplit("__", 1)[-1]
        if base in ROW_COUNTS and isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            path = name[: -len(base)].removesuffix("__")
            full_rows = n_rows * _tree_share(estimator, as_given, path, n_rows)
            fraction = name[: -len(base)] + "min_weight_fraction_leaf"
            if base == "min_samples_leaf" and params.get(fraction) == 0.0 and value > 1:
                changed[fraction] = min(0.5, value / full_rows)
                changed[name] = 1
                continue
            # on the points a WEIGHT_DRAWS ensemble's weights sum to the rows: its draws are sized by them
            point_rows = n_points * _tree_share(estimator, params, path, n_points, weight_sum=n_rows)
            scaled = max(ROW_COUNTS[base], int(round(value * point_rows / full_rows)))
            if scaled != value:
                changed[name] = scaled
    if not changed:
        return []
    old = params
    estimator.set_params(**changed)
    return [f"row counts scaled to {n_points} points standing for {n_rows} rows: "
            + ", ".join(f"{k} {old[k]} -> {v:.3g}" for k, v in changed.items())]


def _decide_row_auto(estimator, n_rows: int) -> list:
    """Set the :data:`ROW_AUTO` hyperparameters left at ``"auto"`` (pipeline steps included) as
    a fit on ``n_rows`` rows decides them, in place; notes of what changed."""
    params = _flat_params(estimator)
    changed = {name: n_rows > ROW_AUTO[name.rsplit("__", 1)[-1]] for name, value in params.items()
               if name.rsplit("__", 1)[-1] in ROW_AUTO and isinstance(value, str) and value == "auto"}
    if not changed:
        return []
    estimator.set_params(**changed)
    return [f"decided as on the {n_rows} rows the points stand for: "
            + ", ".join(f"{name} 'auto' -> {value}" for name, value in changed.items())]


def _draw_every_row(estimator) -> list:
    """Set the :data:`ROW_DRAWS` hyperparameters of ``estimator`` (the last step of a pipeline)
    to draw every row, in place, where it draws fewer; notes of what changed."""
    steps = _pipeline_steps(estimator)
    prefix, last = (f"{steps[-1][0]}__", steps[-1][1]) if steps else ("", estimator)
    wanted = ROW_DRAWS.get(type(last).__name__)
    if not wanted:
        return []
    params = last.get_params()
    subsample = params.get("subsample")
    draws = params.get("bootstrap") is True or (isinstance(subsample, (float, int)) and not isinstance(
        subsample, bool) and subsample < 1)
    if not draws:
        return []
    changed = {name: value for name, value in wanted.items() if name in params and params[name] != value}
    estimator.set_params(**{prefix + name: value for name, value in changed.items()})
    return ["every row drawn, so no draw splits a point's y=1 and y=0 rows apart: "
            + ", ".join(f"{name} {params[name]!r} -> {value!r}" for name, value in changed.items())]


def _fitted(estimator, returned):
    return estimator if returned is None else returned


def _soft(y) -> bool:
    return bool(np.any((y != 0.0) & (y != 1.0)))


def _systematic_resample(weight, n: int, seed: int) -> np.ndarray:
    """``n`` row indices drawn in proportion to ``weight`` with one uniform offset: every row
    is drawn ⌊n·wᵢ⌋ or ⌈n·wᵢ⌉ times (far less noise than independent draws)."""
    cdf = np.cumsum(weight / weight.sum())
    cdf[-1] = 1.0
    u = (np.random.default_rng(seed).random() + np.arange(n)) / n
    return np.searchsorted(cdf, u, side="right")


def _pipeline_steps(estimator):
    steps = getattr(estimator, "steps", None)
    if type(estimator).__name__ != "Pipeline" or not isinstance(steps, list) or not steps:
        return None
    return [(str(name), step) for name, step in steps]


def _takes_weight(estimator) -> bool:
    try:
        parameters = inspect.signature(estimator.fit).parameters
    except (TypeError, ValueError, AttributeError):
        return False
    return "sample_weight" in parameters


def _is_classifier(estimator) -> bool:
    try:
        from sklearn.base import is_classifier
    except ImportError:  # scikit-learn is a dependency; an estimator may still come from elsewhere
        return getattr(estimator, "_estimator_type", None) == "classifier"
    try:
        return bool(is_classifier(estimator))
    except Exception:  # noqa: BLE001 - a foreign object whose tags cannot be read
        return getattr(estimator, "_estimator_type", None) == "classifier"
