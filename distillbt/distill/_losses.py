"""Losses, parameter gradients and data gradients of the small learners.

Every learner in :mod:`distillbt.models` is described here by a *spec*: a stateless object
that lays the learner's parameters out in one flat float64 vector ``θ`` and computes, on a
weighted data set ``(X, y, w)``, the loss ``L(θ) = Σᵢ wᵢ ℓ(f(xᵢ; θ), yᵢ)`` (the caller
normalises ``w``; no penalty: the models add theirs, gradient matching uses none), and

- ``loss_and_grad(θ, X, y, w) -> (L, ∇θL)``;
- ``data_vjp(θ, X, y, w, v) -> (∂(v·∇θL)/∂X, ∂(v·∇θL)/∂y)``: the vector-Jacobian product of
  the parameter gradient with respect to the *data*, the second-order mixed derivative
  gradient matching needs to move synthetic points. All closed form, vectorised numpy;
- ``init_params(rng, d)``: a fresh initialisation, PyTorch's default (weights and biases
  uniform in ±1/√fan_in), the distribution Dataset Condensation samples networks from;
- ``layers(d)``: ``(start, stop, rows)`` blocks of ``θ``; gradient matching compares
  gradients row by row (one row per output unit, with its bias), as DC does;
- ``penalty_mask(d)``: 1 for weights, 0 for biases (biases are never penalised).

Two heads, the output non-linearity with its loss, share the derivative structure
``∂ℓ/∂f = h(f) − y`` and ``∂²ℓ/∂f² = h'(f)``, which is what makes one VJP serve both:

- ``squared``: ``ℓ = ½ (f − y)²``, ``h(f) = f`` (regression);
- ``logistic``: ``ℓ = log(1 + eᶠ) − y f`` (cross-entropy with a soft label ``y ∈ [0, 1]``),
  ``h(f) = sigmoid(f)`` (classification).

Specs: :class:`LinearSpec` (linear or logistic regression, ``θ = [β, b]``) and
:class:`MLPSpec` (one tanh hidden layer). Tanh rather than ReLU because gradient matching
differentiates the gradient: with ReLU the mixed derivative loses its curvature term and is
undefined at every kink, with tanh it is smooth and checkable by finite differences.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy.special import expit

from ..errors import InputError

__all__ = ["HEADS", "LinearSpec", "MLPSpec", "make_spec"]


class _SquaredHead:
    name = "squared"
    # h(f) ≈ a + b f around f = 0 (exact here); used for control variates
    taylor = (0.0, 1.0)

    @staticmethod
    def loss(f, y):
        return 0.5 * (f - y) ** 2

    @staticmethod
    def residual(f, y):
        return f - y

    @staticmethod
    def curvature(f):
        return np.ones_like(f)

    @staticmethod
    def output(f):
        return f


class _LogisticHead:
    name = "logistic"
    taylor = (0.5, 0.25)

    @staticmethod
    def loss(f, y):
        # log(1 + e^f) - y f, written to stay finite for large |f|
        return np.logaddexp(0.0, f) - y * f

    @staticmethod
    def residual(f, y):
        return expit(f) - y

    @staticmethod
    def curvature(f):
        p = expit(f)
        return p * (1.0 - p)

    @staticmethod
    def output(f):
        return expit(f)


HEADS = {"regression": _SquaredHead, "classification": _LogisticHead}


class LinearSpec:
    """``f(x) = x·β + b``; ``θ = [β (d), b]``. Linear regression or logistic regression."""

    def __init__(self, head):
        self.head = head

    def n_params(self, d):
        return d + 1

    def init_params(self, rng, d):
        return rng.uniform(-1.0, 1.0, d + 1) / np.sqrt(d)

    def layers(self, d):
        return ((0, d + 1, 1),)

    def penalty_mask(self, d):
        mask = np.ones(d + 1)
        mask[-1] = 0.0
        return mask

    def decision(self, theta, X):
        return X @ theta[:-1] + theta[-1]

    def loss_and_grad(self, theta, X, y, w):
        f = self.decision(theta, X)
        delta = w * self.head.residual(f, y)
        grad = np.empty_like(theta)
        grad[:-1] = X.T @ delta
        grad[-1] = delta.sum()
        return float(w @ self.head.loss(f, y)), grad

    def data_vjp(self, theta, X, y, w, v):
        # v·∇θL = Σᵢ wᵢ rᵢ uᵢ with rᵢ = h(fᵢ) − yᵢ and uᵢ = xᵢ·v_β + v_b; xᵢ enters rᵢ through
        # fᵢ (∂rᵢ/∂xᵢ = h'(fᵢ) β) and uᵢ directly (∂uᵢ/∂xᵢ = v_β); ∂rᵢ/∂yᵢ = −1.
        beta, v_beta = theta[:-1], v[:-1]
        f = self.decision(theta, X)
        u = X @ v_beta + v[-1]
        delta = w * self.head.residual(f, y)
        dX = np.outer(w * self.head.curvature(f) * u, beta) + np.outer(delta, v_beta)
        return dX, -w * u


class MLPSpec:
    """One hidden layer: ``f(x) = tanh(x W₁ + b₁)·w₂ + b₂`` with ``hidden`` units.

    Layout of ``θ``: first the hidden layer as a ``(hidden, d + 1)`` block whose row ``j`` is
    unit ``j``'s incoming weights followed by its bias, then ``w₂`` (hidden), then ``b₂``.
    """

    def __init__(self, head, hidden):
        self.head = head
        self.hidden = int(hidden)

    def n_params(self, d):
        return self.hidden * (d + 2) + 1

    def init_params(self, rng, d):
        h = self.hidden
        first = rng.uniform(-1.0, 1.0, h * (d + 1)) / np.sqrt(d)
        second = rng.uniform(-1.0, 1.0, h + 1) / np.sqrt(h)
        return np.concatenate([first, second])

    def layers(self, d):
        split = self.hidden * (d + 1)
        return ((0, split, self.hidden), (split, split + self.hidden + 1, 1))

    def penalty_mask(self, d):
        h = self.hidden
        mask = np.ones(self.n_params(d))
        mask[d : h * (d + 1) : d + 1] = 0.0  # b₁: the last entry of each hidden row
        mask[-1] = 0.0  # b₂
        return mask

    def unpack(self, theta, d):
        h = self.hidden
        block = theta[: h * (d + 1)].reshape(h, d + 1)
        return block[:, :d].T, block[:, d], theta[h * (d + 1) : -1], theta[-1]

    def pack(self, W1, b1, w2, b2):
        return np.concatenate([np.column_stack([W1.T, b1]).ravel(), w2, [b2]])

    def decision(self, theta, X):
        W1, b1, w2, b2 = self.unpack(theta, X.shape[1])
        return np.tanh(X @ W1 + b1) @ w2 + b2

    def loss_and_grad(self, theta, X, y, w):
        W1, b1, w2, b2 = self.unpack(theta, X.shape[1])
        A = np.tanh(X @ W1 + b1)
        f = A @ w2 + b2
        delta = w * self.head.residual(f, y)
        E = np.outer(delta, w2) * (1.0 - A * A)  # ∂L/∂Z, per sample and unit
        grad = self.pack(X.T @ E, E.sum(axis=0), A.T @ delta, delta.sum())
        return float(w @ self.head.loss(f, y)), grad

    def data_vjp(self, theta, X, y, w, v):
        # v·∇θL = Σᵢ δᵢ mᵢ with δᵢ = wᵢ (h(fᵢ) − yᵢ) and
        #   mᵢ = aᵢ·v_w₂ + v_b₂ + qᵢ·(w₂ ⊙ Dᵢ),  aᵢ = tanh(zᵢ), Dᵢ = 1 − aᵢ², qᵢ = xᵢ V₁ + v_b₁
        # (qᵢ is the change of zᵢ along v). xᵢ enters δᵢ through fᵢ (∂f/∂x = W₁ (w₂ ⊙ D)),
        # mᵢ through zᵢ (∂D/∂z = −2 a D) and through qᵢ (∂q/∂x = V₁).
        d = X.shape[1]
        W1, b1, w2, b2 = self.unpack(theta, d)
        V1, vb1, vw2, vb2 = self.unpack(v, d)
        A = np.tanh(X @ W1 + b1)
        D = 1.0 - A * A
        f = A @ w2 + b2
        Q = X @ V1 + vb1
        G = D * w2  # ∂f/∂Z
        m = A @ vw2 + vb2 + (Q * G).sum(axis=1)
        delta = w * self.head.residual(f, y)
        dX = (w * self.head.curvature(f) * m)[:, None] * (G @ W1.T)
        dX += delta[:, None] * ((D * (vw2 - 2.0 * A * Q * w2)) @ W1.T + G @ V1.T)
        return dX, -w * m


def make_spec(learner: str, task: str, *, hidden: int = 16):
    """The spec of ``learner`` for ``task``: ``"linear"`` (a linear model with the task's loss:
    least squares or logistic regression), ``"logistic"`` (the same, classification only) or
    ``"mlp"``."""
    if task not in HEADS:
        raise InputError(f"unknown task {task!r}: choose one of {', '.join(HEADS)}")
    if learner == "linear":
        return LinearSpec(HEADS[task])
    if learner == "logistic":
        if task != "classification":
            raise InputError("learner 'logistic' needs task='classification' (use 'linear' for regression)")
        return LinearSpec(HEADS[task])
    if learner == "mlp":
        if isinstance(hidden, bool) or not isinstance(hidden, numbers.Integral) or hidden < 1:
            raise InputError(f"hidden must be a positive integer (units), got {hidden!r}")
        return MLPSpec(HEADS[task], hidden)
    raise InputError(f"unknown learner {learner!r}: choose one of linear, logistic, mlp")


