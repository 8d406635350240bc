"""The protocol every distiller follows (scikit-learn conventions).

A distiller turns a real training set ``(X, y)`` into a small set of ``size`` points::

    distiller = GradientMatching(size=50, task="classification", random_state=0)
    distiller.fit(X, y)                      # returns self
    distiller.X_, distiller.y_, distiller.weight_

- ``__init__`` only stores its keyword arguments (no validation, no work);
- ``fit(X, y, sample_weight=None)`` validates, learns, sets the attributes ending in ``_`` and
  returns ``self``; it never changes ``X`` or ``y``;
- ``X_`` is ``(size, n_features)`` float64, ``y_`` is ``(size,)`` float64: for
  ``task="regression"`` a target in the units of ``y``, for ``task="classification"`` a label
  or soft label in [0, 1] (``y`` holds 0/1); ``weight_`` is ``(size,)``, non-negative, summing
  to 1 (how much of the real set each point stands for);
- ``n_iter_``, ``converged_`` and ``loss_history_`` (a list of floats) for iterative methods;
  non-iterative ones set ``n_iter_ = 0``, ``converged_ = True``, ``loss_history_ = []``;
- all randomness comes from ``numpy.random.default_rng(random_state)``;
- bad input raises :class:`~distillbt.errors.InputError` with one line (e.g. ``size`` larger
  than the data, NaN in X, ``y`` not 0/1 for classification).
"""

from __future__ import annotations

import numpy as np

from .._params import ParamsMixin
from ..errors import InputError

__all__ = ["BaseDistiller", "TASKS", "check_training_data", "check_init_points"]

TASKS = ("regression", "classification")


def check_training_data(X, y, sample_weight=None, *, size: int | None = None, task: str = "regression"):
    """Validated float64 copies of ``X`` (n, d), ``y`` (n,) and weights summing to 1."""
    X = np.asarray(X, dtype="float64")
    y = np.asarray(y, dtype="float64").reshape(-1)
    if X.ndim != 2:
        raise InputError(f"X must be 2-D (samples × features), got shape {X.shape}")
    if len(X) != len(y):
        raise InputError(f"X has {len(X)} rows but y has {len(y)}")
    if len(X) == 0:
        raise InputError("no training samples (empty regime or period?)")
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise InputError("X or y holds NaN or inf")
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}: choose one of {', '.join(TASKS)}")
    if task == "classification" and not np.isin(y, (0.0, 1.0)).all():
        raise InputError("classification targets must be 0 or 1")
    if size is not None and not (1 <= int(size) <= len(X)):
        raise InputError(f"size {size} must be between 1 and the number of samples ({len(X)})")
    if sample_weight is None:
        w = np.full(len(X), 1.0 / len(X))
    else:
        w = np.asarray(sample_weight, dtype="float64").reshape(-1)
        if len(w) != len(X) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise InputError("sample_weight must be finite, non-negative, one per sample, not all zero")
        w = w / w.sum()
    return X, y, w


def check_init_points(init_points, init_targets, size, n_features):
    """Validated float64 copies of warm-start points ``(size, n_features)`` and their targets.

    Iterative distillers accept them in ``fit(..., init_points=, init_targets=)`` to start
    from a saved set (an update) instead of from real rows.
    """
    P = np.asarray(init_points, dtype="float64")
    t = np.asarray(init_targets, dtype="float64").reshape(-1) if init_targets is not None else None
    if P.ndim != 2 or P.shape != (int(size), n_features) or t is None or len(t) != len(P):
        raise InputError(f"init_points must have shape ({size}, {n_features}) with one init_target each, "
                         f"got {P.shape} and {None if t is None else t.shape}")
    if not (np.isfinite(P).all() and np.isfinite(t).all()):
        raise InputError("init_points or init_targets hold NaN or inf")
    return P, t


class BaseDistiller(ParamsMixin):
    """Shared plumbing: parameters introspection (``get_params``/``set_params``) and ``repr``.

    Subclasses define ``__init__`` with keyword arguments stored under the same names, and
    ``fit``.
    """

    #: Fitted in the calling process, not on the executor's workers: a closed form that takes
    #: milliseconds, less than shipping a regime's rows to a worker process costs.
    fits_inline: bool = False
    #: ``fit`` takes ``y`` of shape (n, k), several targets of the same rows, and gives ``y_``
    #: of shape (m, k): the points do not depend on the labels, so one fit serves every target
    #: (:func:`distillbt.distill.runner.distill_targets`).
    multi_target: bool = False

    def _set_result(self, X_, y_, weight_, *, n_iter=0, converged=True, loss_history=None):
        self.X_ = np.asarray(X_, dtype="float64")
        y_ = np.asarray(y_, dtype="float64")
        self.y_ = y_ if (self.multi_target and y_.ndim == 2) else y_.reshape(-1)
        weight_ = np.asarray(weight_, dtype="float64").reshape(-1)
        self.weight_ = weight_ / weight_.sum()
        self.n_iter_ = int(n_iter)
        self.converged_ = bool(converged)
        self.loss_history_ = list(loss_history or [])
        return self
