"""Gradient matching: Dataset Condensation (Zhao, Mopuri & Bilen, ICLR 2021) in numpy.

A synthetic set ``S = {(x̃ⱼ, ỹⱼ)}`` is learned so that, at the model parameters ``θ`` a
learner actually visits, the gradient of the loss on ``S`` points the way the gradient on the
real data ``T`` points; then training on ``S`` walks the path training on ``T`` walks. Each
outer iteration

1. draws a fresh initialisation ``θ₀`` (the learner's default initialisation);
2. at ``θ₀`` and after each of ``n_inner`` gradient-descent steps on ``S``
   (``θ ← θ − η ∇θL(S; θ)``), estimates ``g_T = ∇θL(T; θ)`` on a mini-batch of real rows
   drawn ∝ ``sample_weight``, computes ``g_S = ∇θL(S; θ)`` and the distance
   ``1 − cos(g_T, g_S)``, averaged over output units (one row of a weight matrix with its
   bias per unit, as in DC; for linear and logistic models the whole vector);
3. moves ``x̃`` and ``ỹ`` one Adam step down the gradient of that distance, in closed form:
   the chain rule through the cosine gives ``v = ∂dist/∂g_S``, the learner's vector-Jacobian
   product (:mod:`distillbt.distill._losses`) gives ``∂(v·g_S)/∂x̃`` and ``∂(v·g_S)/∂ỹ``.
   The training run is not differentiated (as in DC).

Classification labels are ``ỹ = sigmoid(z)`` with ``z`` learned, so they stay soft labels in
(0, 1). Step sizes follow a cosine decay over ``n_outer`` iterations.

Two departures from the paper, both about noise (market signals are weak, so a mini-batch
gradient is mostly noise):

- for linear and logistic learners ``g_T`` is estimated with a control variate whose linear
  part is exact (see :class:`_RealGradient`): for linear regression it is the exact full-data
  gradient, for logistic regression the batch only supplies the small non-linear remainder;
- the convergence check and ``loss_history_`` use the distance on a fixed panel of 8
  initialisations with real gradients computed once on large batches, a function of ``S``
  alone (the training distance changes with every draw of ``θ`` and batch by more than ``S``
  improves it). The fit stops when its moving average over 20 iterations has not improved by
  ``tol`` for ``patience`` iterations.

Everything runs on standardised data (features, and the target for regression, centred and
scaled by their weighted mean and standard deviation): ``lr_x`` and ``lr_y`` are in standard
deviations per step; the result is mapped back to the units of ``X`` and ``y``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import expit, logit

from ..errors import InputError
from ._losses import LinearSpec, make_spec
from ._optim import Adam
from .base import BaseDistiller, check_training_data
from .coresets import KMedoids, RandomSubset, _check_choice, _check_float, _check_int

__all__ = ["GradientMatching"]

INITS = ("kmedoids", "random")
SCHEDULES = ("cosine", "constant")

# Real labels 0/1 start as soft labels 0.1/0.9: a logit of ±∞ could never move.
_LABEL_INIT = 0.9
# Step of the short training runs on S, in standardised units: below 2/λ_max of the loss's
# Hessian on unit-variance data; the logistic loss's curvature is at most 1/4, so the linear
# model of a classification task can step four times as far.
_INNER_LR, _INNER_LR_LOGISTIC = 0.3, 1.0
# Convergence panel: parameter draws, real rows per draw (at least), and the moving average
# of its distance (the set still jitters while the step is large).
_PANEL_SIZE = 8
_PANEL_BATCH = 4096
_SMOOTHING = 20
_EPS = 1e-12


class GradientMatching(BaseDistiller):
    """Distil ``(X, y)`` into ``size`` synthetic points by gradient matching.

    Parameters (keyword-only)
    -------------------------
    size : number of synthetic points.
    task : ``"regression"`` or ``"classification"`` (``y`` 0/1; learned labels are soft).
    learner : the model whose gradients are matched: ``"linear"`` (a linear model with the
        task's loss: least squares for regression, logistic for classification),
        ``"logistic"`` (the same, classification only) or ``"mlp"`` (one tanh hidden layer of
        ``hidden`` units, the task's loss).
    init : the real points the synthetic set starts from: ``"kmedoids"``
        (:class:`~distillbt.distill.coresets.KMedoids` on at most 2,000 rows, 5 rounds) or
        ``"random"`` (:class:`~distillbt.distill.coresets.RandomSubset`, ∝ ``sample_weight``);
        for classification within each class, in proportion to the class weights.
    n_outer : outer iterations (fresh initialisations), at most.
    n_inner : gradient-descent steps on ``S`` per initialisation; the gradients are matched
        at the initialisation and after each step, so one outer iteration makes
        ``n_inner + 1`` updates of ``S``.
    inner_lr : step of those runs; ``"auto"`` = 1.0 for the logistic model, else 0.3.
    lr_x, lr_y : Adam step sizes of the points and of the labels (the label logits for
        classification), in standard deviations.
    batch_size : real rows per gradient (drawn with replacement, ∝ ``sample_weight``).
    lr_schedule : ``"cosine"`` (decay to 0 over ``n_outer``) or ``"constant"``.
    tol, patience : stop when the panel distance (see ``loss_history_``), averaged over the
        last 20 iterations, has not improved by ``tol`` for ``patience`` outer iterations.
    hidden : hidden units of the ``"mlp"`` learner.
    learn_labels : also learn ``ỹ`` (otherwise the labels of the initial real points stay).
    random_state : seed of ``numpy.random.default_rng``.

    Attributes
    ----------
    ``X_`` (size, d), ``y_`` (size,), ``weight_`` (uniform), ``n_iter_`` (outer iterations
    run), ``converged_`` (stopped by the convergence check rather than by ``n_outer``),
    ``loss_history_`` (after each outer iteration, the mean distance ``1 − cos`` between real
    and synthetic gradients over a fixed panel of 8 initialisations: 0 is a perfect match,
    1 orthogonal).

    Example::

        gm = GradientMatching(size=50, task="classification", learner="logistic").fit(X, y)
        LogisticRegression().fit(gm.X_, gm.y_, sample_weight=gm.weight_)
    """

    def __init__(
        self,
        *,
        size=50,
        task="regression",
        learner="linear",
        init="kmedoids",
        n_outer=200,
        n_inner=5,
        inner_lr="auto",
        lr_x=0.05,
        lr_y=0.05,
        batch_size=256,
        lr_schedule="cosine",
        tol=1e-5,
        patience=20,
        hidden=16,
        learn_labels=True,
        random_state=0,
    ):
        self.size = size
        self.task = task
        self.learner = learner
        self.init = init
        self.n_outer = n_outer
        self.n_inner = n_inner
        self.inner_lr = inner_lr
        self.lr_x = lr_x
        self.lr_y = lr_y
        self.batch_size = batch_size
        self.lr_schedule = lr_schedule
        self.tol = tol
        self.patience = patience
        self.hidden = hidden
        self.learn_labels = learn_labels
        self.random_state = random_state

    def _check_options(self):
        """Validated options (``learner``, ``task`` and ``hidden`` are checked by ``make_spec``)."""
        _check_choice("init", self.init, INITS)
        _check_choice("lr_schedule", self.lr_schedule, SCHEDULES)
        options = {
            "n_outer": _check_int("n_outer", self.n_outer, 1),
            "n_inner": _check_int("n_inner", self.n_inner, 0),
            "batch_size": _check_int("batch_size", self.batch_size, 1),
            "patience": _check_int("patience", self.patience, 1),
            "lr_x": _check_float("lr_x", self.lr_x),
            "lr_y": _check_float("lr_y", self.lr_y),
            "tol": _check_float("tol", self.tol, strict=False),
        }
        if self.inner_lr == "auto":
            logistic = self.learner != "mlp" and self.task == "classification"
            options["inner_lr"] = _INNER_LR_LOGISTIC if logistic else _INNER_LR
        else:
            options["inner_lr"] = _check_float("inner_lr", self.inner_lr)
        return options

    def fit(self, X, y, sample_weight=None):
        """Learn ``X_``, ``y_`` and ``weight_`` from ``(X, y)``; returns ``self``."""
        X, y, w = check_training_data(X, y, sample_weight, size=self.size, task=self.task)
        spec = make_spec(self.learner, self.task, hidden=self.hidden)
        opt = self._check_options()
        rng = np.random.default_rng(self.random_state)
        size, d = int(self.size), X.shape[1]
        classification = self.task == "classification"
        soft = classification and bool(self.learn_labels)

        x_mean, x_scale = _moments(X, w)
        y_mean, y_scale = (0.0, 1.0) if classification else _moments(y, w)
        Xs, ys = (X - x_mean) / x_scale, (y - y_mean) / y_scale

        rows = _initial_indices(Xs, ys, size, w, rng, method=self.init, classification=classification)
        X_syn = Xs[rows].copy()
        labels = logit(np.clip(ys[rows], 1 - _LABEL_INIT, _LABEL_INIT)) if soft else ys[rows].copy()
        labels_of = expit if soft else (lambda z: z)
        w_syn = np.full(size, 1.0 / size)

        params = [X_syn, labels] if self.learn_labels else [X_syn]
        base_lrs = [opt["lr_x"], opt["lr_y"]][: len(params)]
        optimiser = Adam(params)
        real_gradient = _RealGradient(spec, Xs, ys, w, opt["batch_size"], rng)
        panel = _Panel(spec, Xs, ys, w, max(opt["batch_size"], _PANEL_BATCH), rng)

        n_outer = opt["n_outer"]
        history, best, stale, converged = [], math.inf, 0, False
        for outer in range(n_outer):
            decay = 0.5 * (1.0 + math.cos(math.pi * outer / n_outer)) if self.lr_schedule == "cosine" else 1.0
            lrs = [lr * decay for lr in base_lrs]
            theta = spec.init_params(rng, d)
            for step in range(opt["n_inner"] + 1):
                _, dX, dlabels, g_syn = _matching_objective(
                    spec, theta, real_gradient(theta), X_syn, labels, w_syn, soft_labels=soft
                )
                optimiser.step(params, [dX, dlabels][: len(params)], lrs)
                if step < opt["n_inner"]:
                    # g_syn is the gradient on S before this update: one evaluation saved; the
                    # run only serves to sample θ, it is not differentiated.
                    theta = theta - opt["inner_lr"] * g_syn
                    if not np.isfinite(theta).all():
                        break
            history.append(panel.distance(X_syn, labels_of(labels), w_syn))
            if len(history) >= _SMOOTHING:
                smoothed = float(np.mean(history[-_SMOOTHING:]))
                if smoothed < best - opt["tol"]:
                    best, stale = smoothed, 0
                else:
                    stale += 1
                if stale >= opt["patience"]:
                    converged = True
                    break

        return self._set_result(
            X_syn * x_scale + x_mean,
            labels_of(labels) * y_scale + y_mean,
            np.ones(size),
            n_iter=len(history),
            converged=converged,
            loss_history=history,
        )


class _RealGradient:
    """Mini-batch estimates of the real gradient ``∇θL(T; θ)``, rows drawn ∝ the weights.

    For linear and logistic models the estimate uses a control variate. Their gradient is
    ``E[J (h(f) − y)]`` with ``J = [x, 1]`` independent of ``θ``; with ``h(f) ≈ a + b f`` (the
    head's Taylor expansion at 0),

        ``E[J (h(f) − y)] = b M θ + a E[J] − E[J y] + E[J (h(f) − a − b f)]``,

    where ``M = E[J Jᵀ]``, ``E[J]`` and ``E[J y]`` are computed once, exactly, from all the
    data, and only the last term (zero for the squared loss: the gradient is exact) comes from
    the mini-batch. On a weak signal the plain mini-batch gradient is dominated by the label
    noise of the batch (its Bernoulli labels), which this term no longer carries: the
    matching target becomes nearly noise-free for the same cost. The MLP's ``J`` depends on
    ``θ``, so it gets the plain mini-batch estimate.
    """

    def __init__(self, spec, Xs, ys, w, batch, rng):
        self.spec, self.Xs, self.ys, self.rng = spec, Xs, ys, rng
        self.cdf = np.cumsum(w)
        self.cdf /= self.cdf[-1]
        self.w_batch = np.full(batch, 1.0 / batch)
        self.linear = isinstance(spec, LinearSpec)
        if self.linear:
            J = np.column_stack([Xs, np.ones(len(Xs))])
            self.moments = (J * w[:, None]).T @ J
            self.label_moment = J.T @ (w * ys)
            # the squared loss's h(f) = f is its own expansion: nothing left to sample
            self.exact = spec.head.name == "squared"

    def _rows(self):
        return np.searchsorted(self.cdf, self.rng.random(len(self.w_batch)), side="right")

    def __call__(self, theta):
        if not self.linear:
            rows = self._rows()
            return self.spec.loss_and_grad(theta, self.Xs[rows], self.ys[rows], self.w_batch)[1]
        a, b = self.spec.head.taylor
        # M[:, -1] = E[J] because the last entry of J is 1
        grad = b * (self.moments @ theta) + a * self.moments[:, -1] - self.label_moment
        if not self.exact:
            rows = self._rows()
            X = self.Xs[rows]
            f = X @ theta[:-1] + theta[-1]
            rest = self.w_batch * (self.spec.head.output(f) - a - b * f)
            grad[:-1] += X.T @ rest
            grad[-1] += rest.sum()
        return grad


class _Panel:
    """The matching distance on a fixed panel of parameter draws (fresh initialisations) and
    real gradients computed once on large batches: what the convergence check watches."""

    def __init__(self, spec, Xs, ys, w, batch, rng):
        d = Xs.shape[1]
        real_gradient = _RealGradient(spec, Xs, ys, w, batch, rng)
        self.spec, self.layers = spec, spec.layers(d)
        self.thetas = [spec.init_params(rng, d) for _ in range(_PANEL_SIZE)]
        self.targets = [real_gradient(theta) for theta in self.thetas]

    def distance(self, X_syn, y_syn, w_syn):
        return float(
            np.mean(
                [
                    _cosine_distance(g_real, self.spec.loss_and_grad(theta, X_syn, y_syn, w_syn)[1], self.layers)[0]
                    for theta, g_real in zip(self.thetas, self.targets)
                ]
            )
        )


def _matching_objective(spec, theta, g_real, X_syn, labels, w_syn, *, soft_labels):
    """The matching distance at ``θ`` and its gradients with respect to the synthetic set.

    ``labels`` are the targets, or their logits when ``soft_labels``. Returns
    ``(distance, ∂/∂X_syn, ∂/∂labels, g_syn)``.
    """
    y_syn = expit(labels) if soft_labels else labels
    _, g_syn = spec.loss_and_grad(theta, X_syn, y_syn, w_syn)
    dist, v = _cosine_distance(g_real, g_syn, spec.layers(X_syn.shape[1]))
    dX, dy = spec.data_vjp(theta, X_syn, y_syn, w_syn, v)
    if soft_labels:
        dy = dy * y_syn * (1.0 - y_syn)
    return dist, dX, dy, g_syn


def _cosine_distance(g_real, g_syn, layers):
    """Mean over rows of ``1 − cos(g_real, g_syn)`` and its gradient with respect to ``g_syn``.

    ``layers`` are ``(start, stop, rows)`` blocks of the parameter vector, each reshaped to
    ``rows`` rows (one per output unit).
    """
    total, n_rows = 0.0, 0
    grad = np.empty_like(g_syn)
    for start, stop, rows in layers:
        a = g_real[start:stop].reshape(rows, -1)
        b = g_syn[start:stop].reshape(rows, -1)
        na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
        dot = (a * b).sum(axis=1)
        den = na * nb + _EPS  # keeps a zero gradient (e.g. at an optimum) from dividing by 0
        total += rows - float((dot / den).sum())
        # ∂cos/∂b = a/den − dot·|a|·b / (|b|·den²)
        dcos = a / den[:, None] - (dot * na / (np.maximum(nb, _EPS) * den**2))[:, None] * b
        grad[start:stop] = -dcos.ravel()
        n_rows += rows
    return total / n_rows, grad / n_rows


def _initial_indices(Xs, ys, size, w, rng, *, method, classification):
    """Rows of the real data that seed the synthetic set: a k-medoids coreset (on ``(x, y)``)
    or a random subset (∝ ``w``), taken within each class for classification, as DC seeds
    each class with real samples of that class."""
    if not classification:
        return _seed_rows(Xs, ys, w, size, rng, method)
    groups = [np.flatnonzero(ys == c) for c in (0.0, 1.0)]
    counts = _allocate(size, np.array([w[g].sum() for g in groups]), np.array([np.count_nonzero(w[g]) for g in groups]))
    return np.concatenate(
        [g[_seed_rows(Xs[g], ys[g], w[g], int(k), rng, method)] for g, k in zip(groups, counts) if k]
    )


def _seed_rows(X, y, w, size, rng, method):
    # Kept cheap (at most 2,000 rows searched, 5 rounds): the points only have to start
    # spread over the data, gradient matching moves them afterwards.
    if method == "kmedoids":
        selector = KMedoids(size=size, max_iter=5, subsample=max(size, 2000), random_state=rng)
    else:
        selector = RandomSubset(size=size, random_state=rng)
    return selector.fit(X, y, w).indices_


def _allocate(size, shares, caps):
    """Split ``size`` points between groups ∝ ``shares`` (largest remainder), at most ``caps``
    each, at least one for every group with a positive share when there is room."""
    quota = size * shares / shares.sum()
    counts = np.minimum(np.floor(quota).astype(int), caps)
    if size >= (shares > 0).sum():
        counts = np.maximum(counts, (shares > 0).astype(int))
    while counts.sum() > size:
        counts[np.argmax(counts)] -= 1
    while counts.sum() < size:
        counts[np.argmax(np.where(counts < caps, quota - counts, -np.inf))] += 1
    return counts


def _moments(values, w):
    """Weighted mean and standard deviation (1 where a column is constant: a usable divisor)."""
    mean = w @ values
    std = np.sqrt(w @ (values - mean) ** 2)
    return mean, np.where(std > 1e-12, std, 1.0)
