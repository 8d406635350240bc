"""Per-class moment points: exact for classifiers that see their training rows only through
each class's share, mean and covariance.

Linear and quadratic discriminant analysis and Gaussian naive Bayes model each class as a
Gaussian: their fit is the class shares, the class means and the class covariances (pooled
for LDA, diagonal for naive Bayes), nothing else. :class:`ClassMoments` gives each class
``d + 1`` points whose weighted mean and covariance equal its rows' (the construction of
:class:`~distillbt.distill.kernel.ExactLinear`, applied to one class's rows with a constant
target), weighted by the class's share — so those estimators fitted on the points equal their
fit on the rows, the way ridge regression on exact-linear points equals its full fit.
It is distilled over the whole training period at once (:attr:`ClassMoments.pooled`;
:func:`~distillbt.distill.runner.distill` ignores ``per_regime`` for it): per regime the union
of the regimes' points would have the same moments, but with weights that differ within a
class, which the repetition below could only round. An estimator that takes no
``sample_weight`` is fitted on the points repeated in proportion to their weights
(:func:`distillbt.estimators.fit_estimator`): the points of a class are repeated alike, so its
mean and covariance stay exact and only the class shares are rounded.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .base import BaseDistiller, check_training_data
from .kernel import ExactLinear

__all__ = ["ClassMoments"]


class ClassMoments(BaseDistiller):
    """``d + 1`` points per class of 0/1 labels, with the class's rows' weighted mean and
    covariance and the class's weight share (module docstring).

    Parameters
    ----------
    task : {"classification"}
        The only task: the points carry hard labels (a regression target has no classes).

    Attributes
    ----------
    X_ : (m, d), y_ : (m,) hard 0/1 labels, weight_ : (m,) — ``m = (d + 1)`` × the classes
    present; a class's points share its weight equally.
    n_iter_ = 0, converged_ = True, loss_history_ = [].
    """

    fits_inline = True  # a covariance and an eigendecomposition per class
    #: Distilled over the whole period, not per regime (module docstring).
    pooled = True

    def __init__(self, *, task="classification"):
        self.task = task

    def fit(self, X, y, sample_weight=None):
        if self.task != "classification":
            raise InputError(f"ClassMoments needs 0/1 labels (task='classification'), not task={self.task!r}")
        X, y, w = check_training_data(X, y, sample_weight, task="classification")
        points, labels, weights = [], [], []
        for label in (0.0, 1.0):
            rows = y == label
            if not rows.any():
                continue
            # a constant target: ExactLinear then matches the class's mean and covariance only
            inner = ExactLinear(task="regression", ridge_check=False).fit(X[rows], np.zeros(int(rows.sum())), w[rows])
            points.append(inner.X_)
            labels.append(np.full(len(inner.X_), label))
            weights.append(np.full(len(inner.X_), w[rows].sum() / len(inner.X_)))
        return self._set_result(np.concatenate(points), np.concatenate(labels), np.concatenate(weights))
