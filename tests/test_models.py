import numpy as np
import pytest
from scipy.special import expit

from distillbt.errors import InputError
from distillbt.models import MLP, LogisticRegression, Ridge


def _regression(seed=0, n=300, d=5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, d) + rng.normal(size=d)
    y = X @ rng.normal(size=d) + 2.0 + rng.normal(size=n)
    return X, y


def _logistic_objective(theta, X, y, w, alpha):
    """The documented LogisticRegression objective, written out independently."""
    f = X @ theta[:-1] + theta[-1]
    return w @ (np.logaddexp(0.0, f) - y * f) + 0.5 * alpha * theta[:-1] @ theta[:-1]


def _newton_logistic(X, y, w, alpha, iters=50):
    """An independent solver for the same objective (Newton's method)."""
    A = np.column_stack([X, np.ones(len(X))])
    P = np.diag(np.r_[np.full(X.shape[1], alpha), 0.0])
    theta = np.zeros(A.shape[1])
    for _ in range(iters):
        p = expit(A @ theta)
        grad = A.T @ (w * (p - y)) + P @ theta
        hess = (A * (w * p * (1 - p))[:, None]).T @ A + P
        theta -= np.linalg.solve(hess, grad)
    return theta


# ------------------------------------------------------------------------------------- Ridge


def test_ridge_solves_the_normal_equations_with_an_unpenalised_intercept():
    X, y = _regression()
    w = np.random.default_rng(1).uniform(0.1, 2.0, len(y))
    model = Ridge(alpha=0.7).fit(X, y, sample_weight=w)
    wn = w / w.sum()
    A = np.column_stack([X, np.ones(len(X))])
    P = np.diag(np.r_[np.full(X.shape[1], 0.7), 0.0])
    expected = np.linalg.solve(A.T @ (wn[:, None] * A) + P, A.T @ (wn * y))
    np.testing.assert_allclose(model.coef_, expected[:-1], rtol=1e-10, atol=1e-12)
    assert model.intercept_ == pytest.approx(expected[-1], rel=1e-10)
    np.testing.assert_allclose(model.predict(X), A @ expected, rtol=1e-10)


def test_ridge_alpha_zero_is_least_squares():
    X, y = _regression(2)
    model = Ridge(alpha=0.0).fit(X, y)
    expected = np.linalg.lstsq(np.column_stack([X, np.ones(len(X))]), y, rcond=None)[0]
    np.testing.assert_allclose(model.coef_, expected[:-1], rtol=1e-9)
    assert model.intercept_ == pytest.approx(expected[-1], rel=1e-9)
    no_intercept = Ridge(alpha=0.0, fit_intercept=False).fit(X, y)
    np.testing.assert_allclose(no_intercept.coef_, np.linalg.lstsq(X, y, rcond=None)[0], rtol=1e-9)
    assert no_intercept.intercept_ == 0.0


def test_ridge_on_rank_deficient_data_gives_the_minimum_norm_solution():
    X, y = _regression(3, d=3)
    X = np.column_stack([X, X[:, 0]])  # a duplicated column
    model = Ridge(alpha=0.0, fit_intercept=False).fit(X, y)
    np.testing.assert_allclose(model.coef_, np.linalg.pinv(X) @ y, rtol=1e-8)


def test_ridge_weights_equal_replicated_rows():
    X, y = _regression(4, n=60)
    counts = np.random.default_rng(0).integers(1, 4, len(y))
    weighted = Ridge(alpha=0.3).fit(X, y, sample_weight=counts)
    replicated = Ridge(alpha=0.3).fit(np.repeat(X, counts, axis=0), np.repeat(y, counts))
    np.testing.assert_allclose(weighted.coef_, replicated.coef_, rtol=1e-10)
    assert weighted.intercept_ == pytest.approx(replicated.intercept_, rel=1e-10)


# ---------------------------------------------------------------------- LogisticRegression


def test_logistic_soft_labels_recover_the_known_optimum():
    # Two points x = ±1 with soft labels p and 1 − p: the unpenalised optimum is β = logit(p), b = 0.
    p = 0.8
    model = LogisticRegression(alpha=0.0).fit([[1.0], [-1.0]], [p, 1 - p])
    assert model.coef_[0] == pytest.approx(np.log(p / (1 - p)), abs=1e-6)
    assert model.intercept_ == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(model.predict_proba([[1.0], [-1.0]]), [p, 1 - p], atol=1e-6)


def test_logistic_separable_data_is_classified_perfectly_with_a_finite_solution():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(400, 2))
    score = X[:, 0] + 0.5 * X[:, 1]
    X, score = X[np.abs(score) > 0.3], score[np.abs(score) > 0.3]  # a margin around the boundary
    y = (score > 0).astype(float)
    model = LogisticRegression(alpha=1e-3).fit(X, y)
    assert (model.predict(X) == y).all()
    assert np.all(np.isfinite(model.coef_))
    newton = _newton_logistic(X, y, np.full(len(y), 1 / len(y)), 1e-3)
    np.testing.assert_allclose(np.r_[model.coef_, model.intercept_], newton, rtol=1e-5, atol=1e-7)


def test_logistic_matches_an_independent_newton_solver_with_weights():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(500, 4))
    y = (rng.random(500) < expit(X @ [1.0, -2.0, 0.5, 0.0] + 0.3)).astype(float)
    y[:50] = rng.random(50)  # some soft labels
    w = rng.uniform(0.2, 3.0, 500)
    model = LogisticRegression(alpha=1e-3).fit(X, y, sample_weight=w)
    expected = _newton_logistic(X, y, w / w.sum(), 1e-3)
    np.testing.assert_allclose(np.r_[model.coef_, model.intercept_], expected, rtol=1e-5, atol=1e-7)


def test_logistic_optimum_is_stationary_by_finite_differences():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(300, 3))
    y = (rng.random(300) < expit(X @ [0.5, -1.0, 0.2])).astype(float)
    w = np.full(300, 1 / 300)
    model = LogisticRegression(alpha=1e-2).fit(X, y)
    theta, h = np.r_[model.coef_, model.intercept_], 1e-6
    fd = [
        (_logistic_objective(theta + h * e, X, y, w, 1e-2) - _logistic_objective(theta - h * e, X, y, w, 1e-2)) / (2 * h)
        for e in np.eye(4)
    ]
    np.testing.assert_allclose(fd, 0.0, atol=1e-7)


def test_logistic_weights_equal_replicated_rows_and_outputs_are_consistent():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(80, 3))
    y = (rng.random(80) < expit(X[:, 0])).astype(float)
    counts = rng.integers(1, 4, 80)
    weighted = LogisticRegression().fit(X, y, sample_weight=counts)
    replicated = LogisticRegression().fit(np.repeat(X, counts, axis=0), np.repeat(y, counts))
    np.testing.assert_allclose(weighted.coef_, replicated.coef_, rtol=1e-6)
    p = weighted.predict_proba(X)
    assert p.shape == (80,) and ((0 < p) & (p < 1)).all()
    np.testing.assert_array_equal(weighted.predict(X), (p > 0.5).astype(float))
    np.testing.assert_allclose(expit(weighted.decision_function(X)), p)


# -------------------------------------------------------------------------------------- MLP


def _nonlinear(seed, n):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 2))
    return X, np.sin(2 * X[:, 0]) + X[:, 1] ** 2


def test_mlp_learns_a_nonlinear_function():
    X, y = _nonlinear(0, 1000)
    Xt, yt = _nonlinear(1, 1000)
    y = y + 0.1 * np.random.default_rng(2).normal(size=len(y))
    model = MLP(hidden=32, epochs=300, random_state=0).fit(X, y)
    r2 = 1 - np.mean((model.predict(Xt) - yt) ** 2) / np.var(yt)
    linear_r2 = 1 - np.mean((Ridge().fit(X, y).predict(Xt) - yt) ** 2) / np.var(yt)
    assert r2 > 0.95 > 0.1 > linear_r2
    assert model.loss_curve_[-1] < model.loss_curve_[0] / 10
    # mini-batches learn it too
    minibatch = MLP(hidden=32, epochs=40, batch_size=64, random_state=0).fit(X, y)
    assert 1 - np.mean((minibatch.predict(Xt) - yt) ** 2) / np.var(yt) > 0.95


def test_mlp_classification_with_soft_labels():
    X, f = _nonlinear(3, 1000)
    Xt, ft = _nonlinear(4, 1000)
    soft = expit(4 * (f - 1))  # soft labels of a non-linear boundary
    model = MLP(task="classification", epochs=300, random_state=0).fit(X, soft)
    accuracy = (model.predict(Xt) == (ft > 1)).mean()
    linear = (LogisticRegression().fit(X, soft).predict(Xt) == (ft > 1)).mean()
    assert accuracy > 0.93 and accuracy > linear + 0.2
    p = model.predict_proba(Xt)
    assert ((0 < p) & (p < 1)).all() and p.shape == (1000,)


def test_mlp_is_deterministic_per_seed_and_weights_equal_replicated_rows():
    X, y = _nonlinear(5, 100)
    a = MLP(epochs=30, random_state=1).fit(X, y).predict(X)
    b = MLP(epochs=30, random_state=1).fit(X, y).predict(X)
    c = MLP(epochs=30, random_state=2).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    counts = np.random.default_rng(0).integers(1, 4, 100)
    weighted = MLP(epochs=30).fit(X, y, sample_weight=counts).predict(X)
    replicated = MLP(epochs=30).fit(np.repeat(X, counts, axis=0), np.repeat(y, counts)).predict(X)
    np.testing.assert_allclose(weighted, replicated, rtol=1e-8, atol=1e-10)


def test_learners_follow_the_parameter_convention():
    model = MLP(hidden=8, epochs=5)
    assert model.get_params()["hidden"] == 8
    assert repr(Ridge(alpha=2.0)) == "Ridge(alpha=2.0, fit_intercept=True)"
    assert model.set_params(hidden=4).hidden == 4
    X, y = _regression()
    model = Ridge()
    assert model.fit(X, y) is model
    with pytest.raises(TypeError):
        Ridge(1.0)  # keyword-only


@pytest.mark.parametrize(
    "model, X, y, message",
    [
        (Ridge(), [[1.0], [np.nan]], [1.0, 2.0], "NaN"),
        (Ridge(), [[1.0], [2.0]], [1.0], "rows"),
        (Ridge(alpha=-1.0), [[1.0], [2.0]], [1.0, 2.0], "alpha"),
        (LogisticRegression(), [[1.0], [2.0]], [0.0, 2.0], r"\[0, 1\]"),
        (MLP(task="classification"), [[1.0], [2.0]], [0.0, -1.0], r"\[0, 1\]"),
        (MLP(task="ranking"), [[1.0], [2.0]], [0.0, 1.0], "task"),
        (MLP(hidden=0), [[1.0], [2.0]], [0.0, 1.0], "hidden"),
        (MLP(batch_size=0), [[1.0], [2.0]], [0.0, 1.0], "batch_size"),
    ],
)
def test_bad_input_raises_input_error(model, X, y, message):
    with pytest.raises(InputError, match=message):
        model.fit(X, y)


def test_predicting_needs_a_fitted_model_and_matching_features():
    with pytest.raises(InputError, match="not fitted"):
        Ridge().predict([[1.0]])
    X, y = _regression()
    with pytest.raises(InputError, match="shape"):
        Ridge().fit(X, y).predict(X[:, :2])
    with pytest.raises(InputError, match="classification"):
        MLP(epochs=2).fit(X, y).predict_proba(X)
    with pytest.raises(InputError, match="sample_weight"):
        Ridge().fit(X, y, sample_weight=-np.ones(len(y)))
