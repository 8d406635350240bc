"""ExactLinear (the exact linear limit), KIP and distribution matching."""

import math

import numpy as np
import pytest

from distillbt.distill.coresets import KMedoids, RandomSubset
from distillbt.distill.distribution import DistributionMatching, _dm_loss_grad
from distillbt.distill.kernel import (
    ExactLinear,
    KernelRidgeDistiller,
    _kip_loss_grad,
    ridge_solution,
)
from distillbt.errors import InputError

# --------------------------------------------------------------------------- helpers


def _regression(n=4000, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = 0.8 * X[:, 0] - 0.5 * X[:, 1] + 0.6 * np.tanh(2 * X[:, 2]) + 0.3 * rng.standard_normal(n)
    return X, y


def _normal_equations(X, y, sample_weight, lam):
    """Ridge with an unpenalised intercept straight from the (augmented, uncentred) normal
    equations: an implementation independent of kernel.ridge_solution.

    Minimises Σ s_i (y_i − θ₀ − x_iᵀθ)² + lam ||θ||² for the raw weights s (as given).
    """
    Xa = np.column_stack([np.ones(len(X)), X])
    P = np.eye(Xa.shape[1])
    P[0, 0] = 0.0
    G = Xa.T @ (sample_weight[:, None] * Xa)
    return np.linalg.solve(G + lam * P, Xa.T @ (sample_weight * y))


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _central_difference(f, x, h=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        up = f()
        x[i] = old - h
        down = f()
        x[i] = old
        g[i] = (up - down) / (2 * h)
    return g


# --------------------------------------------------------------------------- ExactLinear


@pytest.mark.parametrize("d", [3, 20])
@pytest.mark.parametrize("weighted", [False, True])
def test_exact_linear_reproduces_least_squares_and_every_ridge(d, weighted):
    rng = np.random.default_rng(d)
    n = 3000
    # Features with non-zero means, unequal scales and some correlation.
    mix = np.eye(d) + 0.3 * rng.standard_normal((d, d))
    X = rng.standard_normal((n, d)) @ mix * rng.uniform(0.5, 3, d) + rng.uniform(-5, 5, d)
    y = X @ rng.standard_normal(d) + 2.0 + rng.standard_normal(n)
    s = rng.uniform(0, 3, n) if weighted else np.ones(n)
    w = s / s.sum()

    el = ExactLinear().fit(X, y, s if weighted else None)
    assert el.X_.shape == (d + 1, d) and el.y_.shape == (d + 1,)
    np.testing.assert_allclose(el.weight_, 1.0 / (d + 1))
    assert el.n_iter_ == 0 and el.converged_ and el.loss_history_ == []
    assert el.check_error_ < 1e-9

    worst = 0.0
    for lam in (0.0, 1e-4, 1e-2, 1.0, 100.0):
        full = _normal_equations(X, y, w, lam)  # the convention: weights sum to 1
        ours = _normal_equations(el.X_, el.y_, el.weight_, lam)
        worst = max(worst, _rel(ours, full))
        # The library's solver agrees with the independent one.
        assert _rel(np.append(*ridge_solution(el.X_, el.y_, el.weight_, lam)), full) < 1e-8
    assert worst <= 1e-6, worst

    # A weighted-sum library (sklearn's Ridge(alpha)) on N rows equals alpha on N · weight_.
    alpha = 5.0
    full = _normal_equations(X, y, s, alpha)
    ours = _normal_equations(el.X_, el.y_, s.sum() * el.weight_, alpha)
    assert _rel(ours, full) <= 1e-6


def test_exact_linear_matches_the_moments():
    X, y = _regression(n=500, d=4)
    el = ExactLinear().fit(X, y)
    Xa, Sa = np.column_stack([np.ones(500), X]), np.column_stack([np.ones(5), el.X_])
    np.testing.assert_allclose(Sa.T @ Sa / 5, Xa.T @ Xa / 500, atol=1e-12)
    np.testing.assert_allclose(Sa.T @ el.y_ / 5, Xa.T @ y / 500, atol=1e-12)


def test_exact_linear_handles_collinear_features_and_validates_size():
    X, y = _regression(n=300, d=3)
    X = np.column_stack([X, X[:, 0] + X[:, 1], np.full(300, 7.0)])  # singular covariance
    el = ExactLinear(size=6).fit(X, y)
    for lam in (0.0, 0.1):
        ours = np.append(*ridge_solution(el.X_, el.y_, el.weight_, lam))
        assert _rel(ours, np.append(*ridge_solution(X, y, np.ones(300), lam))) < 1e-8
    with pytest.raises(InputError, match="at least n_features \\+ 1 = 6"):
        ExactLinear(size=5).fit(X, y)
    with pytest.raises(InputError, match="NaN"):
        ExactLinear().fit(np.full((5, 2), np.nan), np.zeros(5))
    with pytest.raises(InputError, match="n_features \\+ 1 = 6 points"):
        ExactLinear(task="classification", size=7).fit(X, (y > 0).astype(float))


def test_exact_linear_classification_is_the_linear_probability_limit():
    from distillbt.models import LogisticRegression

    rng = np.random.default_rng(3)
    X = rng.normal(size=(20_000, 6))
    beta = np.array([0.08, -0.05, 0.03, 0.0, 0.0, 0.02])  # weak, market-like signal
    labels = (X @ beta + rng.logistic(size=len(X)) > 0).astype(float)
    el = ExactLinear(task="classification").fit(X, labels)
    assert el.X_.shape == (7, 6) and 0.0 <= el.y_.min() and el.y_.max() <= 1.0
    # Least squares on the soft labels is exactly least squares on the 0/1 labels...
    ours = np.append(*ridge_solution(el.X_, el.y_, el.weight_, 0.0))
    assert _rel(ours, np.append(*ridge_solution(X, labels, np.ones(len(X)), 0.0))) < 1e-8
    # ...and logistic regression on them points the same way as on the full data.
    full = LogisticRegression(alpha=1e-4).fit(X, labels).coef_
    small = LogisticRegression(alpha=1e-4).fit(el.X_, el.y_, sample_weight=el.weight_).coef_
    assert full @ small / np.linalg.norm(full) / np.linalg.norm(small) > 0.999
    strong = (X @ (50 * beta) > 0).astype(float)
    with pytest.raises(InputError, match="outside \\[0, 1\\]"):
        ExactLinear(task="classification").fit(X, strong)


@pytest.mark.parametrize("size", [None, 7, 40])
def test_exact_linear_points_stay_near_the_data_and_larger_sizes_are_exact(size):
    X, y = _regression(n=2000, d=6)
    X = X * np.arange(1, 7) + 10.0
    el = ExactLinear(size=size).fit(X, y)
    M = 7 if size is None else size
    assert el.X_.shape == (M, 6)
    for lam in (0.0, 1.0):
        ours = _normal_equations(el.X_, el.y_, el.weight_, lam)
        assert _rel(ours, _normal_equations(X, y, np.full(2000, 1 / 2000), lam)) <= 1e-6
    # Within √2 standard deviations of the mean along every principal direction.
    lam_, V = np.linalg.eigh(np.cov(X.T, bias=True))
    assert np.abs((el.X_ - X.mean(0)) @ V / np.sqrt(lam_)).max() <= np.sqrt(2) + 1e-9
    if M >= 8:  # room for the residual spread: the variance of y matches too
        assert el.y_.var() == pytest.approx(y.var(), rel=1e-10)


def test_exact_linear_warns_on_ill_conditioned_features():
    # Two features equal up to 1e-7: cond(Cov) ~ 1e14, so least squares itself is ill-posed
    # and no construction can promise 1e-6; the self-check must say so.
    rng = np.random.default_rng(0)
    base = rng.standard_normal(200)
    X = np.column_stack([base, base + 1e-7 * rng.standard_normal(200)])
    with pytest.warns(RuntimeWarning, match="ill-conditioned"):
        el = ExactLinear().fit(X, base + rng.standard_normal(200))
    assert el.check_error_ > 1e-6
    assert ExactLinear(ridge_check=False).fit(X, base).check_error_ is None


# --------------------------------------------------------------------------- KIP


@pytest.mark.parametrize("kind", ["rbf", "linear"])
def test_kip_gradients_match_finite_differences(kind):
    rng = np.random.default_rng(1)
    M, B, d = 7, 40, 4
    Xs, ys = rng.standard_normal((M, d)), rng.standard_normal(M)
    Xb, yb = rng.standard_normal((B, d)), rng.standard_normal(B)
    wb = rng.uniform(0.2, 1, B)
    wb /= wb.sum()
    args = (Xb, yb, wb, kind, 0.3, 1e-2)
    _, gx, gy = _kip_loss_grad(Xs, ys, *args)
    fd_x = _central_difference(lambda: _kip_loss_grad(Xs, ys, *args)[0], Xs)
    fd_y = _central_difference(lambda: _kip_loss_grad(Xs, ys, *args)[0], ys)
    assert _rel(gx, fd_x) <= 1e-5
    assert _rel(gy, fd_y) <= 1e-5


@pytest.mark.parametrize("kind", ["rbf", "linear"])
def test_kip_reduces_its_loss_and_predicts_better_than_its_start(kind):
    X, y = _regression(n=6000)
    Xt, yt = _regression(n=3000, seed=9)
    kip = KernelRidgeDistiller(size=20, kernel=kind, n_iter=150, lr=0.02).fit(X, y)
    start = KernelRidgeDistiller(size=20, kernel=kind, n_iter=0).fit(X, y)
    assert len(kip.loss_history_) == kip.n_iter_ + 1
    assert kip.loss_history_[-1] < 0.8 * kip.loss_history_[0]
    assert start.loss_history_[0] == kip.loss_history_[0]
    mse = lambda est: np.mean((est.predict(Xt) - yt) ** 2)  # noqa: E731
    assert mse(kip) < 0.8 * mse(start)
    # n_iter=0 is the initial random subset itself.
    rs = RandomSubset(size=20, random_state=0).fit(X, y)
    np.testing.assert_allclose(start.X_, rs.X_, atol=1e-12)


def test_kip_is_deterministic_and_labels_stay_in_unit_interval():
    X, y = _regression(n=3000)
    yc = (y > 0).astype(float)
    kw = dict(size=15, task="classification", n_iter=60, lr=0.05)
    a = KernelRidgeDistiller(**kw, random_state=2).fit(X, yc)
    b = KernelRidgeDistiller(**kw, random_state=2).fit(X, yc)
    np.testing.assert_array_equal(a.X_, b.X_)
    np.testing.assert_array_equal(a.y_, b.y_)
    assert np.all((a.y_ >= 0) & (a.y_ <= 1))
    assert len(np.unique(np.round(a.y_, 6))) > 2  # soft labels were learned
    c = KernelRidgeDistiller(**kw, random_state=3).fit(X, yc)
    assert not np.array_equal(a.X_, c.X_)
    fixed = KernelRidgeDistiller(**{**kw, "n_iter": 20}, learn_labels=False).fit(X, yc)
    assert set(np.unique(fixed.y_)) <= {0.0, 1.0}


def test_kip_full_batch_on_small_data_is_smooth_and_stops_on_a_plateau():
    X, y = _regression(n=300, d=3)
    kip = KernelRidgeDistiller(size=10, n_iter=2000, lr=0.05, patience=10, tol=1e-4).fit(X, y)
    assert kip.converged_ and kip.n_iter_ < 2000
    assert kip.loss_history_[-1] < kip.loss_history_[0]


def test_kip_bad_input():
    X, y = _regression(n=100)
    with pytest.raises(InputError, match="0 or 1"):
        KernelRidgeDistiller(size=5, task="classification").fit(X, y)
    with pytest.raises(InputError, match="task"):
        KernelRidgeDistiller(size=5, task="ranking").fit(X, y)
    with pytest.raises(InputError, match="reg"):
        KernelRidgeDistiller(size=5, reg=0.0).fit(X, y)
    with pytest.raises(InputError, match="size 101"):
        KernelRidgeDistiller(size=101).fit(X, y)
    with pytest.raises(InputError, match="not fitted"):
        KernelRidgeDistiller().predict(X)


# --------------------------------------------------------------------------- distribution matching


def test_dm_gradient_matches_finite_differences():
    rng = np.random.default_rng(2)
    K, r, dim, width, M = 4, 6, 5, 16, 5
    Zs = rng.standard_normal((M, dim))
    Zr = rng.standard_normal((K, r, dim))
    W = rng.standard_normal((dim, K * width)) / math.sqrt(dim)
    b = rng.standard_normal(K * width)
    loss, grad, noise = _dm_loss_grad(Zs, Zr, W, b)
    fd = _central_difference(lambda: _dm_loss_grad(Zs, Zr, W, b)[0], Zs)
    assert _rel(grad, fd) <= 1e-5
    # The loss is the per-map squared distance of mean embeddings, averaged over maps.
    per_map = []
    for k in range(K):
        Wk, bk = W[:, k * width : (k + 1) * width], b[k * width : (k + 1) * width]
        real = np.maximum(Zr[k] @ Wk + bk, 0).mean(0)
        synthetic = np.maximum(Zs @ Wk + bk, 0).mean(0)
        per_map.append(np.sum((real - synthetic) ** 2))
    direct = np.mean(per_map)
    assert loss == pytest.approx(direct, rel=1e-12)
    assert noise > 0


def _mmd_random_relu(X, y, X_s, y_s, seed=123, width=2048):
    """An independent check: squared distance of mean embeddings under fixed random ReLU
    features, on the whole real set, in the standardised joint space."""
    Z = np.column_stack([X, y])
    mean, std = Z.mean(0), Z.std(0)
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((Z.shape[1], width)) / math.sqrt(Z.shape[1])
    b = rng.standard_normal(width)
    emb = lambda A: np.maximum((A - mean) / std @ W + b, 0).mean(0)  # noqa: E731
    return float(np.sum((emb(Z) - emb(np.column_stack([X_s, y_s]))) ** 2))


def test_dm_reduces_its_loss_and_beats_its_start():
    X, y = _regression(n=8000)
    dm = DistributionMatching(size=20, n_iter=200, n_maps=16).fit(X, y)
    start = DistributionMatching(size=20, n_iter=0).fit(X, y)
    assert len(dm.loss_history_) == dm.n_iter_ + 1 and start.n_iter_ == 0
    assert dm.loss_history_[-1] < 0.5 * dm.loss_history_[0]
    assert _mmd_random_relu(X, y, dm.X_, dm.y_) < 0.5 * _mmd_random_relu(X, y, start.X_, start.y_)
    # n_iter=0 returns the k-medoids initialisation itself.
    km = KMedoids(size=20, random_state=0).fit(X, y)
    np.testing.assert_allclose(start.X_, km.X_, atol=1e-12)


def test_dm_is_deterministic_and_classification_labels_stay_in_unit_interval():
    X, y = _regression(n=3000)
    yc = (y > 0.5).astype(float)
    kw = dict(size=15, task="classification", n_iter=60, n_maps=8)
    a = DistributionMatching(**kw, random_state=5).fit(X, yc)
    b = DistributionMatching(**kw, random_state=5).fit(X, yc)
    np.testing.assert_array_equal(a.X_, b.X_)
    np.testing.assert_array_equal(a.y_, b.y_)
    assert np.all((a.y_ >= 0) & (a.y_ <= 1))
    c = DistributionMatching(**kw, random_state=6).fit(X, yc)
    assert not np.array_equal(a.X_, c.X_)


def test_dm_follows_sample_weight():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-3, 1, (2000, 2)), rng.normal(3, 1, (2000, 2))])
    y = np.concatenate([np.zeros(2000), np.ones(2000)]) + 0.1 * rng.standard_normal(4000)
    w = np.r_[np.ones(2000), np.zeros(2000)]  # only the left cluster counts
    dm = DistributionMatching(size=10, n_iter=100, n_maps=8, init="random").fit(X, y, w)
    assert np.all(dm.X_[:, 0] < 0)
    assert abs(dm.y_.mean()) < 0.3


def test_dm_stops_on_a_plateau_with_a_short_annealing():
    X, y = _regression(n=2000, d=3)
    dm = DistributionMatching(size=10, n_iter=3000, n_maps=8, patience=10, tol=1e-3).fit(X, y)
    assert dm.converged_ and dm.n_iter_ < 3000
    assert len(dm.loss_history_) == dm.n_iter_ + 1


def test_dm_bad_input():
    X, y = _regression(n=100)
    with pytest.raises(InputError, match="0 or 1"):
        DistributionMatching(size=5, task="classification").fit(X, y)
    with pytest.raises(InputError, match="init"):
        DistributionMatching(size=5, init="pca").fit(X, y)
    with pytest.raises(InputError, match="lr"):
        DistributionMatching(size=5, lr=-1).fit(X, y)
    with pytest.raises(InputError, match="size 500"):
        DistributionMatching(size=500).fit(X, y)
    X[0, 0] = np.inf
    with pytest.raises(InputError, match="NaN or inf"):
        DistributionMatching(size=5).fit(X, y)
