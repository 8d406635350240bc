"""CAFE-style feature alignment (Wang et al., "CAFE: Learning to Condense Dataset by Aligning
Features", CVPR 2022), for the one-hidden-layer tanh MLP of :mod:`distillbt.models`.

CAFE moves the synthetic points so that, layer by layer of a network, the mean feature of
the synthetic points of each class equals the mean feature of the real points of that class,
and adds a *discrimination* term: the synthetic class means, used as the weights of a
nearest-centre classifier on the real points' last-layer features, must classify the real
points well. The networks are not fixed: CAFE keeps training them on the synthetic set
between updates. Here, for market data:

- **Groups.** Classification: the two classes. Regression: ``n_buckets`` buckets of equal real
  weight along ``y`` (weighted quantiles); each synthetic point belongs to the bucket of the
  real point it starts from, and buckets no synthetic point starts in are merged with a
  neighbour. Labels are fixed, as in CAFE: the class (0/1) for classification, the real
  weighted mean target of the bucket for regression. Each synthetic point weighs its
  group's real share divided by the group's synthetic count (``weight_``), so the set keeps
  the real class balance whatever the starting points.
- **Networks.** Each update draws ``n_nets`` fresh initialisations of the MLP (PyTorch's
  default, as distribution and gradient matching sample them) and trains each for a random
  number of steps, between 0 and ``n_inner``, of gradient descent on the synthetic set (not
  differentiated, as in CAFE's and DC's inner loop): features of nets at initialisation and
  partly trained, as the learner meets them.
- **Feature alignment**, for every layer ``l`` — the inputs, the hidden tanh units and the
  output — and every group ``c`` with real share ``π_c``::

      L_f = Σ_l Σ_c π_c · mean over units of (μ^S_{l,c} − μ^T_{l,c})²

  with ``μ^T`` the weighted group means on a mini-batch of ``batch_size`` real rows drawn
  ∝ ``sample_weight`` (the same rows for all nets of an update). Including the inputs makes
  the class-conditional means of the features, what a linear learner needs first, match
  exactly at the optimum.
- **Discrimination** (weight ``discrimination``; 0 switches it off): logits
  ``o_{ic} = a_i · μ^S_{hidden,c}`` of the real rows against the synthetic hidden-layer
  group means, and the weighted cross-entropy with the real groups ``L_d``. On weak
  signals this term sharpens the separation of the groups beyond the real one, which can
  help a classifier's direction and hurt its calibration; it is measured, not assumed.

The loss is ``(1/n_nets) Σ_nets (L_f + β L_d)``; its gradient with respect to the synthetic
points is closed form (:func:`_alignment_loss_grad`). Starting points, standardisation,
Adam, schedule and plateau rule are distribution matching's (helpers shared with
:mod:`.distribution` and :mod:`.trajectory`); ``loss_history_`` is the loss on a fixed panel
of ``n_nets`` initialisations (no inner training) and fixed real rows, a deterministic
function of the synthetic points.
"""

from __future__ import annotations

import numpy as np

from ._losses import make_spec
from .base import TASKS, BaseDistiller, check_training_data
from .coresets import check_choice, check_float, check_int
from .distribution import optimisation_options, starting_points
from .trajectory import descend

__all__ = ["CAFE"]

# Real rows of the panel that the recorded loss uses, in multiples of batch_size.
_PANEL_BATCHES = 1


# --------------------------------------------------------------------------- the loss


def _layers(spec, theta, X):
    """Per-layer features of ``X`` under ``theta``: ``[X, A, f]`` and what back-propagation
    needs (``W1``, ``w2``, ``D = 1 − A²``)."""
    W1, b1, w2, b2 = spec.unpack(theta, X.shape[1])
    A = np.tanh(X @ W1 + b1)
    return [X, A, (A @ w2 + b2)[:, None]], (W1, w2, 1.0 - A * A)


def _group_means(groups, n_groups, w):
    """``(n_groups, n)`` averaging matrix: row ``c`` holds the weights of group ``c``'s rows,
    normalised to sum to 1 (zeros for a group with no row), and whether each group has rows."""
    P = np.zeros((n_groups, len(groups)))
    P[groups, np.arange(len(groups))] = w
    mass = P.sum(axis=1)
    present = mass > 0
    P[present] /= mass[present, None]
    return P, present


class _RealSide:
    """The real rows' group means per layer and hidden features under one net: everything the
    loss needs from the real data, computed once per (net, batch)."""

    def __init__(self, spec, theta, X, groups, w, n_groups):
        feats, _ = _layers(spec, theta, X)
        P, self.present = _group_means(groups, n_groups, w)
        self.means = [P @ F for F in feats]
        self.hidden = feats[1]
        self.groups = groups
        self.onehot = np.eye(n_groups)[groups]
        self.w = w / w.sum()


def _alignment_loss_grad(spec, theta, Xs, P_syn, real, shares, *, discrimination, grad=True):
    """CAFE loss of the synthetic points ``Xs`` under one net and its gradient w.r.t. ``Xs``.

    ``P_syn`` is the ``(n_groups, size)`` averaging matrix of the synthetic groups (every
    group has points), ``real`` a :class:`_RealSide`, ``shares`` the real group shares.
    Returns ``(loss, dXs)`` (``dXs`` None without ``grad``).
    """
    feats, (W1, w2, D) = _layers(spec, theta, Xs)
    pi = np.where(real.present, shares, 0.0)  # a group absent from the real batch is skipped
    loss, g_means = 0.0, []
    for F, target in zip(feats, real.means):
        diff = P_syn @ F - target
        loss += float(pi @ (diff**2).mean(axis=1))
        g_means.append(2.0 * pi[:, None] * diff / F.shape[1])
    if discrimination:
        centres = P_syn @ feats[1]
        logits = real.hidden @ centres.T
        logits -= logits.max(axis=1, keepdims=True)
        log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        picked = np.take_along_axis(log_p, real.groups[:, None], axis=1)[:, 0]
        loss -= discrimination * float(real.w @ picked)
        # ∂L_d/∂centre_c = Σᵢ wᵢ (p_ic − 1[gᵢ = c]) aᵢ
        g_means[1] = g_means[1] + discrimination * (real.w[:, None] * (np.exp(log_p) - real.onehot)).T @ real.hidden
    if not grad:
        return loss, None
    # Back from the group means to each point (∂μ_c/∂φ_j = P[c, j]), then through the net.
    g_x, g_hidden, g_out = (P_syn.T @ g for g in g_means)
    g_hidden = g_hidden + g_out * w2
    return loss, (g_hidden * D) @ W1.T + g_x


# --------------------------------------------------------------------------- groups


def _groups(y, w, start_labels, *, classify, n_buckets):
    """Group of every real row and of every starting synthetic point, and the group count:
    classes, or buckets of equal real weight along ``y`` whose edges are merged until every
    bucket holds a starting point."""
    if classify:
        present = np.unique(start_labels)
        if len(present) == 1:  # one class among the starting points: a single group
            return np.zeros(len(y), int), np.zeros(len(start_labels), int), 1
        return y.astype(int), start_labels.astype(int), 2
    order = np.argsort(y, kind="stable")
    cum = np.cumsum(w[order])
    edges = list(np.interp(np.arange(1, n_buckets) / n_buckets * cum[-1], cum, y[order]))
    while True:
        syn = np.searchsorted(edges, start_labels, side="right")
        counts = np.bincount(syn, minlength=len(edges) + 1)
        empty = np.flatnonzero(counts == 0)
        if not len(empty):
            break
        # drop the edge between the empty bucket and a neighbour: the two become one
        edges.pop(min(empty[0], len(edges) - 1))
    return np.searchsorted(edges, y, side="right"), syn, len(edges) + 1


# --------------------------------------------------------------------------- the distiller


class CAFE(BaseDistiller):
    """Distil ``(X, y)`` into ``size`` points by aligning the MLP's layer-wise group-mean
    features of synthetic and real data (see the module docstring).

    Parameters (keyword-only)
    -------------------------
    size : int, default 50
    task : {"regression", "classification"}, default "regression"
    hidden : int, default 16
        Hidden units of the MLP whose features are aligned.
    n_nets : int, default 4
        Networks drawn per update (and in the panel of the recorded loss).
    n_inner : int, default 5
        At most this many gradient-descent steps of each drawn net on the synthetic set.
    inner_lr : float, default 0.3
        Step of those runs (standardised units, as gradient matching's MLP runs).
    n_buckets : int, default 4
        Regression: buckets of equal real weight along ``y`` (merged when no synthetic
        point starts in one). Ignored for classification (the classes are the groups).
    discrimination : float, default 0.1
        Weight ``β`` of the discrimination term (0: feature alignment only).
    n_iter : int, default 200
    lr : float, default 0.05
        Adam step size of the points, in standard deviations.
    batch_size : int, default 1024
        Real rows per update (drawn ∝ ``sample_weight``, shared by its nets).
    init : {"kmedoids", "random"}, default "kmedoids"
    lr_schedule : {"cosine", "constant"}, default "cosine"
    tol : float, default 1e-6
    patience : int, default 30
    random_state : int, Generator or None, default 0

    Attributes
    ----------
    X_ : the synthetic points (units of ``X``); ``y_`` their fixed labels (0/1, or the real
    mean target of their bucket); ``weight_`` the real share of their group split equally
    among its points; ``groups_`` the group of each point; ``n_iter_``, ``converged_``,
    ``loss_history_`` (the panel loss before training and after each update).
    """

    def __init__(
        self,
        *,
        size=50,
        task="regression",
        hidden=16,
        n_nets=4,
        n_inner=5,
        inner_lr=0.3,
        n_buckets=4,
        discrimination=0.1,
        n_iter=200,
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
        self.hidden = hidden
        self.n_nets = n_nets
        self.n_inner = n_inner
        self.inner_lr = inner_lr
        self.n_buckets = n_buckets
        self.discrimination = discrimination
        self.n_iter = n_iter
        self.lr = lr
        self.batch_size = batch_size
        self.init = init
        self.lr_schedule = lr_schedule
        self.tol = tol
        self.patience = patience
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        """Learn ``X_``, ``y_`` and ``weight_`` from ``(X, y)``; returns ``self``."""
        task = check_choice("task", self.task, TASKS)
        X, y, w = check_training_data(X, y, sample_weight, size=self.size, task=task)
        size = check_int("size", self.size, 1)
        spec = make_spec("mlp", task, hidden=self.hidden)
        n_iter, lr, batch_size, schedule_kind, tol, patience = optimisation_options(self)
        n_nets = check_int("n_nets", self.n_nets, 1)
        n_inner = check_int("n_inner", self.n_inner, 0)
        inner_lr = check_float("inner_lr", self.inner_lr)
        n_buckets = check_int("n_buckets", self.n_buckets, 1)
        beta = check_float("discrimination", self.discrimination, strict=False)
        rng = np.random.default_rng(self.random_state)
        classify = task == "classification"

        scaler, start = starting_points(self, X, y, w, size, rng)
        real_groups, syn_groups, n_groups = _groups(y, w, start.y_, classify=classify, n_buckets=n_buckets)
        shares = np.bincount(real_groups, weights=w, minlength=n_groups)
        counts = np.bincount(syn_groups, minlength=n_groups)
        P_syn, _ = _group_means(syn_groups, n_groups, np.ones(size))
        if classify:
            labels = start.y_.copy()
        else:  # the bucket's real weighted mean target
            labels = (np.bincount(real_groups, weights=w * y, minlength=n_groups) / shares)[syn_groups]
        # what the inner runs train on: 0/1 labels, or standardised targets
        y_inner = labels if classify else scaler.transform_y(labels)
        w_syn = shares[syn_groups] / counts[syn_groups]
        xs = scaler.transform_x(start.X_)
        d = X.shape[1]

        cdf = np.cumsum(w)
        cdf /= cdf[-1]

        def real_rows(k):
            rows = np.minimum(np.searchsorted(cdf, rng.random(k), side="right"), len(X) - 1)
            return scaler.transform_x(X[rows]), real_groups[rows]

        panel_X, panel_g = real_rows(_PANEL_BATCHES * batch_size)
        panel = [(theta, _RealSide(spec, theta, panel_X, panel_g, np.ones(len(panel_X)), n_groups))
                 for theta in (spec.init_params(rng, d) for _ in range(n_nets))]

        def probe():
            return float(np.mean([_alignment_loss_grad(spec, theta, xs, P_syn, real, shares,
                                                       discrimination=beta, grad=False)[0]
                                  for theta, real in panel]))

        def gradients():
            Xr, gr = real_rows(batch_size)
            total = np.zeros_like(xs)
            for _ in range(n_nets):
                theta = spec.init_params(rng, d)
                for _ in range(int(rng.integers(n_inner + 1))):
                    theta = theta - inner_lr * spec.loss_and_grad(theta, xs, y_inner, w_syn)[1]
                real = _RealSide(spec, theta, Xr, gr, np.ones(len(Xr)), n_groups)
                total += _alignment_loss_grad(spec, theta, xs, P_syn, real, shares, discrimination=beta)[1]
            return [total / n_nets]

        schedule, history = descend([xs], gradients, probe, lr=lr, n_iter=n_iter, schedule_kind=schedule_kind,
                                     tol=tol, patience=patience)
        self.groups_ = syn_groups
        return self._set_result(scaler.inverse_x(xs), labels, w_syn, n_iter=schedule.t,
                                converged=schedule.converged, loss_history=history)
