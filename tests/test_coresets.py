"""Coreset baselines: the protocol of distill/base.py, selection quality and scale."""

import tracemalloc

import numpy as np
import pytest

from distillbt.distill.coresets import FullData, Herding, KMedoids, RandomSubset
from distillbt.errors import InputError


def _data(n=3000, d=4, seed=0):
    """Three clusters of unequal size and spread, a target depending on x."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, size=(3, d))
    which = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    X = centres[which] + rng.normal(0, 1, size=(n, d)) * np.array([1.0, 0.5, 2.0])[which, None]
    y = np.sin(X[:, 0]) + 0.1 * rng.standard_normal(n)
    return X, y


def _standardise(X, y, w=None):
    w = np.full(len(X), 1 / len(X)) if w is None else w / w.sum()
    Z = np.column_stack([X, y])
    mean = w @ Z
    std = np.sqrt(w @ (Z - mean) ** 2)
    return lambda A, b: (np.column_stack([A, b]) - mean) / std


def _coverage(X, y, X_sel, y_sel):
    """Mean distance from each real point to the nearest selected point (standardised)."""
    f = _standardise(X, y)
    Z, C = f(X, y), f(X_sel, y_sel)
    d2 = (Z**2).sum(1)[:, None] + (C**2).sum(1)[None, :] - 2 * Z @ C.T
    return float(np.sqrt(np.maximum(d2.min(1), 0)).mean())


SELECTORS = {
    "random": lambda **kw: RandomSubset(size=30, **kw),
    "random-stratified": lambda **kw: RandomSubset(size=30, stratify=True, **kw),
    "kmedoids": lambda **kw: KMedoids(size=30, **kw),
    "herding-rbf": lambda **kw: Herding(size=30, **kw),
    "herding-linear": lambda **kw: Herding(size=30, kernel="linear", **kw),
}


@pytest.mark.parametrize("name", SELECTORS)
def test_selectors_follow_the_protocol(name):
    X, y = _data()
    X0, y0 = X.copy(), y.copy()
    est = SELECTORS[name]().fit(X, y)
    assert est.X_.shape == (30, 4) and est.y_.shape == (30,) and est.weight_.shape == (30,)
    assert est.X_.dtype == np.float64 and est.y_.dtype == np.float64
    assert np.all(est.weight_ >= 0) and est.weight_.sum() == pytest.approx(1.0, abs=1e-12)
    # Real rows, distinct, and X_/y_ are those rows.
    assert len(np.unique(est.indices_)) == 30
    np.testing.assert_array_equal(est.X_, X[est.indices_])
    np.testing.assert_array_equal(est.y_, y[est.indices_])
    assert isinstance(est.n_iter_, int) and isinstance(est.converged_, bool)
    assert all(isinstance(v, float) for v in est.loss_history_)
    # fit never changes its inputs
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


@pytest.mark.parametrize("name", SELECTORS)
def test_selectors_are_deterministic_per_seed(name):
    X, y = _data()
    a = SELECTORS[name](random_state=3).fit(X, y)
    b = SELECTORS[name](random_state=3).fit(X, y)
    np.testing.assert_array_equal(a.indices_, b.indices_)
    np.testing.assert_array_equal(a.weight_, b.weight_)
    if name != "herding-linear":  # linear herding has no randomness at all
        c = SELECTORS[name](random_state=4).fit(X, y)
        assert not np.array_equal(a.indices_, c.indices_)


def test_params_repr_and_set_params():
    est = KMedoids(size=5)
    assert est.get_params() == {"size": 5, "max_iter": 20, "subsample": 5000, "random_state": 0}
    assert repr(est) == "KMedoids(size=5, max_iter=20, subsample=5000, random_state=0)"
    assert est.set_params(size=7).size == 7
    with pytest.raises(InputError):
        est.set_params(n_clusters=3)


def test_random_subset_respects_sample_weight():
    X, y = _data(n=2000)
    w = np.zeros(len(X))
    w[:500] = 1.0
    est = RandomSubset(size=100).fit(X, y, w)
    assert est.indices_.max() < 500
    # Probabilities, not a filter: rows with 9x the weight are drawn far more often.
    w = np.ones(len(X))
    w[:200] = 9.0
    draws = [RandomSubset(size=20, random_state=s).fit(X, y, w).indices_ for s in range(50)]
    hits = np.mean([np.mean(idx < 200) for idx in draws])
    assert 0.40 < hits < 0.60  # 1800 of 3600 units of weight: about half


def test_stratified_subset_allocates_classes_in_proportion():
    X, _ = _data(n=2000)
    y = np.zeros(len(X))
    y[:300] = 1.0  # 15 %
    for seed in range(10):
        est = RandomSubset(size=40, stratify=True, random_state=seed).fit(X, y)
        assert est.y_.sum() == 6  # exactly 15 % of 40, every draw
    # Regression targets: bins of equal weight along y, one draw per bin here.
    Xr, yr = _data(n=2000)
    est = RandomSubset(size=10, stratify=True).fit(Xr, yr)
    deciles = np.quantile(yr, np.linspace(0, 1, 11))
    assert np.all(np.histogram(est.y_, deciles)[0] == 1)


def test_kmedoids_covers_better_than_random():
    X, y = _data()
    km = KMedoids(size=30).fit(X, y)
    subsets = [RandomSubset(size=30, random_state=s).fit(X, y) for s in range(5)]
    random = np.mean([_coverage(X, y, r.X_, r.y_) for r in subsets])
    assert _coverage(X, y, km.X_, km.y_) < 0.9 * random
    # The alternate iteration never makes the objective worse.
    assert all(b <= a + 1e-12 for a, b in zip(km.loss_history_, km.loss_history_[1:]))
    assert len(km.loss_history_) == km.n_iter_ + 1


def test_kmedoids_weights_are_the_share_of_nearest_points():
    X, y = _data(n=1500)
    w = np.random.default_rng(1).uniform(0, 1, len(X))
    km = KMedoids(size=10).fit(X, y, w)
    f = _standardise(X, y, w)
    Z, C = f(X, y), f(km.X_, km.y_)
    nearest = np.argmin(((Z[:, None, :] - C[None, :, :]) ** 2).sum(-1), axis=1)
    expected = np.bincount(nearest, weights=w, minlength=10) / w.sum()
    np.testing.assert_allclose(km.weight_, expected, atol=1e-12)


def test_kmedoids_subsample_still_weights_over_all_rows():
    X, y = _data(n=20_000)
    km = KMedoids(size=15, subsample=1000).fit(X, y)
    # Each weight is a share of all 20k rows (a multiple of 1/20000), not of the subsample.
    counts = km.weight_ * 20_000
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-6)
    assert km.weight_.min() > 0


def _mmd2_rbf(A, B, gamma):
    def k(P, Q):
        d2 = (P**2).sum(1)[:, None] + (Q**2).sum(1)[None, :] - 2 * P @ Q.T
        return np.exp(-gamma * np.maximum(d2, 0))

    return k(A, A).mean() + k(B, B).mean() - 2 * k(A, B).mean()


def test_herding_matches_the_mean_embedding_better_than_random():
    X, y = _data(n=2000)
    f = _standardise(X, y)
    Z = f(X, y)
    herd = Herding(size=30, n_features=1024).fit(X, y)
    mmd_herd = _mmd2_rbf(Z, f(herd.X_, herd.y_), herd.gamma_)
    subsets = [RandomSubset(size=30, random_state=s).fit(X, y) for s in range(5)]
    mmd_rand = np.mean([_mmd2_rbf(Z, f(r.X_, r.y_), herd.gamma_) for r in subsets])
    assert mmd_herd < 0.5 * mmd_rand
    # Linear kernel: the mean of (x, y) itself.
    lin = Herding(size=30, kernel="linear").fit(X, y)
    err_lin = np.linalg.norm(f(lin.X_, lin.y_).mean(0) - Z.mean(0))
    err_rand = np.mean([np.linalg.norm(f(r.X_, r.y_).mean(0) - Z.mean(0)) for r in subsets])
    assert err_lin < 0.2 * err_rand
    # The running MMD it reports shrinks as points are added.
    assert herd.n_iter_ == 30 and len(herd.loss_history_) == 31
    assert herd.loss_history_[-1] < 0.05 * herd.loss_history_[0]


def test_full_data_is_the_weighted_training_set():
    X, y = _data(n=500)
    w = np.arange(1, 501, dtype=float)
    full = FullData().fit(X, y, w)
    np.testing.assert_array_equal(full.X_, X)
    np.testing.assert_array_equal(full.indices_, np.arange(500))
    np.testing.assert_allclose(full.weight_, w / w.sum())
    assert full.n_iter_ == 0 and full.converged_ and full.loss_history_ == []
    full.X_[0, 0] = 1e9  # a copy, not a view of the caller's array
    assert X[0, 0] != 1e9


def test_large_n_runs_without_quadratic_memory():
    rng = np.random.default_rng(0)
    n, d = 200_000, 10
    X = rng.standard_normal((n, d))
    y = X[:, 0] + rng.standard_normal(n)
    data_mb = X.nbytes / 1e6  # 16 MB; an n × n float64 matrix would be 320 GB
    selectors = (
        RandomSubset(size=20),
        KMedoids(size=20),
        Herding(size=20, n_features=64),
        Herding(size=20, kernel="linear"),
    )
    for est in selectors:
        tracemalloc.start()
        est.fit(X, y)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert est.X_.shape == (20, d)
        assert peak / 1e6 < 8 * data_mb + 120, (type(est).__name__, peak / 1e6)


@pytest.mark.parametrize("make", [RandomSubset, KMedoids, Herding])
def test_bad_input_raises_input_error(make):
    X, y = _data(n=50)
    with pytest.raises(InputError, match="size 51"):
        make(size=51).fit(X, y)
    with pytest.raises(InputError, match="size 0"):
        make(size=0).fit(X, y)
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        make(size=5).fit(Xn, y)
    with pytest.raises(InputError, match="rows"):
        make(size=5).fit(X, y[:-1])
    w = np.zeros(50)
    w[:3] = 1.0
    with pytest.raises(InputError, match="non-zero weight"):
        make(size=5).fit(X, y, w)
    with pytest.raises(InputError, match="integer"):
        make(size=2.5).fit(X, y)
    with pytest.raises(InputError):
        FullData().fit(X, y, -np.ones(50))


def test_bad_options_raise_input_error():
    X, y = _data(n=50)
    with pytest.raises(InputError, match="kernel"):
        Herding(size=5, kernel="poly").fit(X, y)
    with pytest.raises(InputError, match="subsample"):
        KMedoids(size=10, subsample=5).fit(X, y)
    with pytest.raises(InputError, match="gamma"):
        Herding(size=5, gamma=-1.0).fit(X, y)
