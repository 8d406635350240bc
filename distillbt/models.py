"""Small numpy learners: what distillation trains on synthetic sets and evaluation trains on
every candidate training set (full data, random subset, coreset, distilled set).

Three learners, scikit-learn style (``fit(X, y, sample_weight=None)`` returns ``self``,
learned state ends in ``_``)::

    Ridge(alpha=1.0).fit(X, y).predict(X_test)
    LogisticRegression(alpha=1e-3).fit(X, soft_labels).predict_proba(X_test)
    MLP(task="classification", hidden=32, random_state=0).fit(X, y).predict(X_test)

The loss is a weighted **mean** over samples plus the penalty, unlike scikit-learn (a sum):

- :class:`Ridge`: ``Σᵢ wᵢ (yᵢ − xᵢ·β − b)² + α |β|²``;
- :class:`LogisticRegression`: ``Σᵢ wᵢ ℓ(xᵢ·β + b, yᵢ) + (α/2) |β|²``;
- :class:`MLP`: ``Σᵢ wᵢ ℓ(f(xᵢ), yᵢ) + (α/2) |weights|²``;

with weights normalised to sum to 1 (``wᵢ = 1/n`` by default) and intercepts/biases never
penalised. A distilled set of 50 points whose ``weight_`` sums to 1 stands for the whole
training set, so under this convention the same ``alpha`` means the same regularisation on
both, and a set whose weighted moments equal the real ones gives exactly the full-data ridge
solution. scikit-learn's ``Ridge(alpha=a)`` on ``n`` samples is ``Ridge(alpha=a / n)`` here.
Integer weights give the same fit as replicating rows.

The losses and their gradients live in :mod:`distillbt.distill._losses` (one copy, shared
with gradient matching, which also needs their derivatives with respect to the data).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from .distill._losses import HEADS, LinearSpec, MLPSpec
from .distill._optim import Adam
from .distill.base import check_training_data
from ._params import ParamsMixin
from .errors import InputError

__all__ = ["Ridge", "LogisticRegression", "MLP"]


class _Learner(ParamsMixin):
    """Shared plumbing: parameter introspection, ``repr`` and input checks."""

    def _check_fit(self, X, y, sample_weight):
        X, y, w = check_training_data(X, y, sample_weight)
        alpha = float(self.alpha)
        if not (np.isfinite(alpha) and alpha >= 0):
            raise InputError(f"alpha must be a finite number >= 0, got {self.alpha!r}")
        return X, y, w, alpha

    def _check_X(self, X):
        if not hasattr(self, "n_features_in_"):
            raise InputError(f"this {type(self).__name__} is not fitted yet: call fit first")
        X = np.asarray(X, dtype="float64")
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise InputError(f"X must have shape (n, {self.n_features_in_}), got {X.shape}")
        if not np.isfinite(X).all():
            raise InputError("X holds NaN or inf")
        return X


def _check_soft_labels(y, who):
    if ((y < 0) | (y > 1)).any():
        raise InputError(f"{who} targets must lie in [0, 1] (0/1 labels or soft labels)")


class Ridge(_Learner):
    """L2-penalised least squares, solved in closed form.

    Minimises ``Σᵢ wᵢ (yᵢ − xᵢ·β − b)² + α |β|²`` (weights summing to 1); ``alpha=0`` is
    ordinary least squares (the minimum-norm solution when ``X`` is rank deficient).

    Attributes: ``coef_`` (d,), ``intercept_`` (float), ``n_features_in_``.
    """

    def __init__(self, *, alpha=1.0, fit_intercept=True):
        self.alpha = alpha
        self.fit_intercept = fit_intercept

    def fit(self, X, y, sample_weight=None):
        X, y, w, alpha = self._check_fit(X, y, sample_weight)
        # The unpenalised intercept is eliminated by centring on the weighted means.
        x_mean = w @ X if self.fit_intercept else np.zeros(X.shape[1])
        y_mean = float(w @ y) if self.fit_intercept else 0.0
        sw = np.sqrt(w)[:, None]
        # Ridge as least squares on rows augmented with √α·I: the normal equations
        # (XᵀWX + αI)β = XᵀWy without forming XᵀWX (whose condition number is squared), and
        # the same code gives the minimum-norm least-squares solution at α = 0.
        A = np.vstack([sw * (X - x_mean), np.sqrt(alpha) * np.eye(X.shape[1])])
        b = np.concatenate([sw[:, 0] * (y - y_mean), np.zeros(X.shape[1])])
        self.coef_ = np.linalg.lstsq(A, b, rcond=None)[0]
        self.intercept_ = y_mean - float(x_mean @ self.coef_)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X):
        return self._check_X(X) @ self.coef_ + self.intercept_


class LogisticRegression(_Learner):
    """L2-penalised logistic regression with soft labels, fitted by L-BFGS-B.

    Minimises ``Σᵢ wᵢ [log(1 + e^{fᵢ}) − yᵢ fᵢ] + (α/2) |β|²`` with ``fᵢ = xᵢ·β + b``,
    weights summing to 1 and ``y`` in [0, 1]: distilled labels are soft, and a soft label
    ``p`` counts as ``p`` of a positive and ``1 − p`` of a negative. ``alpha`` must be
    positive when the data are separable (otherwise the coefficients grow until ``max_iter``).

    Attributes: ``coef_`` (d,), ``intercept_`` (float), ``n_iter_``, ``n_features_in_``.
    """

    def __init__(self, *, alpha=1e-3, fit_intercept=True, max_iter=200, tol=1e-8):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X, y, sample_weight=None):
        X, y, w, alpha = self._check_fit(X, y, sample_weight)
        _check_soft_labels(y, "LogisticRegression")
        spec = LinearSpec(HEADS["classification"])
        penalty = alpha * spec.penalty_mask(X.shape[1])
        if not self.fit_intercept:
            keep = np.ones(X.shape[1] + 1)
            keep[-1] = 0.0  # the intercept's gradient is zeroed: it stays at its start, 0

        def objective(theta):
            loss, grad = spec.loss_and_grad(theta, X, y, w)
            grad += penalty * theta
            if not self.fit_intercept:
                grad *= keep
            return loss + 0.5 * float(penalty @ theta**2), grad

        result = minimize(
            objective,
            np.zeros(X.shape[1] + 1),
            jac=True,
            method="L-BFGS-B",
            # stop on the gradient (tol), not on a small decrease of the loss (ftol at rounding level)
            options={"maxiter": int(self.max_iter), "gtol": float(self.tol), "ftol": 1e3 * np.finfo(float).eps},
        )
        self.coef_, self.intercept_ = result.x[:-1].copy(), float(result.x[-1])
        self.n_iter_ = int(result.nit)
        self.n_features_in_ = X.shape[1]
        return self

    def decision_function(self, X):
        return self._check_X(X) @ self.coef_ + self.intercept_

    def predict_proba(self, X):
        """P(y = 1 | x), shape (n,)."""
        return HEADS["classification"].output(self.decision_function(X))

    def predict(self, X):
        return (self.decision_function(X) > 0).astype("float64")


class MLP(_Learner):
    """A one-hidden-layer network (tanh units) trained with Adam.

    ``task="regression"`` uses the squared loss ``½ (f − y)²``; ``task="classification"``
    the logistic loss with soft labels in [0, 1] (``f`` is the log-odds). The penalty
    ``(α/2) |weights|²`` spares the biases. ``batch_size=None`` trains on the full batch
    (``epochs`` Adam steps); otherwise every epoch visits the shuffled data in mini-batches.

    Inputs (and regression targets) are standardised with their weighted mean and standard
    deviation before training (kept in ``x_mean_``, ``x_scale_``, ``y_mean_``, ``y_scale_``),
    because Adam's fixed step size and tanh's saturation assume unit-scale data; market
    features are often of order 1e-3. Why tanh: see :mod:`distillbt.distill._losses`.

    Attributes: ``params_`` (the flat parameter vector, layout in
    :class:`~distillbt.distill._losses.MLPSpec`), ``loss_curve_`` (training loss per epoch,
    on the standardised scale), ``n_iter_``, ``n_features_in_``.
    """

    def __init__(
        self,
        *,
        task="regression",
        hidden=32,
        alpha=1e-4,
        learning_rate=1e-2,
        epochs=200,
        batch_size=None,
        random_state=0,
    ):
        self.task = task
        self.hidden = hidden
        self.alpha = alpha
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.random_state = random_state

    def _spec(self):
        if self.task not in HEADS:
            raise InputError(f"unknown task {self.task!r}: choose one of {', '.join(HEADS)}")
        if not (isinstance(self.hidden, (int, np.integer)) and self.hidden >= 1):
            raise InputError(f"hidden must be a positive integer, got {self.hidden!r}")
        return MLPSpec(HEADS[self.task], self.hidden)

    def fit(self, X, y, sample_weight=None):
        X, y, w, alpha = self._check_fit(X, y, sample_weight)
        spec = self._spec()
        if self.task == "classification":
            _check_soft_labels(y, "MLP classification")
        if not (int(self.epochs) >= 1 and float(self.learning_rate) > 0):
            raise InputError("epochs must be >= 1 and learning_rate > 0")
        n, d = X.shape
        batch = n if self.batch_size is None else int(self.batch_size)
        if batch < 1:
            raise InputError(f"batch_size must be None or >= 1, got {self.batch_size!r}")

        self.x_mean_ = w @ X
        self.x_scale_ = _scale(np.sqrt(w @ (X - self.x_mean_) ** 2))
        Xs = (X - self.x_mean_) / self.x_scale_
        if self.task == "regression":
            self.y_mean_ = float(w @ y)
            self.y_scale_ = float(_scale(np.sqrt(w @ (y - self.y_mean_) ** 2)))
        else:
            self.y_mean_, self.y_scale_ = 0.0, 1.0
        ys = (y - self.y_mean_) / self.y_scale_

        rng = np.random.default_rng(self.random_state)
        theta = spec.init_params(rng, d)
        penalty = alpha * spec.penalty_mask(d)
        optimiser = Adam([theta])
        self.loss_curve_ = []
        for _ in range(int(self.epochs)):
            order = np.arange(n) if batch >= n else rng.permutation(n)
            epoch_loss = 0.0
            for start in range(0, n, batch):
                rows = order[start : start + batch]
                # weights rescaled by n/|batch|: each step's loss estimates the full loss
                loss, grad = spec.loss_and_grad(theta, Xs[rows], ys[rows], w[rows] * (n / len(rows)))
                grad += penalty * theta
                epoch_loss += (loss + 0.5 * float(penalty @ theta**2)) * len(rows) / n
                optimiser.step([theta], [grad], [float(self.learning_rate)])
            self.loss_curve_.append(epoch_loss)
        self.params_ = theta
        self.n_iter_ = int(self.epochs)
        self._spec_ = spec
        self.n_features_in_ = d
        return self

    def decision_function(self, X):
        """The network's output: the prediction for regression, the log-odds for classification."""
        X = self._check_X(X)
        f = self._spec_.decision(self.params_, (X - self.x_mean_) / self.x_scale_)
        return f * self.y_scale_ + self.y_mean_

    def predict_proba(self, X):
        """P(y = 1 | x), shape (n,); classification only."""
        if self.task != "classification":
            raise InputError("predict_proba needs task='classification'")
        return HEADS["classification"].output(self.decision_function(X))

    def predict(self, X):
        f = self.decision_function(X)
        return (f > 0).astype("float64") if self.task == "classification" else f


def _scale(std):
    """Standard deviations usable as divisors: a constant feature keeps scale 1."""
    return np.where(std > 1e-12, std, 1.0)
