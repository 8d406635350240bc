"""Kernel-ridge distillation: the exact linear limit and KIP.

- :class:`ExactLinear` — for linear least squares and ridge, ``d + 1`` synthetic points
  reproduce the full-data solution *exactly* (docs/design.md §5): the limit any linear distiller
  must reach.
- :class:`KernelRidgeDistiller` — Kernel Inducing Points (KIP; Nguyen, Chen & Lee, "Dataset
  Meta-Learning from Kernel Ridge-Regression", ICLR 2021): the synthetic set is the support
  set of a kernel ridge regression, optimised so that its predictions fit the real targets.

The ridge convention
--------------------
Throughout, a data set with weights ``w`` summing to 1 defines the ridge problem with an
unpenalised intercept::

    minimise over (θ₀, θ):   Σ_i w_i (y_i − θ₀ − x_iᵀθ)² + λ ||θ||²

For the full training set the weights are ``sample_weight / sum(sample_weight)`` (``1/N``
each without weights), so the data term is a weighted *mean* of squared errors; for a
distilled set they are ``weight_``. Its solution depends on the data only through the first
and second moments ``Σ w x``, ``Σ w y``, ``Σ w x xᵀ`` and ``Σ w x y``. A library that
minimises a weighted *sum* of squared errors plus ``α ||θ||²`` (scikit-learn's ``Ridge``)
solves the same problem with ``α = λ · Σ sample_weight``: ``Ridge(alpha=α)`` on ``N``
unweighted rows equals ``Ridge(alpha=α / N)`` fitted on the distilled set with
``sample_weight=weight_`` (or ``Ridge(alpha=α)`` with ``sample_weight=N · weight_``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import linalg

from ..errors import InputError
from .base import BaseDistiller, TASKS, check_training_data
from .coresets import (
    check_choice,
    check_float,
    check_int,
    median_gamma,
    sq_dist,
    uniform,
)
from ._optim import Adam, Schedule
from .distribution import optimisation_options, sigmoid, starting_labels, starting_points, warm_points

__all__ = ["ExactLinear", "KernelRidgeDistiller", "ridge_solution"]


def ridge_solution(X, y, weight, lam=0.0):
    """Intercept and coefficients ``(θ₀, θ)`` of the weighted ridge problem of the module
    docstring (weights normalised to sum to 1; ``lam`` penalises ``θ`` only).

    Solved in centred coordinates (``θ = (Cov_w(X) + λ I)⁻¹ Cov_w(X, y)``,
    ``θ₀ = ȳ − x̄ᵀθ``), which is far better conditioned than the raw normal equations when
    the features have large means; a singular ``Cov_w(X)`` with ``lam = 0`` gives the
    minimum-norm solution.
    """
    X = np.asarray(X, dtype="float64")
    y = np.asarray(y, dtype="float64").reshape(-1)
    w = np.asarray(weight, dtype="float64").reshape(-1)
    w = w / w.sum()
    x_bar, y_bar = w @ X, w @ y
    Xc = X - x_bar
    C = (Xc * w[:, None]).T @ Xc
    c = Xc.T @ (w * (y - y_bar))
    A = C + lam * np.eye(X.shape[1])
    if lam > 0:
        theta = linalg.solve(A, c, assume_a="pos")
    else:
        theta = np.linalg.lstsq(A, c, rcond=None)[0]
    return float(y_bar - x_bar @ theta), theta


# --------------------------------------------------------------------------- exact linear limit


class ExactLinear(BaseDistiller):
    """``d + 1`` synthetic points (or any ``size ≥ d + 1``) on which least squares and every
    ridge regression (with an unpenalised intercept, convention in the module docstring) give
    exactly the full-data solution.

    The construction
    ----------------
    With ``x̄, ȳ`` the weighted means, ``C = Σ w (x − x̄)(x − x̄)ᵀ`` and
    ``c = Σ w (x − x̄)(y − ȳ)``, the points are ``x̃_j = x̄ + u_j``, ``ỹ_j = ȳ + e_j``
    (``j = 1 … M``, weight ``1/M`` each) with

    - ``Σ_j u_j = 0`` and ``Σ_j e_j = 0``: the first moments match (which, with the constant
      1 of an intercept, is what an unpenalised intercept needs);
    - ``(1/M) Σ_j u_j u_jᵀ = C`` and ``(1/M) Σ_j u_j e_j = c``: the centred second moments
      match, hence so do the raw moments ``Σ w x xᵀ`` and ``Σ w x y`` — the moment matrix
      of ``[1, x]`` and its cross-moment with ``y``.

    ``H`` holds orthonormal columns of ℝᴹ orthogonal to the constant vector, so any
    ``U = H A`` has zero column sums; equivalently ``[1/√M, H]`` is an orthogonal matrix whose
    first column is constant (the rotation that makes the intercept column of the points
    exactly 1). With ``C = V Λ Vᵀ``, ``U = √M · H₁..d Λ^{1/2} Vᵀ`` gives ``UᵀU = M C``, and
    ``e = √M · H₁..d Λ^{-1/2} Vᵀ c`` (pseudo-inverse on the null space of ``C``, where ``c``
    has no component) gives ``Uᵀe = M c``. With ``size ≥ d + 2`` the next column of ``H``
    also carries the residual spread of ``y`` (orthogonal to everything above), so the
    variance of ``y`` matches too — the whole moment matrix of ``[1, x, y]``, which makes the
    residual variance and R² of the fit come out right as well. Working with centred moments
    keeps the factorisation well conditioned when features have large means.

    ``H`` is the orthonormal DCT-II basis without its constant vector (columns
    ``√(2/M) cos(π k (2j + 1) / 2M)``, ``k = 1 …``), not a Householder reflection: both work,
    but with the DCT every point lies within ``√2`` standard deviations of the mean along each
    principal direction of ``X`` (a Householder basis puts each point about ``√M`` standard
    deviations out along one direction). The points are still a moment-matching device, not
    samples: they reproduce exactly the learners that depend on the data only through these
    moments (least squares, ridge, the linear discriminant on ``y``) and nothing else.

    Parameters
    ----------
    size : None or int, default None
        Number of points: None for ``n_features + 1``, the minimum; larger sizes are exact
        too (and from ``n_features + 2`` also match the variance of ``y``).
    task : {"regression", "classification"}, default "regression"
        ``"classification"`` (0/1 labels) gives the linear-probability limit: exactly
        ``n_features + 1`` points whose soft labels reproduce the least-squares fit of the
        labels, which logistic regression on them approximates closely when the signal is weak
        (as in markets); :class:`~distillbt.errors.InputError` if a soft label would fall
        outside [0, 1] or ``size`` is not ``n_features + 1``.
    ridge_check : bool, default True
        After construction, compare the ridge solutions (``λ = 0`` and ``λ = 10⁻⁴, 10⁻², 1,
        100`` times the mean variance of ``X``) on the points against the full data; sets
        ``check_error_`` and warns (``RuntimeWarning``) when the largest relative error
        exceeds 1e-6 (ill-conditioned features).

    Attributes
    ----------
    X_ : (M, d), y_ : (M,), weight_ : uniform ``1/M``.
    n_iter_ = 0, converged_ = True, loss_history_ = [].
    check_error_ : float or None
        Largest relative error ``||β_S − β_T|| / ||β_T||`` of ``β = (θ₀, θ)`` over the
        check grid (None when ``ridge_check`` is False).
    """

    fits_inline = True  # two small solves per regime

    def __init__(self, *, size=None, task="regression", ridge_check=True):
        self.size = size
        self.task = task
        self.ridge_check = ridge_check

    def fit(self, X, y, sample_weight=None):
        task = check_choice("task", self.task, TASKS)
        X, y, w = check_training_data(X, y, sample_weight, task=task)
        d = X.shape[1]
        M = d + 1 if self.size is None else check_int("size", self.size, 1)
        if M < d + 1:
            raise InputError(
                f"ExactLinear needs at least n_features + 1 = {d + 1} points, got size {M}"
            )
        if task == "classification" and M != d + 1:
            raise InputError(
                f"ExactLinear for classification takes exactly n_features + 1 = {d + 1} points: "
                "matching the variance of 0/1 labels as well would push soft labels outside [0, 1]"
            )

        x_bar, y_bar = w @ X, w @ y
        Xc = X - x_bar
        C = (Xc * w[:, None]).T @ Xc
        c = Xc.T @ (w * (y - y_bar))
        lam, V = np.linalg.eigh(C)
        lam = np.maximum(lam, 0.0)  # rounding can leave tiny negative eigenvalues
        root = np.sqrt(lam)
        # Directions with (numerically) no spread carry no information about θ: zero them
        # instead of dividing by a rounding-level eigenvalue. eigh's absolute error is about
        # eps · λ_max, hence a threshold on λ (not on √λ).
        keep = lam > (lam.max() if d else 0.0) * M * np.finfo(float).eps
        a = np.zeros(d)
        a[keep] = (V.T @ c)[keep] / root[keep]

        H = _centred_basis(M)
        U = math.sqrt(M) * (H[:, :d] * root) @ V.T
        e = math.sqrt(M) * H[:, :d] @ a
        if M >= d + 2:
            residual = max(float(w @ (y - y_bar) ** 2 - a @ a), 0.0)
            e += math.sqrt(M * residual) * H[:, d]
        if task == "classification" and not (0.0 <= (y_bar + e).min() and (y_bar + e).max() <= 1.0):
            raise InputError(
                "ExactLinear's soft labels fall outside [0, 1] here (the linear signal is too strong "
                "for the linear-probability limit): use task='regression' or another method"
            )
        self._set_result(x_bar + U, y_bar + e, uniform(M))

        self.check_error_ = None
        if self.ridge_check:
            scale = float(np.trace(C) / d) if d else 1.0
            scale = scale if scale > 0 else 1.0
            worst = 0.0
            for factor in (0.0, 1e-4, 1e-2, 1.0, 100.0):
                full = np.append(*ridge_solution(X, y, w, factor * scale))
                ours = np.append(*ridge_solution(self.X_, self.y_, self.weight_, factor * scale))
                error = np.linalg.norm(ours - full) / max(np.linalg.norm(full), 1e-300)
                worst = max(worst, float(error))
            self.check_error_ = worst
            if worst > 1e-6:
                warnings.warn(
                    f"ExactLinear: ridge solutions on the distilled points differ from the full "
                    f"data by up to {worst:.2g} (relative); the features are ill-conditioned",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return self


def _centred_basis(M):
    """``M × (M − 1)`` orthonormal columns orthogonal to the constant vector: the orthonormal
    DCT-II basis vectors ``√(2/M) cos(π k (2j + 1) / 2M)`` for ``k = 1 … M − 1``."""
    j = np.arange(M)[:, None]
    k = np.arange(1, M)[None, :]
    return math.sqrt(2.0 / M) * np.cos(np.pi * k * (2 * j + 1) / (2 * M))


# --------------------------------------------------------------------------- KIP


def _kernel(A, B, kind, gamma):
    if kind == "linear":
        return A @ B.T
    return np.exp(-gamma * sq_dist(A, B))


def _kip_loss_grad(Xs, ys, Xb, yb, wb, kind, gamma, reg, *, grad=True):
    """Loss and gradients of KIP for one batch.

    The support set ``(Xs, ys)`` (M points) defines the kernel ridge predictor
    ``f(x) = k(x, Xs) α`` with ``α = A⁻¹ ys``, ``A = K_SS + ρ I`` and
    ``ρ = reg · tr(K_SS) / M`` (the ridge scaled to the kernel's size, as in the KIP
    reference code). The loss is the
    weighted squared error on the batch, ``L = Σ_i wb_i (f(x_i) − yb_i)²``.

    Gradients (``r = f − yb``, ``g = 2 wb ⊙ r``, ``β = A⁻¹ K_TSᵀ g``)::

        ∂L/∂ys   = β
        ∂L/∂K_TS = g αᵀ
        ∂L/∂K_SS = −β αᵀ + (reg / M) tr(−β αᵀ) I        (the second term through ρ)

    and through the kernel: linear ``K = X Xsᵀ``:
    ``∂L/∂Xs = Gᵀ_TS X_T + (G_SS + G_SSᵀ) Xs``; rbf ``k(a, b) = exp(−γ ||a − b||²)``,
    ``∂k/∂b = 2γ k (a − b)``: with ``P = G_TS ⊙ K_TS`` and
    ``Q = (G_SS ⊙ K_SS) + (G_SS ⊙ K_SS)ᵀ``,
    ``∂L/∂Xs = 2γ (Pᵀ X_T − diag(Σ_i P_i·) Xs) − 2γ (diag(Σ_l Q_·l) Xs − Q Xs)``
    (``tr K_SS = M`` is constant for rbf, so ρ adds nothing there).

    Returns ``(loss, grad_Xs, grad_ys)`` (the gradients are None when ``grad`` is False).
    """
    M = len(Xs)
    Kss = _kernel(Xs, Xs, kind, gamma)
    Kts = _kernel(Xb, Xs, kind, gamma)
    rho = reg * np.trace(Kss) / M
    # A fixed tiny jitter keeps the Cholesky factorisation alive if every point collapses.
    A = Kss + (rho + 1e-12) * np.eye(M)
    factor = linalg.cho_factor(A, lower=True, check_finite=False)
    alpha = linalg.cho_solve(factor, ys, check_finite=False)
    r = Kts @ alpha - yb
    loss = float(wb @ (r * r))
    if not grad:
        return loss, None, None
    g = 2.0 * wb * r
    beta = linalg.cho_solve(factor, Kts.T @ g, check_finite=False)
    G_ts = np.outer(g, alpha)
    G_ss = -np.outer(beta, alpha)
    if kind == "linear":
        G_ss[np.diag_indices(M)] += (reg / M) * np.trace(G_ss)
        grad_x = G_ts.T @ Xb + (G_ss + G_ss.T) @ Xs
    else:
        P = G_ts * Kts
        Q = G_ss * Kss
        Q += Q.T
        grad_x = 2.0 * gamma * (P.T @ Xb - P.sum(axis=0)[:, None] * Xs)
        grad_x -= 2.0 * gamma * (Q.sum(axis=1)[:, None] * Xs - Q @ Xs)
    return loss, grad_x, beta


class KernelRidgeDistiller(BaseDistiller):
    """Kernel Inducing Points (KIP): a support set ``S = (x̃, ỹ)`` whose kernel ridge
    regression predicts the real targets well.

    With ``K_TS`` the kernel between real rows and ``x̃``, the predictor is
    ``f = K_TS (K_SS + ρ I)⁻¹ ỹ`` (``ρ = reg · tr(K_SS) / size``); ``x̃`` and, with
    ``learn_labels``, ``ỹ`` are moved by Adam to minimise the weighted mean squared error of
    ``f`` on mini-batches of real rows (drawn ∝ ``sample_weight``; the whole set, with its
    weights, when it fits in one batch). Gradients are analytic (see ``_kip_loss_grad``).

    Everything is computed on standardised data (each feature and the target centred and
    scaled by their weighted mean and standard deviation; the kernel sees ``x`` only), so a
    loss of 1 is "predicting the mean" and ``1 − loss`` is the R² of the predictor.

    Parameters
    ----------
    size : int, default 50
    task : {"regression", "classification"}, default "regression"
        Classification fits the 0/1 targets by squared error (as KIP does) and keeps labels
        in [0, 1] as ``sigmoid(u)``.
    kernel : {"rbf", "linear"}, default "rbf"
        ``exp(−γ ||x − x'||²)`` or ``x · x'`` on the standardised features.
    gamma : float or None, default None
        rbf bandwidth on standardised features; None: median heuristic
        ``1 / median ||x − x'||²`` over real rows.
    reg : float, default 1e-3
        Ridge, relative to the mean diagonal of ``K_SS``.
    n_iter : int, default 200
    lr : float, default 0.01
        Adam step size (standard deviations of the standardised data; logits for
        classification labels).
    batch_size : int, default 1024
    learn_labels : bool, default True
    init : {"random", "kmedoids"}, default "random"
    lr_schedule : {"cosine", "constant"}, default "cosine"
    tol : float, default 1e-6
    patience : int, default 30
        Plateau rule and short final annealing as in
        :class:`~distillbt.distill.distribution.DistributionMatching`.
    random_state : int, Generator or None, default 0

    Attributes
    ----------
    X_, y_ : the support set (units of ``X`` and ``y``); ``weight_`` uniform.
    gamma_ : float or None
        The rbf bandwidth used (standardised units).
    n_iter_, converged_ : iterations run; whether the plateau rule ended training.
    loss_history_ : list of float
        Weighted MSE of the predictor in standardised units on a fixed probe of real rows
        (the whole set when it has at most ``2 × batch_size`` rows, else that many rows drawn
        ∝ ``sample_weight``), for the initial set and after every update (``n_iter_ + 1``
        values).
    """

    def __init__(
        self,
        *,
        size=50,
        task="regression",
        kernel="rbf",
        gamma=None,
        reg=1e-3,
        n_iter=200,
        lr=0.01,
        batch_size=1024,
        learn_labels=True,
        init="random",
        lr_schedule="cosine",
        tol=1e-6,
        patience=30,
        random_state=0,
    ):
        self.size = size
        self.task = task
        self.kernel = kernel
        self.gamma = gamma
        self.reg = reg
        self.n_iter = n_iter
        self.lr = lr
        self.batch_size = batch_size
        self.learn_labels = learn_labels
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
        kind = check_choice("kernel", self.kernel, ("rbf", "linear"))
        gamma = None if self.gamma is None else check_float("gamma", self.gamma)
        reg = check_float("reg", self.reg)
        n_iter, lr, batch_size, schedule_kind, tol, patience = optimisation_options(self)
        rng = np.random.default_rng(self.random_state)

        scaler, start = (starting_points(self, X, y, w, size, rng) if init_points is None
                         else warm_points(X, y, w, size, init_points, init_targets))
        if kind == "rbf" and gamma is None:
            probe_rows = rng.choice(len(X), min(len(X), 2000), replace=False)
            gamma = median_gamma(scaler.transform_x(X[probe_rows]), rng)
        self.gamma_ = gamma if kind == "rbf" else None

        classify = task == "classification"
        learn = bool(self.learn_labels)
        xs = scaler.transform_x(start.X_)
        label = starting_labels(start.y_, scaler, soft=classify and learn)

        def support_labels():
            return scaler.transform_y(sigmoid(label)) if classify and learn else label

        cdf = np.cumsum(w)
        cdf /= cdf[-1]

        def sample(k):
            if len(X) <= k:  # the whole set, exactly weighted
                return scaler.transform_x(X), scaler.transform_y(y), w
            rows = np.minimum(np.searchsorted(cdf, rng.random(k), side="right"), len(X) - 1)
            return scaler.transform_x(X[rows]), scaler.transform_y(y[rows]), np.full(k, 1.0 / k)

        probe = sample(2 * batch_size)
        full_batch = len(X) <= batch_size

        def probe_loss():
            return _kip_loss_grad(xs, support_labels(), *probe, kind, gamma, reg, grad=False)[0]

        params = [xs, label] if learn else [xs]
        adam = Adam(params)
        schedule = Schedule(schedule_kind, lr, n_iter, tol=tol, patience=patience)
        history = [probe_loss()]
        batch = probe if full_batch else None
        for _ in range(n_iter):
            Xb, yb, wb = batch or sample(batch_size)
            _, g_x, g_y = _kip_loss_grad(xs, support_labels(), Xb, yb, wb, kind, gamma, reg)
            grads = [g_x]
            if learn:
                if classify:
                    p = sigmoid(label)
                    g_y = g_y * p * (1.0 - p) / scaler.scale[-1]
                grads.append(g_y)
            adam.step(params, grads, schedule.lr())
            history.append(probe_loss())
            if schedule.update(history[-1]):
                break

        if classify:
            y_out = sigmoid(label) if learn else start.y_  # fixed labels stay exactly 0/1
        else:
            y_out = scaler.inverse_y(label)
        self._fitted = (scaler, kind, reg)  # what predict needs, immune to set_params
        return self._set_result(
            scaler.inverse_x(xs),
            y_out,
            uniform(size),
            n_iter=schedule.t,
            converged=schedule.converged,
            loss_history=history,
        )

    def predict(self, X):
        """Kernel ridge predictions of the fitted support set, in the units of ``y``."""
        if not hasattr(self, "X_"):
            raise InputError("KernelRidgeDistiller is not fitted: call fit first")
        X = np.asarray(X, dtype="float64")
        if X.ndim != 2 or X.shape[1] != self.X_.shape[1]:
            raise InputError(f"X must have shape (n, {self.X_.shape[1]}), got {X.shape}")
        sc, kind, reg = self._fitted
        xs = sc.transform_x(self.X_)
        Kss = _kernel(xs, xs, kind, self.gamma_)
        A = Kss + (reg * np.trace(Kss) / len(xs) + 1e-12) * np.eye(len(xs))
        alpha = linalg.solve(A, sc.transform_y(self.y_), assume_a="pos")
        return sc.inverse_y(_kernel(sc.transform_x(X), xs, kind, self.gamma_) @ alpha)
