"""Distribution matching (DM; Zhao & Bilen, "Dataset Condensation with Distribution
Matching", WACV 2023).

The synthetic set ``S = {(x̃_j, ỹ_j)}`` is moved so that the mean embedding of its joint
vectors ``z̃ = [x̃, ỹ]`` matches that of the real joint vectors ``z = [x, y]`` under many
random feature maps ``φ(z) = relu(W z + b)``. Matching the means of many random ReLU features
matches the distributions (in the limit, the MMD under the arc-cosine kernel of the random
layer), and it needs no model training and no second-order terms: the gradient with respect
to ``z̃`` is closed form and costs one pass through the random layer.

The loss at each iteration
--------------------------
Everything lives in the joint standardised space (each column of ``[X, y]`` centred and
scaled by its weighted mean and standard deviation, so a target in small units such as a log
return is not ignored by the embedding). Each iteration draws ``n_maps`` fresh random layers
``W_k ~ N(0, 1/dim)`` (``dim = n_features + 1``), ``b_k ~ N(0, 1)``, of ``width`` units each,
and a mini-batch of ``batch_size`` real rows drawn with probability ∝ ``sample_weight``,
split evenly among the maps (each map sees its own ``r = batch_size // n_maps`` rows). With
``m̂_k`` the batch mean of ``φ_k`` over its real rows and ``s_k = (1/M) Σ_j φ_k(z̃_j)``::

    loss = (1/n_maps) Σ_k ||m̂_k − s_k||²
    ∂loss/∂z̃_j = (2 / (n_maps M)) Σ_k W_kᵀ [(s_k − m̂_k) ⊙ 1(W_k z̃_j + b_k > 0)]

Splitting the batch among many maps costs the same as one map on the whole batch (each real
row goes through one layer) but averages the gradient over ``n_maps`` independent maps, which
removes most of the noise that comes from the choice of map. The price is a noisier ``m̂_k``;
its expected contribution to the loss, ``tr Cov(φ_k) / r``, does not depend on ``S``, so it
does not bias the gradient.

The recorded loss
-----------------
The training loss changes with every draw of maps and rows: its iteration-to-iteration
spread is larger than its progress over a hundred iterations, so it can neither show
progress nor tell when to stop. ``loss_history_`` therefore holds a *probe*: the same loss
under one fixed set of ``n_maps`` layers and a fixed sample of ``8 × batch_size`` real rows
(drawn once, ∝ ``sample_weight``), with the finite-sample term ``tr Cov / r`` estimated and
subtracted, so it estimates the population loss without bias and can dip slightly below
zero near the optimum. It is a deterministic function of ``S``, computed once before
training and after every update (the real side is computed once; each evaluation costs one
pass of the ``M`` synthetic points through the probe layers).

For ``task="classification"`` the labels are ``ỹ = sigmoid(u)`` with ``u`` optimised, so
they stay soft labels in [0, 1]. Updates use Adam with a cosine (or constant) learning-rate
schedule; when the moving average of the probe loss stops improving, the rest of the
schedule is compressed into a short annealing and training stops (``Schedule`` in :mod:`._optim`).
"""

from __future__ import annotations

import math

import numpy as np

from ._optim import Adam, Schedule
from .base import BaseDistiller, TASKS, check_init_points, check_training_data
from .coresets import (
    KMedoids,
    RandomSubset,
    check_choice,
    check_float,
    check_int,
    JointScaler,
    uniform,
)

__all__ = ["DistributionMatching"]

# Initial soft labels for classification: sigmoid(u) saturates at 0 and 1, where its gradient
# vanishes, so hard 0/1 starting labels are pulled in to 0.1/0.9 (u = ∓2.2).
_LABEL_CLIP = 0.1


# --------------------------------------------------------------------------- optimisation helpers
# (private, shared with kernel.py)


def sigmoid(u):
    return 0.5 * (1.0 + np.tanh(0.5 * u))  # stable for large |u|


def _logit(p):
    return np.log(p) - np.log1p(-p)


# --------------------------------------------------------------------------- the loss


def _real_embedding(Zr, W, b, *, noise=True):
    """Mean embedding of the real rows, each map ``k`` over its own rows ``Zr[k]``, and (with
    ``noise``) the unbiased estimate ``(1/K) Σ_k tr Cov(φ_k) / r`` of what the finite sample
    adds to the expected loss."""
    K, r, dim = Zr.shape
    width = W.shape[1] // K
    # A batched (K, r, dim) @ (K, dim, width) product: each real row goes through one map
    # only, so the real side costs one layer's worth of work whatever K is.
    H = np.matmul(Zr, W.reshape(dim, K, width).transpose(1, 0, 2))
    H += b.reshape(K, 1, width)
    np.maximum(H, 0.0, out=H)
    m_real = H.mean(axis=1).reshape(-1)  # (K * width,)
    if not noise or r < 2:
        return m_real, 0.0
    return m_real, float(H.var(axis=1, ddof=1).sum() / (r * K))


def _synthetic_loss_grad(Zs, m_real, W, b, K, *, grad=True):
    """``(1/K) ||mean_j φ(Zs_j) − m_real||²`` over the ``K`` maps side by side, and its
    gradient with respect to ``Zs`` (None when ``grad`` is False)."""
    H = Zs @ W
    H += b
    active = H > 0
    np.maximum(H, 0.0, out=H)
    diff = H.mean(axis=0) - m_real
    loss = float(diff @ diff / K)
    if not grad:
        return loss, None
    # d loss / d H[j, u] = (2 / (K M)) diff[u] · 1(H[j, u] > 0); back through H = Zs W + b.
    G = np.multiply(active, diff, out=H)  # H is no longer needed
    return loss, (G @ W.T) * (2.0 / (K * len(Zs)))


def _dm_loss_grad(Zs, Zr, W, b):
    """Loss and gradient of distribution matching for one draw of maps and real rows.

    Parameters
    ----------
    Zs : (M, dim) synthetic joint vectors (standardised).
    Zr : (K, r, dim) real joint vectors, ``r`` rows for each of the ``K`` maps.
    W : (dim, K * width) and b : (K * width,), the ``K`` random layers side by side (map
        ``k`` is columns ``k * width`` to ``(k + 1) * width``).

    Returns
    -------
    loss : float, ``(1/K) Σ_k ||mean_r relu(Zr_k W_k + b_k) − mean_M relu(Zs W_k + b_k)||²``
    grad : (M, dim), its gradient with respect to ``Zs``
    noise : float, unbiased estimate of the part of ``loss`` due to the finite real batch
        (``(1/K) Σ_k tr Cov(φ_k) / r``); ``loss − noise`` is unbiased for the population loss.
    """
    m_real, noise = _real_embedding(Zr, W, b)
    loss, grad = _synthetic_loss_grad(Zs, m_real, W, b, len(Zr))
    return loss, grad, noise


class _DMProbe:
    """The DM loss under fixed layers and fixed real rows, minus its finite-sample term: a
    deterministic function of the synthetic points whose real side is computed once (see
    "The recorded loss")."""

    def __init__(self, Zr, W, b):
        self.m_real, self.noise = _real_embedding(Zr, W, b)
        self.W, self.b, self.K = W, b, len(Zr)

    def __call__(self, Zs):
        Zs = Zs.astype(self.W.dtype)
        loss, _ = _synthetic_loss_grad(Zs, self.m_real, self.W, self.b, self.K, grad=False)
        return loss - self.noise


# --------------------------------------------------------------------------- the distiller


def optimisation_options(est):
    """The validated ``n_iter, lr, batch_size, lr_schedule, tol, patience`` of an iterative
    distiller (shared by distribution matching and KIP)."""
    return (
        check_int("n_iter", est.n_iter, 0),
        check_float("lr", est.lr),
        check_int("batch_size", est.batch_size, 1),
        check_choice("lr_schedule", est.lr_schedule, ("cosine", "constant")),
        check_float("tol", est.tol, strict=False),
        check_int("patience", est.patience, 1),
    )


def starting_points(est, X, y, w, size, rng):
    """The joint scaler and the real points the synthetic ones start from (``est.init``)."""
    init = check_choice("init", est.init, ("kmedoids", "random"))
    scaler = JointScaler(X, y, w)
    start = (KMedoids if init == "kmedoids" else RandomSubset)(size=size, random_state=rng)
    return scaler, start.fit(X, y, w)


def warm_points(X, y, w, size, init_points, init_targets):
    """:func:`starting_points` for a warm start: the joint scaler and the given points."""
    from types import SimpleNamespace

    P, t = check_init_points(init_points, init_targets, size, X.shape[1])
    return JointScaler(X, y, w), SimpleNamespace(X_=P, y_=t)


def starting_labels(labels, scaler, *, soft: bool):
    """Optimisable labels: logits of clipped 0/1 labels (soft), else standardised targets."""
    if soft:
        return _logit(np.clip(labels, _LABEL_CLIP, 1.0 - _LABEL_CLIP))
    return scaler.transform_y(labels)


class DistributionMatching(BaseDistiller):
    """Distribution matching: a synthetic set whose joint ``(x, y)`` distribution matches the
    real one under many random ReLU feature maps (see the module docstring for the loss).

    Parameters
    ----------
    size : int, default 50
        Number of synthetic points ``M``.
    task : {"regression", "classification"}, default "regression"
        Classification keeps labels in [0, 1] as ``sigmoid(u)``.
    n_maps : int, default 64
        Random ReLU layers drawn per iteration.
    width : int, default 128
        Units per random layer.
    n_iter : int, default 300
        Maximum iterations (0 returns the initial points).
    lr : float, default 0.05
        Adam step size, in standard deviations of the standardised data (and logits for
        classification labels).
    batch_size : int, default 1024
        Real rows per iteration, drawn with probability ∝ ``sample_weight`` and split evenly
        among the maps (at least 2 rows per map).
    init : {"kmedoids", "random"}, default "kmedoids"
        Starting points: a :class:`~distillbt.distill.coresets.KMedoids` coreset or a
        :class:`~distillbt.distill.coresets.RandomSubset`.
    lr_schedule : {"cosine", "constant"}, default "cosine"
    tol : float, default 1e-6
        Improvement of the moving-average loss that counts as progress, relative to
        ``max(|best|, 1)``.
    patience : int, default 30
        Plateau rule: when the moving average of the probe loss over the last ``patience``
        iterations has not improved by more than ``tol`` for ``patience`` iterations, the
        rest of the cosine schedule is compressed into ``patience`` more iterations and
        training stops (``converged_ = True``); see ``Schedule`` in :mod:`._optim` for why.
    random_state : int, Generator or None, default 0

    Attributes
    ----------
    X_, y_ : the synthetic points (in the units of ``X`` and ``y``); ``weight_`` uniform.
    n_iter_ : iterations run.
    converged_ : whether the plateau rule stopped training before ``n_iter``.
    loss_history_ : list of float
        The probe loss (module docstring) of the initial points and after each update
        (``n_iter_ + 1`` values).
    """

    def __init__(
        self,
        *,
        size=50,
        task="regression",
        n_maps=64,
        width=128,
        n_iter=300,
        lr=0.05,
        batch_size=1024,
        init="kmedoids",
        lr_schedule="cosine",
        tol=1e-6,
        patience=30,
        random_state=0,
    ):
        self.size = size
        self.task = task
        self.n_maps = n_maps
        self.width = width
        self.n_iter = n_iter
        self.lr = lr
        self.batch_size = batch_size
        self.init = init
        self.lr_schedule = lr_schedule
        self.tol = tol
        self.patience = patience
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None, *, init_points=None, init_targets=None):
        """``init_points``/``init_targets``: start from these ``size`` points (warm start)."""
        task = check_choice("task", self.task, TASKS)
        X, y, w = check_training_data(X, y, sample_weight, size=self.size, task=task)
        size = check_int("size", self.size, 1)
        n_maps = check_int("n_maps", self.n_maps, 1)
        width = check_int("width", self.width, 1)
        n_iter, lr, batch_size, schedule_kind, tol, patience = optimisation_options(self)
        rng = np.random.default_rng(self.random_state)

        scaler, start = (starting_points(self, X, y, w, size, rng) if init_points is None
                         else warm_points(X, y, w, size, init_points, init_targets))
        xs = scaler.transform_x(start.X_)
        classify = task == "classification"
        label = starting_labels(start.y_, scaler, soft=classify)
        params = [xs, label]

        dim = X.shape[1] + 1
        per_map = max(2, batch_size // n_maps)
        cdf = np.cumsum(w)
        cdf /= cdf[-1]

        def draw(rows_per_map):
            # Real rows ∝ sample_weight (with replacement) and fresh layers, in float32: the
            # loss is a stochastic estimate anyway, and drawing and multiplying the
            # n_maps · width · dim weights is the main cost of an iteration.
            rows = np.searchsorted(cdf, rng.random(n_maps * rows_per_map), side="right")
            rows = np.minimum(rows, len(X) - 1)
            Zr = scaler.transform(X[rows], y[rows]).astype(np.float32)
            Zr = Zr.reshape(n_maps, rows_per_map, dim)
            W = rng.standard_normal((dim, n_maps * width), dtype=np.float32)
            W *= np.float32(1.0 / math.sqrt(dim))
            b = rng.standard_normal(n_maps * width, dtype=np.float32)
            return Zr, W, b

        def joint():
            ys = scaler.transform_y(sigmoid(label)) if classify else label
            return np.column_stack([xs, ys])

        probe = _DMProbe(*draw(8 * per_map))
        adam = Adam(params)
        schedule = Schedule(schedule_kind, lr, n_iter, tol=tol, patience=patience)
        history = [probe(joint())]
        for _ in range(n_iter):
            Zr, W, b = draw(per_map)
            m_real, _ = _real_embedding(Zr, W, b, noise=False)
            _, grad = _synthetic_loss_grad(joint().astype(np.float32), m_real, W, b, n_maps)
            grad = grad.astype(np.float64)
            g_label = grad[:, -1]
            if classify:
                p = sigmoid(label)
                g_label = g_label * p * (1.0 - p) / scaler.scale[-1]
            adam.step(params, [grad[:, :-1], g_label], schedule.lr())
            history.append(probe(joint()))
            if schedule.update(history[-1]):
                break

        y_out = sigmoid(label) if classify else scaler.inverse_y(label)
        return self._set_result(
            scaler.inverse_x(xs),
            y_out,
            uniform(size),
            n_iter=schedule.t,
            converged=schedule.converged,
            loss_history=history,
        )
