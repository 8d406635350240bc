"""How good is a distilled set? The DC-BENCH protocol on a chronological split.

For every method and size, and every seed: distil the training period, train each learner on
the result with the same recipe as everyone else, and score it on the real test period. The
hyper-parameters a learner needs (ridge's λ on the validation MSE, logistic regression's α on
the validation log-loss, the MLP's weight decay α on the validation loss) are chosen on the
validation period per training set, never on the test period.

The MLP recipe (the same for every set): 16 tanh units, full-batch Adam (step 1e-2, 300 steps,
by which the training loss has stopped moving: the full batch makes the run deterministic given
the initialisation), for each α in :data:`MLP_ALPHAS`; the α with the lowest validation loss
(log-loss for classification, MSE for regression) is scored. A weak-signal market is where a
small set needs more shrinkage than the full one, and where a fixed small α lets a 50-point
set be over-fitted.

A method may be given as ``"name@learner"`` (e.g. ``"gradient@mlp"``): the distiller matches
that learner (``linear``, ``logistic`` or ``mlp``) instead of the task's linear model — the
cross-learner case is then read off the other learners' rows. Methods are compared with the baselines that must always run beside
them — random subset, k-medoids coreset, herding — and with the full training set.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import spearmanr

from .distill.prepare import PreparedData
from .distill.registry import EVALUATION_METHODS, METHODS
from .distill.runner import distill
from .errors import InputError
from .executor import using
from .models import MLP, LogisticRegression, Ridge

__all__ = ["evaluate", "Evaluation", "LEARNERS", "DEFAULT_METHODS", "RIDGE_ALPHAS", "LOGISTIC_ALPHAS",
           "MLP_ALPHAS"]

#: λ grid for ridge; the value used is chosen on the validation period.
RIDGE_ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
#: α grid for logistic regression; chosen per training set on the validation log-loss (a
#: small set may need more shrinkage than the full one: every set gets the same choice).
LOGISTIC_ALPHAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
#: weight-decay grid of the MLP; chosen per training set on the validation loss. Half decades
#: where the network learns (1e-3…1e-2): on a weak signal 0.1 and 1 already shrink it to a
#: constant, and a decade step there jumped past the decay a set is best fitted at.
MLP_ALPHAS = (1e-3, 3e-3, 1e-2, 1e-1, 1.0)
#: the MLP's full-batch Adam recipe (step, steps)
MLP_LEARNING_RATE, MLP_EPOCHS, MLP_HIDDEN = 1e-2, 300, 16
DEFAULT_METHODS = EVALUATION_METHODS
#: learners a distiller may be asked to match with ``"method@learner"``
DISTILL_LEARNERS = ("linear", "logistic", "mlp")


def _ridge(seed):
    return Ridge()  # α is set per fit from the validation period


def _mlp(task):
    def factory(seed, alpha=MLP_ALPHAS[0]):
        return MLP(task=task, hidden=MLP_HIDDEN, alpha=alpha, learning_rate=MLP_LEARNING_RATE,
                   epochs=MLP_EPOCHS, batch_size=None, random_state=seed)
    return factory


#: Learner name → (task, factory(seed)). Every training set gets the same recipe.
LEARNERS = {
    "ridge": ("regression", _ridge),
    "mlp-regression": ("regression", _mlp("regression")),  # α set per fit (validation)
    "logistic": ("classification", lambda seed: LogisticRegression()),  # α set per fit (validation)
    "mlp-classification": ("classification", _mlp("classification")),  # α set per fit (validation)
}
#: The learner each task's distillers match (gradient matching's inner model).
DISTILL_LEARNER = {"regression": "linear", "classification": "logistic"}


@dataclass
class Evaluation:
    """Results: ``records`` (one per method, size, learner, metric: mean, std, values per
    seed) and ``distill_seconds`` (mean wall time per method and size)."""

    records: list = field(default_factory=list)
    distill_seconds: dict = field(default_factory=dict)
    context: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"context": self.context, "records": self.records, "distill_seconds": self.distill_seconds}

    def table(self, metrics=("ic", "accuracy", "r2", "coef_rel_error")) -> str:
        """A readable table: one row per method and size, one column per learner × metric."""
        columns = [(l, m) for l in LEARNERS for m in metrics
                   if any(r["learner"] == l and r["metric"] == m for r in self.records)]
        index = {(r["method"], r["size"], r["learner"], r["metric"]): r for r in self.records}
        rows = sorted({(r["method"], r["size"]) for r in self.records},
                      key=lambda k: (k[0] == "full", k[0], k[1] if isinstance(k[1], int) else 10**9))
        head = ["method", "size"] + [f"{l} {m}" for l, m in columns]
        body = []
        for method, size in rows:
            cells = [method, str(size)]
            for learner, metric in columns:
                rec = index.get((method, size, learner, metric))
                cells.append("" if rec is None else f"{rec['mean']:.4f}±{rec['std']:.4f}")
            body.append(cells)
        widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in [head] + body]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def _scores(task, pred, data: PreparedData, part: str) -> dict:
    rows = data.parts[part]
    returns = data.target[rows]
    ic = float(spearmanr(pred, returns).statistic) if np.std(pred) > 0 else 0.0
    if task == "regression":
        y = returns / data.target_scale
        mse = float(np.mean((pred - y) ** 2))
        return {"mse": mse, "r2": 1.0 - mse / float(np.var(y)), "ic": ic}
    y = data.direction[rows]
    p = np.clip(pred, 1e-12, 1 - 1e-12)
    return {"accuracy": float(np.mean((p > 0.5) == (y == 1))),
            "log_loss": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))), "ic": ic}


def _log_loss(p, y):
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _predict(model, task, X):
    return model.predict(X) if task == "regression" else model.predict_proba(X)


def _train_and_score(learner, seed, X, y, w, data: PreparedData, full_coef: dict | None) -> dict:
    task, factory = LEARNERS[learner]
    if learner == "logistic":
        # α chosen on the validation period's log-loss; the test period is only scored.
        X_val, y_val = data.X[data.parts["validation"]], data.direction[data.parts["validation"]]
        fits = {a: LogisticRegression(alpha=a).fit(X, y, sample_weight=w) for a in LOGISTIC_ALPHAS}
        alpha = min(fits, key=lambda a: _log_loss(fits[a].predict_proba(X_val), y_val))
        scores = _scores(task, fits[alpha].predict_proba(data.X[data.parts["test"]]), data, "test")
        scores["alpha"] = alpha
        return scores
    if learner.startswith("mlp"):
        # α chosen on the validation loss; the same initialisation (seed) for every α.
        X_val = data.X[data.parts["validation"]]
        y_val = data.y(task, "validation")

        def val_loss(model):
            pred = _predict(model, task, X_val)
            return _log_loss(pred, y_val) if task == "classification" else float(np.mean((pred - y_val) ** 2))

        fits = {a: factory(seed, a).fit(X, y, sample_weight=w) for a in MLP_ALPHAS}
        losses = {a: val_loss(m) for a, m in fits.items()}
        alpha = min(losses, key=losses.get)
        model = fits[alpha]
        scores = _scores(task, _predict(model, task, data.X[data.parts["test"]]), data, "test")
        curve = model.loss_curve_
        scores["alpha"] = alpha
        # convergence: relative change of the training loss over the last 10% of the steps
        tail = max(1, len(curve) // 10)
        scores["loss_change"] = float(abs(curve[-tail - 1] - curve[-1]) / max(abs(curve[-1]), 1e-12))
        return scores
    # λ chosen on the validation period; the test period is only scored.
    y_val = data.y("regression", "validation")
    X_val = data.X[data.parts["validation"]]
    fits = {a: Ridge(alpha=a).fit(X, y, sample_weight=w) for a in RIDGE_ALPHAS}
    alpha = min(fits, key=lambda a: float(np.mean((fits[a].predict(X_val) - y_val) ** 2)))
    scores = _scores(task, fits[alpha].predict(data.X[data.parts["test"]]), data, "test")
    scores["alpha"] = alpha
    if full_coef is not None:
        ref = full_coef[alpha]
        scores["coef_rel_error"] = float(np.linalg.norm(fits[alpha].coef_ - ref) / np.linalg.norm(ref))
    return scores


def _split_method(method, task):
    """``"name@learner"`` → (name, learner); gradient matching defaults to the task's linear
    model; other methods take no learner unless one is named."""
    name, _, learner = method.partition("@")
    if learner:
        return name, learner
    return name, (DISTILL_LEARNER[task] if name == "gradient" else None)


def _job(method, size, seed, task, *, data, learners, per_regime, weighting, full_coef):
    started = time.perf_counter()
    name, learner = _split_method(method, task)
    params = {"learner": learner} if learner is not None else None
    distilled = distill(data, method=name, size=size, task=task, per_regime=per_regime,
                        weighting=weighting, seed=seed, method_params=params)
    seconds = time.perf_counter() - started
    out = {}
    for learner in learners:
        if LEARNERS[learner][0] == task:
            out[learner] = _train_and_score(learner, seed, distilled.X, distilled.y, distilled.weight,
                                            data, full_coef if learner == "ridge" else None)
    return method, size, seed, task, seconds, out


def evaluate(
    data: PreparedData,
    *,
    methods=DEFAULT_METHODS,
    sizes=(10, 20, 50, 100),
    seeds: int = 5,
    learners=tuple(LEARNERS),
    per_regime: bool = True,
    weighting: str = "frequency",
    n_jobs: int = 1,
    progress: bool = True,
    backend: str = "loky",
    scheduler: str | None = None,
    executor=None,
) -> Evaluation:
    """Run the protocol; returns an :class:`Evaluation` (see the module docstring).

    ``full`` is evaluated once per seed (its size is the whole training period). The ridge
    learner also reports ``coef_rel_error``: the relative distance of its coefficients to
    the full-data ridge fit with the same λ.

    One job per (method, size, seed, task) on ``executor``, else the active
    :class:`~distillbt.executor.Executor`, else one made from ``n_jobs``, ``backend`` and
    ``scheduler``; each job distils in its worker's process. Results do not depend on where.
    """
    unknown = [m for m in methods if m.partition("@")[0] not in METHODS
               or (m.partition("@")[1] and m.partition("@")[2] not in DISTILL_LEARNERS)]
    unknown += [l for l in learners if l not in LEARNERS]
    if unknown:
        raise InputError(f"unknown method or learner {unknown[0]!r}")
    if seeds < 1:
        raise InputError("seeds must be at least 1")
    n_train = data.parts["train"].stop - data.parts["train"].start
    too_big = [s for s in sizes if not 1 <= s <= n_train]
    if too_big:
        raise InputError(f"size {too_big[0]} must be between 1 and the {n_train} training rows")
    tasks = sorted({LEARNERS[l][0] for l in learners})
    X_train = data.X[data.parts["train"]]
    full_coef = {a: Ridge(alpha=a).fit(X_train, data.y("regression")).coef_ for a in RIDGE_ALPHAS}

    plan = [(m, (n_train if m == "full" else s), seed, task)
            for m in methods for s in (sizes if m != "full" else sizes[:1]) for seed in range(seeds)
            for task in tasks]
    common = {"data": data, "learners": learners, "per_regime": per_regime, "weighting": weighting,
              "full_coef": full_coef}
    with using(executor, n_jobs=n_jobs, backend=backend, scheduler=scheduler) as ex:
        results = ex.map(_job, plan, kwargs=common, desc="evaluate", unit="set", progress=progress)

    evaluation = Evaluation(context={
        "source": data.candles.source, "synthetic": data.candles.synthetic,
        "split": data.split_info(), "seeds": list(range(seeds)), "per_regime": per_regime,
        "weighting": weighting, "ridge_alphas": list(RIDGE_ALPHAS), "logistic_alphas": list(LOGISTIC_ALPHAS),
        "mlp_alphas": list(MLP_ALPHAS), "mlp_recipe": {"hidden": MLP_HIDDEN, "learning_rate": MLP_LEARNING_RATE,
                                                       "epochs": MLP_EPOCHS, "batch": "full"},
        "distill_learner": DISTILL_LEARNER,
    })
    grouped: dict = {}
    for method, size, seed, task, seconds, scores in results:
        evaluation.distill_seconds.setdefault(f"{method}/{size}/{task}", []).append(seconds)
        for learner, metrics in scores.items():
            for metric, value in metrics.items():
                grouped.setdefault((method, size, learner, metric), []).append(value)
    for (method, size, learner, metric), values in grouped.items():
        values = np.asarray(values, dtype="float64")
        evaluation.records.append({
            "method": method, "size": int(size), "learner": learner, "task": LEARNERS[learner][0],
            "distilled_with": _split_method(method, LEARNERS[learner][0])[1],
            "metric": metric, "mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "values": values.tolist(),
        })
    evaluation.distill_seconds = {k: float(np.mean(v)) for k, v in evaluation.distill_seconds.items()}
    return evaluation
