import time

import numpy as np
import pytest
from scipy.special import expit

from distillbt.distill._losses import make_spec
from distillbt.distill.gradient import GradientMatching, _matching_objective, RealGradient
from distillbt.errors import InputError
from distillbt.models import LogisticRegression, Ridge

# (learner, task) pairs the distiller supports
SPECS = [
    ("linear", "regression"),
    ("logistic", "classification"),
    ("mlp", "regression"),
    ("mlp", "classification"),
]


def _rel_error(analytic, numeric):
    return np.linalg.norm(analytic - numeric) / max(np.linalg.norm(analytic), np.linalg.norm(numeric), 1e-300)


def _central_difference(f, x, h=1e-6):
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        grad[i] = (f(x + e) - f(x - e)) / (2 * h)
    return grad


def _small_problem(task, seed=0, n=9, d=4):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = rng.random(n) if task == "classification" else rng.normal(size=n)  # soft labels
    w = rng.random(n)
    return rng, X, y, w / w.sum()


# ----------------------------------------------------------------- analytic derivatives


@pytest.mark.parametrize("learner, task", SPECS)
def test_parameter_gradient_matches_finite_differences(learner, task):
    rng, X, y, w = _small_problem(task)
    spec = make_spec(learner, task, hidden=3)
    theta = 2.0 * spec.init_params(rng, X.shape[1])
    _, grad = spec.loss_and_grad(theta, X, y, w)
    numeric = _central_difference(lambda t: spec.loss_and_grad(t, X, y, w)[0], theta)
    assert _rel_error(grad, numeric) <= 1e-5


@pytest.mark.parametrize("learner, task", SPECS)
def test_data_vjp_matches_finite_differences(learner, task):
    # d(v·∇θL)/dX and d(v·∇θL)/dy: the mixed second derivative gradient matching relies on
    rng, X, y, w = _small_problem(task, seed=1)
    spec = make_spec(learner, task, hidden=3)
    theta = 2.0 * spec.init_params(rng, X.shape[1])
    v = rng.normal(size=theta.shape)
    dX, dy = spec.data_vjp(theta, X, y, w, v)
    assert _rel_error(dX, _central_difference(lambda Z: v @ spec.loss_and_grad(theta, Z, y, w)[1], X)) <= 1e-5
    assert _rel_error(dy, _central_difference(lambda t: v @ spec.loss_and_grad(theta, X, t, w)[1], y)) <= 1e-5


@pytest.mark.parametrize("learner, task", SPECS)
def test_matching_objective_gradient_matches_finite_differences(learner, task):
    # the whole chain: loss gradient → per-unit cosine distance → VJP → label parametrisation
    rng, X, y, w = _small_problem(task, seed=2)
    spec = make_spec(learner, task, hidden=3)
    theta = spec.init_params(rng, X.shape[1])
    g_real = spec.loss_and_grad(theta, rng.normal(size=(50, X.shape[1])), rng.random(50), np.full(50, 0.02))[1]
    soft = task == "classification"
    labels = rng.normal(size=len(y)) if soft else y  # logits of soft labels for classification

    def distance(Xs, ls):
        return _matching_objective(spec, theta, g_real, Xs, ls, w, soft_labels=soft)[0]

    dist, dX, dlabels, _ = _matching_objective(spec, theta, g_real, X, labels, w, soft_labels=soft)
    assert 0.0 <= dist <= 2.0
    assert _rel_error(dX, _central_difference(lambda Z: distance(Z, labels), X)) <= 1e-5
    assert _rel_error(dlabels, _central_difference(lambda ls: distance(X, ls), labels)) <= 1e-5


def test_real_gradient_estimates_are_exact_for_linear_and_unbiased_for_logistic():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5000, 3))
    w = rng.random(5000)
    w /= w.sum()
    y_reg = X @ [0.5, -0.2, 0.1] + rng.normal(size=5000)
    y_clf = (rng.random(5000) < expit(0.3 * X[:, 0])).astype(float)
    linear = make_spec("linear", "regression")
    theta = linear.init_params(rng, 3)
    estimate = RealGradient(linear, X, y_reg, w, 64, rng)
    np.testing.assert_allclose(estimate(theta), linear.loss_and_grad(theta, X, y_reg, w)[1], rtol=1e-10, atol=1e-12)

    logistic = make_spec("logistic", "classification")
    full = logistic.loss_and_grad(theta, X, y_clf, w)[1]
    estimate = RealGradient(logistic, X, y_clf, w, 64, rng)
    draws = np.array([estimate(theta) for _ in range(2000)])
    standard_error = draws.std(axis=0) / np.sqrt(len(draws))
    assert np.all(np.abs(draws.mean(axis=0) - full) < 4 * standard_error + 1e-12)
    # and its spread is far below that of a plain mini-batch gradient of the same size
    plain = []
    for _ in range(500):
        rows = rng.choice(5000, 64, p=w)
        plain.append(logistic.loss_and_grad(theta, X[rows], y_clf[rows], np.full(64, 1 / 64))[1])
    assert np.all(draws.std(axis=0) < 0.3 * np.std(plain, axis=0))


# ------------------------------------------------------------------------- the distiller


def _weak_signal(seed, n_train=20_000, n_test=20_000, d=20, signal=0.45):
    """Correlated features in mixed units, P(y = 1) = sigmoid(β·z) with a weak β: a full-data
    logistic model scores about 55–58 % (a market, not a textbook)."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d) + np.eye(d)
    X = rng.normal(size=(n_train + n_test, d)) @ mix.T * rng.uniform(0.5, 3.0, d) + rng.normal(size=d)
    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    beta = rng.normal(size=d)
    f = Z @ beta * (signal / np.std(Z @ beta))
    y = (rng.random(len(X)) < expit(f)).astype(float)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def _skill(model, X, y):
    """Test accuracy above the majority-class rate."""
    return (model.predict(X) == y).mean() - max(y.mean(), 1 - y.mean())


def test_fifty_gradient_matching_points_keep_most_of_the_full_data_skill():
    full, gm, rand, seconds = [], [], [], []
    for seed in range(5):
        X, y, X_test, y_test = _weak_signal(seed)
        full.append(_skill(LogisticRegression().fit(X, y), X_test, y_test))
        start = time.perf_counter()
        distilled = GradientMatching(size=50, task="classification", learner="logistic", random_state=seed).fit(X, y)
        seconds.append(time.perf_counter() - start)
        gm.append(_skill(LogisticRegression().fit(distilled.X_, distilled.y_, distilled.weight_), X_test, y_test))
        rows = np.random.default_rng(seed).choice(len(X), 50, replace=False)
        rand.append(_skill(LogisticRegression().fit(X[rows], y[rows]), X_test, y_test))
    full, gm, rand = map(np.array, (full, gm, rand))
    print(
        f"\nskill (accuracy above chance), mean ± std over 5 seeds: full {full.mean():.4f} ± {full.std():.4f}, "
        f"GM-50 {gm.mean():.4f} ± {gm.std():.4f} ({gm.mean() / full.mean():.0%} of full), "
        f"random-50 {rand.mean():.4f} ± {rand.std():.4f}; {np.mean(seconds):.2f} s per fit"
    )
    assert 0.03 < full.mean() < 0.10  # the weak signal the test is about
    assert gm.mean() >= 0.9 * full.mean()
    assert np.all(gm > rand)  # holds on every seed (see the printed numbers)


def test_distilled_linear_set_reproduces_the_weighted_least_squares_fit():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(3000, 5)) * [1.0, 2.0, 0.5, 1.0, 3.0]
    y = X @ [0.3, -0.1, 0.2, 0.0, 0.05] + rng.standard_t(4, 3000)
    w = np.where(np.arange(3000) < 1500, 3.0, 0.0)  # the second half must not count
    y[1500:] += 5.0 * X[1500:, 0]
    distilled = GradientMatching(size=12, learner="linear", random_state=0).fit(X, y, sample_weight=w)
    reference = Ridge(alpha=0.0).fit(X, y, sample_weight=w)
    fitted = Ridge(alpha=0.0).fit(distilled.X_, distilled.y_)
    cosine = fitted.coef_ @ reference.coef_ / np.linalg.norm(fitted.coef_) / np.linalg.norm(reference.coef_)
    assert cosine > 0.99
    np.testing.assert_allclose(fitted.predict(X[:1500]), reference.predict(X[:1500]), atol=0.1 * y.std())


@pytest.mark.parametrize("learner, task", SPECS)
def test_fit_follows_the_protocol_and_reduces_the_matching_distance(learner, task):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(2000, 6)) * 10 + 3  # units far from 1: the distiller standardises
    f = np.tanh(X[:, 0] / 10) + 0.3 * X[:, 1] / 10
    y = (rng.random(2000) < expit(2 * f)).astype(float) if task == "classification" else f + rng.normal(size=2000)
    X_before, y_before = X.copy(), y.copy()
    gm = GradientMatching(size=20, task=task, learner=learner, n_outer=60, hidden=8, random_state=1)
    assert gm.fit(X, y) is gm
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)
    assert gm.X_.shape == (20, 6) and gm.y_.shape == (20,) and gm.X_.dtype == np.float64
    np.testing.assert_allclose(gm.weight_, 1 / 20)
    if task == "classification":
        assert np.all((gm.y_ > 0) & (gm.y_ < 1))
    # the MLP's set is refined refine_rounds times on a growing bank, n_outer iterations each
    rounds = 1 + (gm.refine_rounds if learner == "mlp" else 0)
    assert gm.n_iter_ == len(gm.loss_history_) <= 60 * rounds
    assert isinstance(gm.converged_, bool)
    history = np.array(gm.loss_history_)
    assert history[-10:].mean() < 0.6 * history[:3].mean()
    assert np.abs(gm.X_.mean(axis=0) - X.mean(axis=0)).max() < 0.5 * X.std()  # back in X's units


def test_same_seed_same_set_and_options_change_the_result():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(1000, 4))
    y = (rng.random(1000) < expit(X[:, 0])).astype(float)
    kwargs = dict(size=10, task="classification", learner="logistic", n_outer=20)
    a = GradientMatching(**kwargs, random_state=3).fit(X, y)
    b = GradientMatching(**kwargs, random_state=3).fit(X, y)
    np.testing.assert_array_equal(a.X_, b.X_)
    np.testing.assert_array_equal(a.y_, b.y_)
    assert a.loss_history_ == b.loss_history_
    assert not np.allclose(a.X_, GradientMatching(**kwargs, random_state=4).fit(X, y).X_)
    fixed = GradientMatching(**kwargs, learn_labels=False, init="random", lr_schedule="constant").fit(X, y)
    assert set(np.unique(fixed.y_)) <= {0.0, 1.0}


def test_convergence_check_stops_a_run_that_no_longer_improves():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(500, 3))
    y = X @ [1.0, 0.5, -0.5] + rng.normal(size=500)
    gm = GradientMatching(size=10, learner="linear", n_outer=2000, patience=5, tol=1e-3).fit(X, y)
    assert gm.converged_ and gm.n_iter_ < 2000


def test_a_hundred_thousand_rows_distil_in_seconds():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(100_000, 20))
    y = (rng.random(100_000) < expit(X @ np.full(20, 0.05))).astype(float)
    start = time.perf_counter()
    GradientMatching(size=50, task="classification", learner="logistic", patience=10**6).fit(X, y)
    assert time.perf_counter() - start < 20  # about 1 s on a laptop core


def test_the_default_learner_is_the_linear_model_of_the_task():
    rng = np.random.default_rng(10)
    X = rng.normal(size=(500, 3))
    y = (rng.random(500) < expit(X[:, 0])).astype(float)
    kwargs = dict(size=6, task="classification", n_outer=5, random_state=0)
    default = GradientMatching(**kwargs).fit(X, y)
    np.testing.assert_array_equal(default.X_, GradientMatching(**kwargs, learner="logistic").fit(X, y).X_)


def test_parameters_are_stored_untouched_and_introspectable():
    gm = GradientMatching(size=7, learner="mlp", inner_lr="auto")
    assert gm.get_params()["size"] == 7 and gm.get_params()["inner_lr"] == "auto"
    assert repr(gm).startswith("GradientMatching(size=7, task='regression', learner='mlp'")
    with pytest.raises(TypeError):
        GradientMatching(7)


@pytest.mark.parametrize(
    "options, y, message",
    [
        (dict(learner="logistic"), None, "needs task='classification'"),
        (dict(learner="tree"), None, "unknown learner"),
        (dict(init="herding"), None, "unknown init"),
        (dict(lr_schedule="step"), None, "unknown lr_schedule"),
        (dict(n_outer=0), None, "n_outer"),
        (dict(lr_x=-1.0), None, "lr_x"),
        (dict(inner_lr="fast"), None, "inner_lr"),
        (dict(size=101), None, "size"),
        (dict(task="classification", learner="logistic"), [0.5] * 100, "0 or 1"),
    ],
)
def test_bad_input_raises_input_error(options, y, message):
    rng = np.random.default_rng(9)
    X = rng.normal(size=(100, 3))
    y = rng.normal(size=100) if y is None else np.asarray(y, dtype=float)
    with pytest.raises(InputError, match=message):
        GradientMatching(**{"size": 5, **options}).fit(X, y)


def test_nan_input_raises_input_error():
    X = np.ones((10, 2))
    X[3, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        GradientMatching(size=2).fit(X, np.zeros(10))


# --------------------------------------------------- matching over a bank of real-trajectory θ


def _bank(task, seed=0, n=400, d=4, n_cloud=6):
    from distillbt.distill.gradient import _ParameterBank

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (rng.random(n) < expit(X[:, 0])).astype(float) if task == "classification" else X[:, 0] + rng.normal(size=n)
    w = rng.random(n)
    w /= w.sum()
    spec = make_spec("linear", task)
    penalty = np.append(np.full(d, 1e-3), 0.0)
    return _ParameterBank(spec, X, y, w, rng, penalty=penalty, n_experts=2, n_cloud=n_cloud), X, y, w, spec


@pytest.mark.parametrize("task", ["regression", "classification"])
@pytest.mark.parametrize("distance", ["relative", "cosine"])
def test_bank_objective_gradient_matches_finite_differences(task, distance):
    from distillbt.distill.gradient import _bank_objective

    bank, X, y, w, spec = _bank(task)
    rng = np.random.default_rng(1)
    X_syn = rng.normal(size=(5, X.shape[1]))
    labels = rng.normal(size=5)
    w_syn = np.full(5, 0.2)
    soft = task == "classification"
    _, dX, dy = _bank_objective(bank, X_syn, labels, w_syn, soft=soft, distance=distance)
    fX = lambda Z: _bank_objective(bank, Z, labels, w_syn, soft=soft, distance=distance)[0]
    fy = lambda z: _bank_objective(bank, X_syn, z, w_syn, soft=soft, distance=distance)[0]
    assert _rel_error(dX, _central_difference(fX, X_syn)) < 1e-5
    assert _rel_error(dy, _central_difference(fy, labels)) < 1e-5


def test_bank_holds_the_exact_full_data_gradients_and_the_penalised_solution():
    bank, X, y, w, spec = _bank("classification")
    for theta, target in zip(bank.thetas, bank.targets):
        np.testing.assert_allclose(target, spec.loss_and_grad(theta, X, y, w)[1], rtol=1e-10, atol=1e-14)
    # the path ends at the learner's own full-data fit (same penalty on the mean loss)
    fitted = LogisticRegression(alpha=1e-3, tol=1e-12, max_iter=1000).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(bank.star, np.append(fitted.coef_, fitted.intercept_), atol=1e-6)
    # experts' paths (2 × 9 points) and the cloud (6) follow the solver's path
    assert len(bank.thetas) >= 2 * 9 + 6 + 2


def test_trajectory_matching_reaches_the_linear_limit_for_least_squares():
    """For the squared loss the gradient is affine in θ: matching it exactly everywhere is
    matching the second moments, the exact linear limit."""
    rng = np.random.default_rng(11)
    X = rng.normal(size=(5000, 6)) * [1.0, 2.0, 0.5, 1.0, 3.0, 1.5] + 2.0
    y = X @ rng.normal(size=6) * 0.1 + rng.normal(size=5000)
    gm = GradientMatching(size=14, task="regression", learner="linear", n_outer=2000, tol=0.0, random_state=0).fit(X, y)
    reference = Ridge(alpha=0.0).fit(X, y)
    fitted = Ridge(alpha=0.0).fit(gm.X_, gm.y_, gm.weight_)
    assert np.linalg.norm(fitted.coef_ - reference.coef_) / np.linalg.norm(reference.coef_) < 1e-4


def test_trajectory_matching_keeps_the_full_logistic_direction_on_a_very_weak_signal():
    """A signal as weak as the sample market's (full-data IC ~0.01): 50 matched points give
    the full-data logistic coefficients' direction, a random or k-medoids subset does not."""
    from distillbt.distill.coresets import KMedoids

    rng = np.random.default_rng(12)
    n, d = 40_000, 10
    X = rng.normal(size=(n, d)) @ (np.eye(d) + 0.3 * rng.normal(size=(d, d)))
    y = (rng.random(n) < expit(0.05 * X @ rng.normal(size=d) / np.sqrt(d))).astype(float)
    full = LogisticRegression().fit(X, y).coef_

    def cosine(model):
        return model.coef_ @ full / np.linalg.norm(model.coef_) / np.linalg.norm(full)

    gm, rand, km = [], [], []
    for seed in range(3):
        g = GradientMatching(size=50, task="classification", learner="logistic", random_state=seed).fit(X, y)
        gm.append(cosine(LogisticRegression().fit(g.X_, g.y_, g.weight_)))
        rows = np.random.default_rng(seed).choice(n, 50, replace=False)
        rand.append(cosine(LogisticRegression().fit(X[rows], y[rows])))
        k = KMedoids(size=50, random_state=seed).fit(X, y)
        km.append(cosine(LogisticRegression().fit(k.X_, k.y_, k.weight_)))
    assert min(gm) > 0.99
    assert max(rand) < 0.9 and max(km) < 0.9


def test_trajectory_matching_is_deterministic_per_seed_and_validates_its_options():
    rng = np.random.default_rng(13)
    X = rng.normal(size=(2000, 5))
    y = (rng.random(2000) < expit(X[:, 0] * 0.2)).astype(float)
    kwargs = dict(size=10, task="classification", learner="logistic", n_outer=50)
    a = GradientMatching(**kwargs, random_state=1).fit(X, y)
    b = GradientMatching(**kwargs, random_state=1).fit(X, y)
    np.testing.assert_array_equal(a.X_, b.X_)
    np.testing.assert_array_equal(a.y_, b.y_)
    assert a.loss_history_ == b.loss_history_
    assert not np.array_equal(a.X_, GradientMatching(**kwargs, random_state=2).fit(X, y).X_)
    # the DC variant (θ along runs on the synthetic set, cosine distance) is still there
    dc = GradientMatching(**kwargs, theta_sampling="synthetic", random_state=1).fit(X, y)
    assert dc.X_.shape == (10, 5) and not np.array_equal(dc.X_, a.X_)
    with pytest.raises(InputError, match="path_alphas"):
        GradientMatching(size=5, learner="mlp", path_alphas=()).fit(X, y)
    with pytest.raises(InputError, match="path_steps"):
        GradientMatching(size=5, learner="mlp", path_steps=0).fit(X, y)
    with pytest.raises(InputError, match="relative"):
        GradientMatching(size=5, theta_sampling="synthetic", distance="relative").fit(X, y)
    with pytest.raises(InputError, match="unknown distance"):
        GradientMatching(size=5, distance="l1").fit(X, y)


# ------------------------------------------ the MLP: matching along its own real training paths


def _mlp_bank(task, seed=0, n=300, d=3, hidden=4, n_cloud=3):
    from distillbt.distill.gradient import _MLPBank

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (rng.random(n) < expit(np.tanh(X[:, 0]))).astype(float) if task == "classification" else X[:, 0] + rng.normal(size=n)
    w = rng.random(n)
    w /= w.sum()
    spec = make_spec("mlp", task, hidden=hidden)
    bank = _MLPBank(spec, X, y, w, rng, n_experts=2, n_cloud=n_cloud, steps=20, lr=1e-2, alphas=(1e-3, 1e-1),
                    rows=200, standardise_labels=task == "regression")
    return bank, X, y, w, spec


@pytest.mark.parametrize("task", ["regression", "classification"])
@pytest.mark.parametrize("distance", ["relative", "cosine"])
def test_mlp_bank_objective_gradient_matches_finite_differences(task, distance):
    """The analytic derivative of the MLP matching distance with respect to the synthetic
    points and labels — through the standardisation of the set, the network's parameter
    gradient, its data VJP and the soft labels' sigmoid — against central differences."""
    bank, X, y, w, spec = _mlp_bank(task)
    rng = np.random.default_rng(1)
    P = rng.normal(size=(6, X.shape[1])) * 2 + 1
    labels = rng.normal(size=6)
    w_syn = rng.random(6)
    w_syn /= w_syn.sum()
    soft = task == "classification"
    _, dP, dy = bank.objective(P, labels, w_syn, soft=soft, distance=distance)
    fP = lambda Z: bank.objective(Z, labels, w_syn, soft=soft, distance=distance)[0]
    fy = lambda z: bank.objective(P, z, w_syn, soft=soft, distance=distance)[0]
    assert _rel_error(dP, _central_difference(fP, P)) < 1e-5
    assert _rel_error(dy, _central_difference(fy, labels)) < 1e-5


def test_mlp_bank_holds_exact_full_data_gradients_along_real_training_paths():
    bank, X, y, w, spec = _mlp_bank("classification", n_cloud=3)
    for theta, target in zip(bank.thetas, bank.targets):
        np.testing.assert_allclose(target, spec.loss_and_grad(theta, X, y, w)[1], rtol=1e-10, atol=1e-14)
    # 2 paths × θ at steps 0, 1, 2, 4, 8, 16, 20, then the cloud around their ends
    assert len(bank.thetas) == 2 * 7 + 3
    # a path is a training run: its loss on the data it was run on goes down
    first, last = bank.thetas[0], bank.thetas[6]
    assert spec.loss_and_grad(last, X, y, w)[0] < spec.loss_and_grad(first, X, y, w)[0]


def test_mlp_matched_set_has_the_real_moments_and_trains_an_mlp_like_the_full_data():
    """The MLP standardises its training set with the set's own moments: the matched set is
    returned with the real data's (weighted) mean and standard deviation, so the network sees
    it exactly as it was matched. On a non-linear signal, an MLP trained on 30 matched
    points predicts like the full-data MLP, better than one trained on a random subset."""
    from distillbt.models import MLP

    rng = np.random.default_rng(21)
    n, d = 6000, 3
    X = rng.normal(size=(n, d)) * [2.0, 1.0, 0.5] + 1.0
    f = np.tanh(X[:, 0] - 1.0) - 0.5 * (X[:, 1] - 1.0)
    y = (rng.random(n) < expit(2.0 * f)).astype(float)
    kwargs = dict(task="classification", hidden=8, alpha=1e-2, learning_rate=1e-2, epochs=300)
    test = rng.normal(size=(2000, d)) * [2.0, 1.0, 0.5] + 1.0
    full = MLP(**kwargs, random_state=0).fit(X, y).decision_function(test)
    gm = GradientMatching(size=30, task="classification", learner="mlp", hidden=8, n_experts=3, n_cloud=16,
                          path_steps=100, n_outer=150, random_state=0).fit(X, y)
    np.testing.assert_allclose(gm.X_.mean(axis=0), X.mean(axis=0), atol=1e-9)
    np.testing.assert_allclose(gm.X_.std(axis=0), X.std(axis=0), rtol=1e-9)
    assert gm.loss_history_[-1] < 0.5 * gm.loss_history_[0]
    matched, rand = [], []
    for seed in range(3):
        matched.append(np.corrcoef(MLP(**kwargs, random_state=seed).fit(gm.X_, gm.y_).decision_function(test), full)[0, 1])
        rows = np.random.default_rng(seed).choice(n, 30, replace=False)
        rand.append(np.corrcoef(MLP(**kwargs, random_state=seed).fit(X[rows], y[rows]).decision_function(test), full)[0, 1])
    assert np.mean(matched) > 0.95 and np.mean(matched) > np.mean(rand)
