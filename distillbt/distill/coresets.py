"""Coreset baselines: selected real rows that every distiller is compared against.

The literature's lesson (docs/design.md §5) is that coresets are strong on tabular data, so these
run beside every distiller with the same protocol (:mod:`distillbt.distill.base`):

- :class:`RandomSubset` — a random subset drawn with ``sample_weight`` as sampling
  probabilities (optionally stratified on ``y``), uniform weights;
- :class:`KMedoids` — k-medoids in the joint standardised ``(x, y)`` space, each medoid
  weighted by the share of real points nearest to it;
- :class:`Herding` — kernel herding: greedy points whose running mean embedding matches the
  mean embedding of the real set;
- :class:`FullData` — the whole training set: the reference every method is measured against.

Each sets ``indices_``, the rows of ``X`` it selected (so ``X_`` and ``y_`` are actual rows
of the training set; all of them for :class:`FullData`). Rows with zero ``sample_weight`` are never
selected. Distances and kernels are computed in the *joint standardised space*: each column
of ``[X, y]`` centred and scaled by its weighted mean and standard deviation (constant columns
are left unscaled), so that a feature in large units, or a target in small ones (a log return
of 0.001), neither dominates nor vanishes.

Memory stays linear in ``n``: distances to the selected points are computed in chunks, never
as an ``n × n`` matrix, so a million rows are fine.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..errors import InputError
from .base import BaseDistiller, check_training_data

__all__ = ["RandomSubset", "KMedoids", "Herding", "FullData"]

# Upper bound on the cells of one temporary (rows × centres) distance block: 2M float64 = 16 MB.
_BLOCK_CELLS = 1 << 21


# --------------------------------------------------------------------------- shared helpers
# (also used by the other distillers: distribution.py, kernel.py, centroids.py…)


def check_int(name, value, minimum, maximum=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise InputError(f"{name} must be {bound}, got {value}")
    return int(value)


def check_float(name, value, *, low=0.0, strict=True):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    if value < low or (strict and value == low):
        raise InputError(f"{name} must be {'>' if strict else '>='} {low}, got {value}")
    return float(value)


def check_choice(name, value, choices):
    if value not in choices:
        raise InputError(f"unknown {name} {value!r}: choose one of {', '.join(map(str, choices))}")
    return value


class JointScaler:
    """Weighted standardisation of the joint vector ``z = [x, y]`` (columns with zero spread
    keep scale 1, so they stay constant instead of becoming NaN)."""

    def __init__(self, X, y, w):
        Z_mean = np.append(w @ X, w @ y)
        var = np.append(w @ (X - Z_mean[:-1]) ** 2, w @ (y - Z_mean[-1]) ** 2)
        scale = np.sqrt(var)
        # A relative threshold: a column that is constant up to rounding must not be blown up.
        tiny = 1e-12 * np.maximum(np.abs(Z_mean), 1.0)
        self.mean = Z_mean
        self.scale = np.where(scale > tiny, scale, 1.0)
        self.n_features = X.shape[1]

    def transform(self, X, y):
        out = np.empty((len(X), self.n_features + 1))
        np.subtract(X, self.mean[:-1], out=out[:, :-1])
        out[:, -1] = y - self.mean[-1]
        out /= self.scale
        return out

    def transform_x(self, X):
        return (X - self.mean[:-1]) / self.scale[:-1]

    def inverse_x(self, Xs):
        return Xs * self.scale[:-1] + self.mean[:-1]

    def transform_y(self, y):
        return (y - self.mean[-1]) / self.scale[-1]

    def inverse_y(self, ys):
        return ys * self.scale[-1] + self.mean[-1]


def _weighted_sample(w, k, rng):
    """``k`` distinct indices drawn one after another with probability ∝ ``w`` (successive
    sampling without replacement), in O(n) via Efraimidis–Spirakis exponential keys."""
    with np.errstate(divide="ignore"):
        keys = rng.standard_exponential(len(w)) / w  # zero weight -> inf: never chosen
    if k >= len(w):
        chosen = np.argsort(keys, kind="stable")[:k]
    else:
        chosen = np.argpartition(keys, k - 1)[:k]
    # Order by key: the order in which successive sampling would have drawn them.
    return chosen[np.argsort(keys[chosen], kind="stable")]


def _nearest(Z, C, *, transform=None):
    """Index of and Euclidean distance to the nearest row of ``C`` for every row of ``Z``.

    ``Z`` is processed in chunks so that no block exceeds ``_BLOCK_CELLS`` cells. When
    ``transform`` is given, ``Z`` is a tuple ``(X, y)`` of raw rows standardised chunk by chunk
    (no standardised copy of a large data set is ever held).
    """
    n = len(Z[0]) if transform is not None else len(Z)
    labels = np.empty(n, dtype=np.intp)
    dist = np.empty(n)
    C_sq = np.einsum("ij,ij->i", C, C)
    step = max(1, _BLOCK_CELLS // max(1, len(C)))
    for start in range(0, n, step):
        stop = min(n, start + step)
        if transform is not None:
            Zc = transform(Z[0][start:stop], Z[1][start:stop])
        else:
            Zc = Z[start:stop]
        d2 = np.einsum("ij,ij->i", Zc, Zc)[:, None] + C_sq[None, :] - 2.0 * (Zc @ C.T)
        lab = np.argmin(d2, axis=1)
        labels[start:stop] = lab
        dist[start:stop] = np.sqrt(np.maximum(d2[np.arange(stop - start), lab], 0.0))
    return labels, dist


def sq_dist(A, B):
    d2 = np.einsum("ij,ij->i", A, A)[:, None] + np.einsum("ij,ij->i", B, B)[None, :]
    d2 -= 2.0 * (A @ B.T)
    return np.maximum(d2, 0.0)


def median_gamma(Z, rng, *, n_pairs=20_000):
    """The median heuristic ``1 / median ||z_i - z_j||²`` over random pairs of distinct rows."""
    n = len(Z)
    if n < 2:
        return 1.0
    i = rng.integers(0, n, n_pairs)
    j = rng.integers(0, n - 1, n_pairs)
    j = j + (j >= i)  # a pair of distinct rows
    d2 = np.einsum("ij,ij->i", Z[i] - Z[j], Z[i] - Z[j])
    med = np.median(d2)
    return 1.0 / med if med > 0 else 1.0


def _positive_pool(w, size):
    pool = np.flatnonzero(w > 0)
    if len(pool) < size:
        raise InputError(f"size {size} exceeds the {len(pool)} samples with non-zero weight")
    return pool


def uniform(size):
    return np.full(size, 1.0 / size)


# --------------------------------------------------------------------------- baselines


class RandomSubset(BaseDistiller):
    """A random subset of ``size`` real rows.

    Rows are drawn without replacement, one after another, each with probability proportional
    to its ``sample_weight`` among the rows not yet drawn, so that regime or recency weights
    shape the subset itself; every selected row then gets weight ``1 / size``.

    Parameters
    ----------
    size : int
        Number of rows to select (at most the number of rows with non-zero weight).
    stratify : bool, default False
        Allocate the draws across strata of ``y`` in proportion to each stratum's total weight
        (largest-remainder rounding): by class when ``y`` holds only 0 and 1, otherwise by
        ``min(size, 10)`` bins of equal weight along ``y``. Removes the sampling noise in the
        label distribution, which matters for small ``size`` and rare classes.
    random_state : int, Generator or None, default 0
        Seed of ``numpy.random.default_rng``.

    Attributes
    ----------
    X_, y_, weight_, n_iter_, converged_, loss_history_ : see :mod:`distillbt.distill.base`.
    indices_ : ndarray of int, shape (size,)
        The selected rows of ``X``.
    """

    def __init__(self, *, size, stratify=False, random_state=0):
        self.size = size
        self.stratify = stratify
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        X, y, w = check_training_data(X, y, sample_weight, size=self.size)
        size = check_int("size", self.size, 1)
        rng = np.random.default_rng(self.random_state)
        _positive_pool(w, size)
        if not self.stratify:
            idx = _weighted_sample(w, size, rng)
        else:
            idx = self._stratified(y, w, size, rng)
        self.indices_ = np.sort(idx)
        return self._set_result(X[self.indices_], y[self.indices_], uniform(size))

    @staticmethod
    def _stratified(y, w, size, rng):
        if np.isin(y, (0.0, 1.0)).all():
            strata = y.astype(np.intp)
        else:
            # Bins of equal total weight along y (weighted quantiles).
            n_bins = min(size, 10)
            order = np.argsort(y, kind="stable")
            cum = np.cumsum(w[order])
            strata = np.empty(len(y), dtype=np.intp)
            bins = (cum - w[order] / 2) * n_bins // cum[-1]  # by each row's weight midpoint
            strata[order] = np.minimum(bins, n_bins - 1).astype(np.intp)
        labels = np.unique(strata)
        mass = np.array([w[strata == s].sum() for s in labels])
        capacity = np.array([np.count_nonzero((strata == s) & (w > 0)) for s in labels])
        quota = mass / mass.sum() * size
        alloc = np.minimum(np.floor(quota).astype(np.intp), capacity)
        # Hand out what rounding (and full strata) left over, largest remainder first.
        remainder = quota - alloc
        while alloc.sum() < size:
            open_ = alloc < capacity
            k = np.flatnonzero(open_)[np.argmax(remainder[open_])]
            alloc[k] += 1
            remainder[k] -= 1.0
        parts = []
        for s, k in zip(labels, alloc):
            if k:
                rows = np.flatnonzero(strata == s)
                parts.append(rows[_weighted_sample(w[rows], int(k), rng)])
        return np.concatenate(parts)


class KMedoids(BaseDistiller):
    """A k-medoids coreset in the joint standardised ``(x, y)`` space.

    Seeding is greedy k-means++ (each new medoid is the best of ``2 + ln(size)`` candidates
    drawn with probability ∝ weight × squared distance to the medoids so far), then the
    "alternate" (PAM-lite) iteration: assign every point to its nearest medoid, move each
    medoid to the member of its cluster with the smallest weighted sum of Euclidean distances
    to the other members; stop when no medoid moves or after ``max_iter`` rounds.

    On more than ``subsample`` rows the search runs on a uniform random subsample that keeps
    its ``sample_weight``; every real row is then assigned (in chunks) to its nearest medoid
    and ``weight_`` is the share of the total real weight assigned to each medoid — so a
    medoid standing for a dense region counts for more. Memory is O(n + subsample), time
    O(n · size) for the final assignment.

    Parameters
    ----------
    size : int
        Number of medoids.
    max_iter : int, default 20
        Maximum alternate rounds.
    subsample : int, default 5000
        Run the search on at most this many rows (must be at least ``size``).
    random_state : int, Generator or None, default 0

    Attributes
    ----------
    X_, y_ : real rows (the medoids).
    weight_ : share of the real (weighted) points nearest to each medoid.
    indices_ : ndarray of int, shape (size,)
        Rows of ``X`` that are the medoids.
    n_iter_, converged_ : alternate rounds run and whether the medoids stopped moving.
    loss_history_ : list of float
        Weighted mean distance from a (subsampled) point to its medoid, after seeding and
        after each round (``n_iter_ + 1`` values).
    """

    def __init__(self, *, size, max_iter=20, subsample=5000, random_state=0):
        self.size = size
        self.max_iter = max_iter
        self.subsample = subsample
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        X, y, w = check_training_data(X, y, sample_weight, size=self.size)
        size = check_int("size", self.size, 1)
        max_iter = check_int("max_iter", self.max_iter, 0)
        subsample = check_int("subsample", self.subsample, size)
        rng = np.random.default_rng(self.random_state)
        scaler = JointScaler(X, y, w)
        pool = _positive_pool(w, size)
        if len(pool) > subsample:
            # Uniform inclusion keeps the weights unbiased: each kept row carries its own weight.
            rows = np.sort(rng.choice(pool, subsample, replace=False))
        else:
            rows = pool
        Z = scaler.transform(X[rows], y[rows])
        omega = w[rows] / w[rows].sum()

        medoids = self._seed(Z, omega, size, rng)
        labels, dist = _nearest(Z, Z[medoids])
        history = [float(omega @ dist)]
        converged = False
        n_iter = 0
        for n_iter in range(1, max_iter + 1):
            new = self._update(Z, omega, labels, medoids)
            if np.array_equal(new, medoids):
                converged = True
                history.append(history[-1])
                break
            medoids = new
            labels, dist = _nearest(Z, Z[medoids])
            history.append(float(omega @ dist))

        self.indices_ = rows[medoids]
        C = Z[medoids]
        labels_all, _ = _nearest((X, y), C, transform=scaler.transform)
        weight = np.bincount(labels_all, weights=w, minlength=size)
        return self._set_result(
            X[self.indices_],
            y[self.indices_],
            weight,
            n_iter=n_iter,
            converged=converged,
            loss_history=history,
        )

    @staticmethod
    def _seed(Z, omega, k, rng):
        m = len(Z)
        n_trials = 2 + int(math.log(k))
        chosen = [int(rng.choice(m, p=omega))]
        d2 = sq_dist(Z, Z[chosen])[:, 0]
        for _ in range(1, k):
            p = omega * d2
            total = p.sum()
            if total <= 0:
                # Every remaining point coincides with a medoid: any unchosen row will do.
                rest = np.setdiff1d(np.arange(m), chosen)
                best = int(rng.choice(rest))
                chosen.append(best)
                continue
            cands = rng.choice(m, size=n_trials, p=p / total)
            d2_c = np.minimum(d2[:, None], sq_dist(Z, Z[cands]))
            best_t = int(np.argmin(omega @ d2_c))
            chosen.append(int(cands[best_t]))
            d2 = d2_c[:, best_t]
        return np.array(chosen, dtype=np.intp)

    @staticmethod
    def _update(Z, omega, labels, medoids):
        new = medoids.copy()
        order = np.argsort(labels, kind="stable")
        bounds = np.cumsum(np.bincount(labels, minlength=len(medoids)))
        start = 0
        for c, stop in enumerate(bounds):
            members = order[start:stop]
            start = stop
            if len(members) <= 1:
                continue  # an empty cluster (duplicate medoids) keeps its medoid
            Zm, om = Z[members], omega[members]
            cost = np.empty(len(members))
            step = max(1, _BLOCK_CELLS // len(members))
            for a in range(0, len(members), step):
                cost[a : a + step] = np.sqrt(sq_dist(Zm[a : a + step], Zm)) @ om
            best = members[np.argmin(cost)]
            # Keep the current medoid on (rounding-level) ties so that the iteration terminates.
            here = np.flatnonzero(members == medoids[c])
            if here.size and cost[here[0]] <= cost.min() + 1e-12 * abs(cost.min()):
                best = medoids[c]
            new[c] = best
        return new


class Herding(BaseDistiller):
    """Kernel herding (Welling 2009; Chen, Welling & Smola 2010): ``size`` real rows chosen
    greedily so that the mean embedding of the chosen set tracks the mean embedding of the
    (weighted) real set.

    Step ``t`` adds the unchosen row ``i`` minimising
    ``|| μ − (φ(z_1) + … + φ(z_t) + φ(z_i)) / (t + 1) ||²``, the squared MMD between the
    real set and the chosen set after the step, where ``μ`` is the weighted mean of ``φ`` over the
    real rows and ``z`` the joint standardised ``(x, y)``. With a constant ``k(z, z)`` (the rbf
    kernel) this is exactly Chen et al.'s herding rule; without replacement, so the rows are
    distinct.

    - ``kernel="linear"``: ``φ(z) = z``; matches the mean of ``(x, y)`` only.
    - ``kernel="rbf"``: ``k(z, z') = exp(−γ ||z − z'||²)`` through ``n_features`` random
      Fourier features (Rahimi & Recht 2007), so the cost is O(n · size · n_features) and the
      memory O(n · n_features) in float32; above ``subsample`` rows herding runs on a uniform
      random subsample of that many rows (keeping their weights) to bound that memory.

    Parameters
    ----------
    size : int
    kernel : {"rbf", "linear"}, default "rbf"
    n_features : int, default 256
        Random Fourier features (rbf only).
    gamma : float or None, default None
        rbf bandwidth in the standardised space; None uses the median heuristic
        ``1 / median ||z − z'||²``.
    subsample : int or None, default 200_000
        rbf only: herd over at most this many rows (None: all).
    random_state : int, Generator or None, default 0

    Attributes
    ----------
    X_, y_ : real rows; ``weight_`` uniform.
    indices_ : ndarray of int, shape (size,)
        Selected rows of ``X`` in the order herding chose them.
    gamma_ : float or None
        The rbf bandwidth used.
    n_iter_, converged_ : ``size`` greedy steps; always True.
    loss_history_ : list of float
        Squared MMD (in the feature space) between the real set and the chosen set before
        the first step (``||μ||²``) and after each step (``size + 1`` values).
    """

    def __init__(
        self, *, size, kernel="rbf", n_features=256, gamma=None, subsample=200_000, random_state=0
    ):
        self.size = size
        self.kernel = kernel
        self.n_features = n_features
        self.gamma = gamma
        self.subsample = subsample
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        X, y, w = check_training_data(X, y, sample_weight, size=self.size)
        size = check_int("size", self.size, 1)
        kernel = check_choice("kernel", self.kernel, ("rbf", "linear"))
        n_features = check_int("n_features", self.n_features, 1)
        subsample = self.subsample
        if subsample is not None:
            subsample = check_int("subsample", subsample, size)
        gamma = None if self.gamma is None else check_float("gamma", self.gamma)
        rng = np.random.default_rng(self.random_state)
        scaler = JointScaler(X, y, w)
        pool = _positive_pool(w, size)
        rows = pool
        if kernel == "rbf" and subsample is not None and len(pool) > subsample:
            rows = np.sort(rng.choice(pool, subsample, replace=False))
        omega = w[rows] / w[rows].sum()

        if kernel == "linear":
            Phi = scaler.transform(X[rows], y[rows])
            self.gamma_ = None
        else:
            p = X.shape[1] + 1
            if gamma is None:
                probe = rows[rng.choice(len(rows), min(len(rows), 2000), replace=False)]
                gamma = median_gamma(scaler.transform(X[probe], y[probe]), rng)
            self.gamma_ = gamma
            # float32 throughout: herding only compares scores, and the features (and their
            # cosines, the main cost) are twice as fast and half the memory.
            Omega = rng.normal(0.0, math.sqrt(2.0 * gamma), size=(p, n_features)).astype(np.float32)
            phase = rng.uniform(0.0, 2.0 * math.pi, size=n_features).astype(np.float32)
            Phi = np.empty((len(rows), n_features), dtype=np.float32)
            step = max(1, _BLOCK_CELLS // n_features)
            for a in range(0, len(rows), step):
                r = rows[a : a + step]
                Zc = scaler.transform(X[r], y[r]).astype(np.float32)
                Phi[a : a + step] = np.cos(Zc @ Omega + phase)
            Phi *= np.float32(math.sqrt(2.0 / n_features))

        mu = (omega @ Phi).astype(np.float64)
        sq_norm = np.einsum("ij,ij->i", Phi, Phi).astype(np.float64)
        total = np.zeros_like(mu)  # sum of the chosen feature vectors
        taken = np.zeros(len(rows), dtype=bool)
        chosen, history = [], [float(mu @ mu)]
        for t in range(size):
            # ||(t+1)μ - S - φ_i||² = const + ||φ_i||² - 2 φ_i·((t+1)μ - S)
            target = (t + 1) * mu - total
            score = sq_norm - 2.0 * (Phi @ target.astype(Phi.dtype))
            score[taken] = np.inf
            i = int(np.argmin(score))
            taken[i] = True
            chosen.append(i)
            total += Phi[i]
            history.append(float(np.sum((mu - total / (t + 1)) ** 2)))

        self.indices_ = rows[np.array(chosen, dtype=np.intp)]
        idx = self.indices_
        return self._set_result(X[idx], y[idx], uniform(size), n_iter=size, loss_history=history)


class FullData(BaseDistiller):
    """The whole training set behind the same protocol: the reference every method is
    measured against (``weight_`` is ``sample_weight`` normalised to sum to 1).

    Attributes
    ----------
    X_, y_, weight_ : copies of the training set and its normalised weights.
    indices_ : ``arange(n)``.
    """

    def __init__(self):
        pass

    def fit(self, X, y, sample_weight=None):
        X, y, w = check_training_data(X, y, sample_weight)
        self.indices_ = np.arange(len(X))
        # Copies: check_training_data does not copy float64 input, and X_ must not alias it.
        return self._set_result(X.copy(), y.copy(), w)
