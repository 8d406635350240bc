"""Cluster centroids with their clusters' labels: a model-agnostic set for non-linear learners.

A coreset of real rows keeps each row's own label, and on market data a row's label is mostly
noise (the sign of the next return). A tree, forest or nearest-neighbours model fitted on
1,000 such rows fits that noise: its predictions spread far wider than the same model's fitted
on 100,000 rows, whose leaves and neighbourhoods average hundreds of labels. Replacing each
selected point's label by the *mean label of the real rows it stands for* keeps the averaging:
:class:`KMeansCentroids` clusters the training rows in feature space (k-means, scikit-learn's
``KMeans``, group by group), and each cluster becomes one point — one of its real rows (or their
weighted mean), with their total weight and their weighted mean label (a probability of "up"
for classification, the mean scaled return for regression). The label's weighted mean matches
exactly; a model whose splits or neighbourhoods are coarser than the clusters sees nearly what
it would see on the full data (``benchmarks/bench_estimators.py --calibrate`` measures it
against coresets of real rows with their own labels).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .base import BaseDistiller, check_training_data
from .coresets import check_choice, check_int

__all__ = ["KMeansCentroids"]


class KMeansCentroids(BaseDistiller):
    """``size`` weighted cluster means of the training rows, labelled with their clusters'
    weighted mean label.

    ``y`` may have shape (n, k): k targets of the same rows (horizons, tasks). The clusters
    depend on ``X`` and the weights only, so ``y_`` is then (m, k), each column its target's
    cluster means (:attr:`multi_target`).

    Parameters
    ----------
    size : int
        Clusters (points); empty clusters are dropped, so ``X_`` may hold fewer.
    point : {"member", "mean"}, default "member"
        Each cluster's point: one of its rows drawn with probability ∝ weight, so the points
        keep the real rows' spread; or its weighted mean, which shrinks every feature toward
        the centres (a tree fitted on means puts its splits where real rows are rarer:
        Spearman 0.825 against 0.889 for members, 5,000 points, calibration set of
        ``benchmarks/bench_estimators.py``, seed 0).
    clustering : {"grouped", "minibatch"}, default "grouped"
        How rows are clustered. ``"grouped"``: first into about ``size / group_points`` groups
        by k-means, then each group into its share (by weight) of the clusters by k-means
        (scikit-learn's ``KMeans``: Lloyd passes from random rows) — a pass costs a group's rows
        × its clusters, so about ``group_points / size`` of a pass over every row and cluster,
        and the clusters end as tight (``tests/test_estimators.py``). ``"minibatch"``:
        scikit-learn's ``MiniBatchKMeans`` over all rows at once (the earlier default). On the
        calibration set of ``benchmarks/bench_estimators.py --calibrate`` (10,000 points, seeds
        0, 1 and 2, mean ± std) the two rank alike — grouped 0.980 ± 0.002 (non-linear
        configurations 0.942 ± 0.011), minibatch 0.979 ± 0.006 (0.950 ± 0.004) — and the
        batch's distillation takes 0.8 s instead of 1.4–1.7 s (seeds 1 and 2); groups of 100
        points rank at 0.979 ± 0.007, of 500 at 0.970 ± 0.013, 3 passes per group at 0.981 ±
        0.005 (``--method-params '{"clustering": "minibatch"}'`` and the like).
    group_points : int, default 250
        Clusters per group (``"grouped"``).
    max_iter : int, optional
        Passes at most: per group for ``"grouped"`` (default 10), over all rows for
        ``"minibatch"`` (default 3). Centres start at random rows: with thousands of
        clusters, k-means++ seeding costs more than the passes and ends no better (measured on
        25,000 × 20 rows, 2,500 clusters: 2.5 s against 1.1 s, the same inertia within 0.2 %).
        Mini-batch on the calibration set (seeds 0 and 1): 10 passes rank at 0.981 ± 0.003, 3
        at 0.977 ± 0.007, 1 at 0.968 ± 0.005; float32 keeps the ranking (10 passes: 0.982 ±
        0.004; 3 passes: 0.979 ± 0.007).
    batch_size : int, default 4096
        Rows per mini-batch (``"minibatch"``).
    dtype : {"float32", "float64"}, default "float32"
        The precision the rows are clustered in. Labels and points stay exact float64 rows and
        means.
    random_state : int, default 0

    Attributes
    ----------
    X_, y_, weight_ : the clusters' points, mean labels and weight shares.
    labels_ : ndarray of int, shape (n,)
        The cluster of every training row (index into the clusters before empty ones were
        dropped).
    counts_ : ndarray of int
        Rows per kept cluster.
    """

    multi_target = True

    def __init__(self, *, size, point="member", clustering="grouped", group_points=250, max_iter=None,
                 batch_size=4096, dtype="float32", random_state=0):
        self.size = size
        self.point = point
        self.clustering = clustering
        self.group_points = group_points
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.dtype = dtype
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        Y = np.asarray(y, dtype="float64")
        columns = Y.reshape(len(Y), -1) if Y.ndim == 2 else None
        X, y, w = check_training_data(X, Y[:, 0] if columns is not None else Y, sample_weight, size=self.size)
        if columns is not None and not np.isfinite(columns).all():
            raise InputError("X or y holds NaN or inf")
        Y = columns if columns is not None else y[:, None]
        size = check_int("size", self.size, 1)
        dtype = check_choice("dtype", self.dtype, ("float32", "float64"))
        cluster = {"grouped": _grouped, "minibatch": _minibatch}[
            check_choice("clustering", self.clustering, ("grouped", "minibatch"))]
        max_iter = None if self.max_iter is None else check_int("max_iter", self.max_iter, 1)
        labels, size, n_iter = cluster(X.astype(dtype), w.astype(dtype), size, max_iter=max_iter,
                                       group_points=check_int("group_points", self.group_points, 1),
                                       batch_size=check_int("batch_size", self.batch_size, 1),
                                       seed=self.random_state)
        mass = np.bincount(labels, weights=w, minlength=size)
        keep = mass > 0
        # exact weighted means of each cluster's rows (k-means centres are estimates, and in float32)
        label_sums = np.stack([np.bincount(labels, weights=w * Y[:, k], minlength=size) for k in range(Y.shape[1])],
                              axis=1)
        if check_choice("point", self.point, ("member", "mean")) == "mean":
            sums = np.stack([np.bincount(labels, weights=w * X[:, j], minlength=size) for j in range(X.shape[1])],
                            axis=1)
            points = sums[keep] / mass[keep, None]
        else:
            points = X[_one_member_each(labels, w, size, np.random.default_rng(self.random_state))[keep]]
        self.labels_ = labels
        self.counts_ = np.bincount(labels, minlength=size)[keep]
        means = label_sums[keep] / mass[keep, None]
        return self._set_result(points, means if columns is not None else means[:, 0], mass[keep], n_iter=n_iter)


def _minibatch(X, w, size, *, max_iter, batch_size, seed, **_):
    """Every row's cluster by scikit-learn's ``MiniBatchKMeans`` over all rows at once."""
    from sklearn.cluster import MiniBatchKMeans

    kmeans = MiniBatchKMeans(n_clusters=size, batch_size=batch_size, max_iter=max_iter or 3, n_init=1,
                             init="random", random_state=seed)
    # labels_ are every row's nearest final centre (compute_labels): predict(X) again would repeat that pass
    return kmeans.fit(X, sample_weight=w).labels_, size, int(kmeans.n_iter_)


def _grouped(X, w, size, *, max_iter, group_points, seed, **_):
    """Every row's cluster, found group by group: the rows split into about ``size /
    group_points`` groups by k-means, then each group's rows into its share (by weight) of the
    ``size`` clusters by k-means (scikit-learn's ``KMeans``, Lloyd passes from random rows).
    A pass over a group costs its rows × its clusters, so the whole costs about ``group_points``
    / ``size`` of a pass over all rows and clusters; returns ``(labels, clusters, passes)``."""
    from sklearn.cluster import KMeans

    seeds = np.random.SeedSequence(seed)
    n_groups = int(max(1, min(len(X), round(size / group_points))))
    if n_groups > 1:
        group_of = KMeans(n_clusters=n_groups, n_init=1, max_iter=20, random_state=_seed(seeds)).fit(
            X, sample_weight=w).labels_
    else:
        group_of = np.zeros(len(X), dtype=int)
    rows_of = [np.flatnonzero(group_of == g) for g in range(n_groups)]
    shares = _apportion(size, np.bincount(group_of, weights=w, minlength=n_groups),
                        caps=np.array([len(rows) for rows in rows_of]))
    labels = np.empty(len(X), dtype=int)
    offset, passes = 0, 0
    for rows, k in zip(rows_of, shares):
        if k >= len(rows):  # a group with no more rows than its clusters: each row alone
            labels[rows] = offset + np.arange(len(rows))
        elif k > 0:
            kmeans = KMeans(n_clusters=int(k), n_init=1, max_iter=max_iter or 10, init="random",
                            random_state=_seed(seeds)).fit(X[rows], sample_weight=w[rows])
            labels[rows] = offset + kmeans.labels_
            passes = max(passes, int(kmeans.n_iter_))
        offset += int(k)
    return labels, offset, passes


def _seed(seeds: np.random.SeedSequence) -> int:
    return int(seeds.spawn(1)[0].generate_state(1)[0])


def _apportion(total: int, mass: np.ndarray, *, caps: np.ndarray) -> np.ndarray:
    """``total`` split in proportion to ``mass`` (largest remainders), each share between 1
    (a non-empty group) and its cap."""
    exact = total * mass / mass.sum()
    shares = np.floor(exact).astype(int)
    shares[np.argsort(shares - exact)[: total - shares.sum()]] += 1
    return np.clip(shares, (caps > 0).astype(int), caps)


def _one_member_each(labels, w, size, rng) -> np.ndarray:
    """One row per cluster drawn with probability ∝ weight among its members (-1 when empty)."""
    key = rng.random(len(labels)) ** (1.0 / np.maximum(w, 1e-300))  # weighted reservoir keys
    order = np.lexsort((-key, labels))  # by cluster, largest key first
    first = np.r_[True, labels[order][1:] != labels[order][:-1]]
    out = np.full(size, -1)
    out[labels[order][first]] = order[first]
    return out
