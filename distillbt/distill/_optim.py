"""Optimisation helpers shared by the iterative distillers and the MLP: Adam and a cosine
learning-rate schedule with a plateau check."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Adam", "Schedule"]


class Adam:
    """Adam (Kingma & Ba, 2015) over a list of arrays, updated in place.

    Shared by :class:`distillbt.models.MLP` (its parameters) and gradient matching (the
    synthetic points and labels). ``step`` takes one learning rate per array (or one for all) so that points
    and labels can move at different speeds, and the caller's schedule can scale them.
    """

    def __init__(self, params, *, beta1=0.9, beta2=0.999, eps=1e-8):
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, params, grads, lrs):
        if not isinstance(lrs, (list, tuple)):
            lrs = [lrs] * len(params)
        self.t += 1
        c1 = 1.0 - self.beta1**self.t
        c2 = 1.0 - self.beta2**self.t
        for p, g, m, v, lr in zip(params, grads, self.m, self.v, lrs):
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * g * g
            p -= lr * (m / c1) / (np.sqrt(v / c2) + self.eps)


class Schedule:
    """Learning-rate schedule with a plateau check.

    ``lr()`` follows a cosine decay from ``lr`` to 0 over ``n_iter`` iterations (or stays
    constant). ``update(loss)`` records the loss after an iteration and returns True when
    training should stop. A plateau is declared when the moving average of the last
    ``patience`` losses has not improved on its best value by more than
    ``tol · max(|best|, 1)`` for ``patience`` iterations in a row.

    With noisy gradients the points jitter by an amount that grows with the learning rate, so
    a plateau in the middle of a cosine schedule means "as good as this learning rate allows",
    not "done": stopping there would keep the jitter. So on a plateau the rest of the cosine
    schedule is compressed into at most ``patience`` iterations (a cosine from the current
    rate to 0) and training stops after that short annealing; a constant schedule stops at
    once. The long window is deliberate too: a short one stops on the jitter itself.
    """

    def __init__(self, kind, lr, n_iter, *, tol, patience):
        self.kind, self.base, self.n_iter = kind, lr, n_iter
        self.tol, self.patience = tol, patience
        self.recent = []
        self.best = math.inf
        self.stale = 0
        self.anneal = None  # (first iteration, starting rate, length) once a plateau is seen
        self.t = 0  # iterations completed
        self.converged = False

    def lr(self):
        if self.anneal is not None:
            start, rate, length = self.anneal
            return rate * 0.5 * (1.0 + math.cos(math.pi * (self.t - start) / length))
        if self.kind == "cosine":
            return self.base * 0.5 * (1.0 + math.cos(math.pi * self.t / self.n_iter))
        return self.base

    def update(self, loss):
        self.t += 1
        if self.anneal is not None:
            start, _, length = self.anneal
            return self.t >= start + length
        self.recent.append(loss)
        if len(self.recent) > self.patience:
            self.recent.pop(0)
        if len(self.recent) < self.patience:
            return False
        avg = sum(self.recent) / len(self.recent)
        if not math.isfinite(self.best) or avg < self.best - self.tol * max(abs(self.best), 1.0):
            self.best, self.stale = avg, 0
            return False
        self.stale += 1
        if self.stale < self.patience:
            return False
        self.converged = True
        remaining = self.n_iter - self.t
        if self.kind != "cosine" or remaining <= 1:
            return True
        self.anneal = (self.t, self.lr(), min(self.patience, remaining))
        return False
