"""scikit-learn estimators on distilled points: hard labels, weights, penalties, the set each
estimator gets, and the errors a bad estimator gives."""

import sys
import textwrap

import numpy as np
import pytest
from sklearn.ensemble import BaggingClassifier, RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from distillbt.cli import main
from distillbt.data.sample import sample_market
from distillbt.discovery import StrategyError
from distillbt.distilled_sets import default_size
from distillbt.distill.prepare import prepare
from distillbt.distill.runner import distill
from distillbt.errors import InputError
from distillbt.estimators import estimator_traits, fit_estimator
from distillbt.screen import screen
from distillbt.strategy import ModelStrategy

FEATURES = ("ret_1", "ret_4", "ret_16", "ma_dist_16", "ma_dist_64", "vol_ratio_16_96")


@pytest.fixture(scope="module")
def data():
    return prepare(sample_market(bars=20_000, seed=3))


def _rows(data, task, names=FEATURES):
    cols = [data.feature_names.index(n) for n in names]
    train = data.parts["train"]
    return data.X[train][:, cols], data.y(task)


def _strategy(estimator, target="return", horizon=1):
    class Fitted(ModelStrategy):
        features = FEATURES

        def make_estimator(self):
            return estimator()

    Fitted.target, Fitted.horizon = target, horizon
    return Fitted


def test_traits_read_the_estimator_and_its_pipeline():
    logit = estimator_traits(LogisticRegression())
    assert (logit.family, logit.classifier, logit.weight_keys, logit.sum_loss) == ("linear", True, ("sample_weight",), True)
    assert estimator_traits(SGDClassifier()).sum_loss is False  # its loss is a mean
    forest = estimator_traits(RandomForestClassifier())
    assert forest.family == "agnostic" and forest.classifier
    assert estimator_traits(KNeighborsClassifier()).weight_keys == ()
    pipe = estimator_traits(make_pipeline(StandardScaler(), LogisticRegression()))
    assert pipe.family == "linear" and pipe.classifier
    assert pipe.weight_keys == ("standardscaler__sample_weight", "logisticregression__sample_weight")
    # a non-affine step makes a linear model non-linear in the features
    assert estimator_traits(make_pipeline(PolynomialFeatures(2), Ridge())).family == "agnostic"
    # a robust loss is not fitted by the moments exact-linear points reproduce
    from sklearn.linear_model import HuberRegressor
    assert estimator_traits(HuberRegressor()).family == "agnostic"


def test_gaussian_class_models_on_class_moment_points_equal_their_fit_on_the_rows(tmp_path):
    """Discriminant analysis and Gaussian naive Bayes see rows only through class shares,
    means and covariances: fitted on d + 1 points per class with those (weights, or the
    points repeated in proportion to them), they equal their fit on the training rows."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis, QuadraticDiscriminantAnalysis
    from sklearn.naive_bayes import GaussianNB

    from distillbt.discovery import discover
    from distillbt.distilled_sets import needs_of

    data = prepare(sample_market(bars=30_000, seed=3), horizon=4)
    train, later = data.parts["train"], data.parts["validation"]
    points = distill(data, method="class-moments", task="classification", per_regime=False)
    assert len(points.X) == 2 * (data.X.shape[1] + 1) and set(points.y) == {0.0, 1.0}
    for make in (QuadraticDiscriminantAnalysis, lambda: QuadraticDiscriminantAnalysis(reg_param=0.3),
                 LinearDiscriminantAnalysis, GaussianNB, lambda: make_pipeline(StandardScaler(),
                                                                             LinearDiscriminantAnalysis())):
        assert estimator_traits(make()).family == "moments"
        full = make().fit(data.X[train], data.direction[train]).predict_proba(data.X[later])[:, 1]
        model, notes = fit_estimator(make(), points.X, points.y, points.weight, n_rows=points.meta["n_rows"],
                                     task="classification")
        ours = model.predict_proba(data.X[later])[:, 1]
        np.testing.assert_allclose(ours, full, atol=1e-4)  # the class shares rounded to 1/20,000 at most
        assert ("repeated" in " ".join(notes)) == (make is not GaussianNB)  # GaussianNB takes weights
    # Ledoit-Wolf shrinkage also reads the number of rows: close, not equal
    shrunk = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
    full = shrunk.fit(data.X[train], data.direction[train]).predict_proba(data.X[later])[:, 1]
    model, _ = fit_estimator(LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"), points.X, points.y,
                             points.weight, n_rows=points.meta["n_rows"], task="classification")
    np.testing.assert_allclose(model.predict_proba(data.X[later])[:, 1], full, atol=0.01)
    # a pooled method: per_regime is ignored, and the set says so
    assert distill(data, method="class-moments", task="classification", per_regime=True).meta["per_regime"] is False
    # the screen picks them for direction targets; with a return target they are agnostic
    (tmp_path / "qda.py").write_text(textwrap.dedent('''
        from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis
        from distillbt.strategy import ModelStrategy

        class QDADirection(ModelStrategy):
            features, target, horizon = ("ret_1", "ret_4", "vol_16"), "direction", 4
            estimator = QuadraticDiscriminantAnalysis

        class QDAReturn(QDADirection):
            target = "return"
    '''))
    needs, errors = needs_of(discover(tmp_path).configurations())
    assert not errors
    assert {name.split("(")[0]: (n.method, n.horizon) for name, n in needs.items()} == {
        "QDADirection": ("class-moments", 4), "QDAReturn": ("centroids", 4)}


def test_ridge_on_exact_linear_points_equals_ridge_on_the_real_rows_penalty_included(data):
    """Weights summing to the rows the points stand for: scikit-learn's alpha (a penalty
    against a sum of squared errors) means the same on both. With mean-1 weights the fits
    would differ by a factor of rows / points in the penalty."""
    dset = distill(data, method="exact-linear", size=default_size("exact-linear", data, True), task="regression")
    X, y = _rows(data, "regression")
    for alpha in (1.0, 1e3, 1e5):
        cls = _strategy(lambda alpha=alpha: Ridge(alpha=alpha))
        fitted = cls.fit_model_on_distilled(dset)
        real = Ridge(alpha=alpha).fit(X, y)
        np.testing.assert_allclose(fitted.estimator.coef_, real.coef_, rtol=1e-7, atol=1e-10)
        assert fitted.estimator.intercept_ == pytest.approx(real.intercept_, rel=1e-7, abs=1e-10)
    naive = Ridge(alpha=1e5).fit(dset.X[:, [data.feature_names.index(n) for n in FEATURES]], dset.y,
                                 sample_weight=dset.weight * dset.size)
    assert not np.allclose(naive.coef_, Ridge(alpha=1e5).fit(X, y).coef_, rtol=0.1)


def test_logistic_regression_takes_soft_labels_as_weighted_hard_rows_and_matches_the_real_fit(data):
    dset = distill(data, method="exact-linear", size=len(data.feature_names) + 1, task="classification",
                   per_regime=False)
    assert ((dset.y > 0) & (dset.y < 1)).any()  # soft labels: what scikit-learn refuses
    X, y = _rows(data, "classification")
    for C in (1e-4, 1.0):
        cls = _strategy(lambda C=C: LogisticRegression(C=C), target="direction")
        fitted = cls.fit_model_on_distilled(dset)
        assert any("soft labels" in note for note in fitted.notes)
        real = LogisticRegression(C=C).fit(X, y)
        probe = data.X[data.parts["validation"]][:, [data.feature_names.index(n) for n in FEATURES]]
        p_points = fitted.estimator.predict_proba(probe)[:, 1]
        p_real = real.predict_proba(probe)[:, 1]
        # close, not equal: the points carry the second moments, logistic loss reads more
        assert np.max(np.abs(p_points - p_real)) < 0.01, (C, np.max(np.abs(p_points - p_real)))
        assert np.corrcoef(p_points, p_real)[0, 1] > 0.99


def test_soft_label_rows_equal_the_soft_label_loss():
    """Each point split into a y=1 row weighted w·p and a y=0 row weighted w·(1 − p): logistic
    regression then fits the soft-label cross-entropy (distillbt's own learner on the points)."""
    from distillbt.models import LogisticRegression as SoftLogistic

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    p = rng.uniform(0.2, 0.8, size=40)
    w = rng.uniform(0.5, 2.0, size=40)
    C, n_rows = 0.5, 1000
    model, notes = fit_estimator(LogisticRegression(C=C, tol=1e-12, max_iter=10_000), X, p, w, n_rows=n_rows,
                                 task="classification")
    # sklearn: C Σ wᵢ' ℓ + |β|²/2 with Σ wᵢ' = n_rows  ⇔  ours: Σ wᵢ ℓ (Σ wᵢ = 1) + (α/2)|β|², α = 1/(C n_rows)
    soft = SoftLogistic(alpha=1.0 / (C * n_rows)).fit(X, p, sample_weight=w)
    np.testing.assert_allclose(model.coef_[0], soft.coef_, rtol=1e-4, atol=1e-6)
    assert notes and "soft labels" in notes[0]


def test_pipeline_gets_weights_at_every_step_and_knn_a_weighted_resample():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] > 0).astype(float)
    w = np.r_[np.full(100, 3.0), np.full(100, 1.0)]
    pipe, _ = fit_estimator(make_pipeline(StandardScaler(), LogisticRegression()), X, y, w, task="classification")
    np.testing.assert_allclose(pipe[0].mean_, np.average(X, axis=0, weights=w))
    knn, notes = fit_estimator(KNeighborsClassifier(n_neighbors=5), X, y, w, task="classification", seed=4)
    assert "takes no sample_weight" in notes[0] and "seed 4" in notes[0]
    drawn = knn._fit_X
    heavy = np.isin(drawn[:, 0], X[:100, 0]).sum()
    assert heavy == 150  # 3/4 of the weight → 3/4 of the 200 rows (systematic resampling)
    again, _ = fit_estimator(KNeighborsClassifier(n_neighbors=5), X, y, w, task="classification", seed=4)
    np.testing.assert_array_equal(again._fit_X, drawn)


BAD = textwrap.dedent('''
    from distillbt.strategy import ModelStrategy

    class NoPredict:
        def fit(self, X, y):
            return self

    class Hopeless(ModelStrategy):
        features = ("ret_1", "ret_4")
        target = "direction"

        def make_estimator(self):
            return NoPredict()
''')
RAISES = textwrap.dedent('''
    from sklearn.linear_model import Ridge
    from distillbt.strategy import ModelStrategy

    class Fussy(Ridge):
        def fit(self, X, y, sample_weight=None):
            if self.alpha > 1:
                raise ValueError("alpha too large for this estimator")
            return super().fit(X, y, sample_weight=sample_weight)

    class Picky(ModelStrategy):
        params = (("alpha", 1.0),)
        grid = {"alpha": [0.5, 2.0]}
        features = ("ret_1", "ret_4")

        def make_estimator(self):
            return Fussy(alpha=self.p.alpha)
''')


def test_an_estimator_without_predict_is_one_line_and_exit_2_alone(tmp_path, capsys):
    (tmp_path / "hopeless.py").write_text(BAD)
    code = main(["screen", str(tmp_path), "--sample-bars", "6000", "--top", "1", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert "Hopeless" in err[-1] and "NoPredict" in err[-1] and "predict" in err[-1]
    with pytest.raises(StrategyError, match="Hopeless: the estimator NoPredict has no predict"):
        screen(tmp_path, sample_market(bars=6000, seed=1), top=1, progress=False)


def test_bad_estimators_are_reported_per_configuration_and_the_batch_goes_on(tmp_path):
    (tmp_path / "hopeless.py").write_text(BAD)
    (tmp_path / "picky.py").write_text(RAISES)
    result = screen(tmp_path, sample_market(bars=6000, seed=1), top=1, progress=False)
    by_name = {r.name: r for r in result.records}
    assert "NoPredict has no predict" in by_name["Hopeless"].error
    assert "alpha too large" in by_name["Picky(alpha=2.0)"].error
    good = by_name["Picky(alpha=0.5)"]
    assert good.error is None and good.screen_score is not None and good.survivor


def test_each_estimator_gets_its_set_with_its_horizon(data, tmp_path):
    (tmp_path / "mixed.py").write_text(textwrap.dedent('''
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.linear_model import LogisticRegression
        from distillbt.strategy import ModelStrategy

        F = ("ret_1", "ret_4", "ret_16", "ma_dist_16")

        class Logit4(ModelStrategy):
            params = (("long_threshold", 0.5), ("short_threshold", 0.5))
            features, target, horizon = F, "direction", 4

            def make_estimator(self):
                return LogisticRegression(C=0.1)

        class Forest1(ModelStrategy):
            params = (("long_threshold", 0.5), ("short_threshold", 0.5))
            features, target = F, "direction"

            def make_estimator(self):
                return RandomForestClassifier(n_estimators=10, max_depth=3, min_samples_leaf=50, random_state=0)
    '''))
    candles = sample_market(bars=12_000, seed=5)
    result = screen(tmp_path, candles, top=1, progress=False, short_training=0)  # always distil
    by_name = {r.name: r for r in result.records}
    logit, forest = by_name["Logit4"], by_name["Forest1"]
    assert logit.error is None and forest.error is None
    assert "exact-linear" in logit.distilled_by and "4-candle target" in logit.distilled_by
    assert "centroids" in forest.distilled_by and "1-candle" in forest.distilled_by
    assert not any("in place of" in note for note in (logit.notes or ()))  # fitted on its own horizon
    distilled = result.summary["distilled"]
    assert set(distilled) == {"classification-h4", "classification-centroids"}
    assert distilled["classification-centroids"]["method"] == "centroids"

    # ~6,000 training rows, under SHORT_TRAINING: the forest is fitted on them, as in its full
    # backtest (the same score); the logistic regression keeps its exact-linear points
    short = screen(tmp_path, candles, top=1, progress=False, validate=True)
    by_name = {r.name: r for r in short.records}
    assert by_name["Forest1"].distilled_by.startswith("training-rows")
    assert "agnostic estimator, a short training period" in by_name["Forest1"].distilled_by
    assert by_name["Forest1"].screen_score == pytest.approx(by_name["Forest1"].full_score, abs=1e-9)
    assert "exact-linear" in by_name["Logit4"].distilled_by
    assert set(short.summary["distilled"]) == {"classification-h4"}


def test_prepare_with_a_horizon_targets_that_many_candles_ahead():
    candles = sample_market(bars=3000, seed=1)
    four = prepare(candles, horizon=4)
    close = np.log(candles.frame["close"].to_numpy())
    at = candles.frame.index.get_indexer(four.times[:50])
    np.testing.assert_allclose(four.target[:50], close[at + 4] - close[at])
    assert four.parts["validation"].start - four.parts["train"].stop == 4  # the embargo covers the target
    assert four.metadata()["horizon"] == 4


def test_centroids_are_real_members_with_their_clusters_weight_and_mean_label():
    from distillbt.distill.centroids import KMeansCentroids

    rng = np.random.default_rng(2)
    X = rng.normal(size=(3000, 3))
    y = (rng.random(3000) < 0.5 + 0.2 * np.tanh(X[:, 0])).astype(float)
    w = rng.uniform(0.5, 1.5, size=3000)
    c = KMeansCentroids(size=60, random_state=1).fit(X, y, w)
    members = [np.flatnonzero((X == row).all(axis=1)) for row in c.X_]
    assert all(len(m) == 1 for m in members)  # each point is a training row
    kept = np.unique(c.labels_)
    for point, row in zip(range(len(c.X_)), (m[0] for m in members)):
        cluster = c.labels_[row]
        inside = c.labels_ == cluster
        assert c.y_[point] == pytest.approx(np.average(y[inside], weights=w[inside]))
        assert c.weight_[point] == pytest.approx(w[inside].sum() / w.sum())
    assert len(c.X_) == len(kept)
    assert c.weight_ @ c.y_ == pytest.approx(np.average(y, weights=w))  # the label's mean is kept exactly
    assert 0 < c.y_.min() and c.y_.max() < 1  # soft: the clusters' averages, not one row's noise


def test_grouped_clustering_is_as_tight_as_one_over_all_rows():
    """The default clustering (groups first, then each group's share of the clusters) ends with
    clusters at least as tight as mini-batch k-means over all rows at once, every cluster
    non-empty, the points' weights summing to the rows'."""
    from distillbt.distill.centroids import KMeansCentroids

    rng = np.random.default_rng(5)
    centres = rng.normal(scale=3.0, size=(12, 5))
    X = centres[rng.integers(12, size=6000)] + rng.normal(size=(6000, 5))
    y = rng.normal(size=6000)

    def inertia(model):
        labels = model.labels_
        sums = np.stack([np.bincount(labels, weights=X[:, j]) for j in range(X.shape[1])], axis=1)
        counts = np.bincount(labels)
        centre = sums[labels] / counts[labels, None]
        return float(((X - centre) ** 2).sum())

    grouped = KMeansCentroids(size=600, random_state=0).fit(X, y)
    minibatch = KMeansCentroids(size=600, clustering="minibatch", random_state=0).fit(X, y)
    assert grouped.get_params()["clustering"] == "grouped" and len(grouped.X_) == 600
    assert inertia(grouped) <= 1.02 * inertia(minibatch)
    assert grouped.counts_.min() >= 1 and grouped.counts_.sum() == len(X)
    assert grouped.weight_ @ grouped.y_ == pytest.approx(y.mean())
    with pytest.raises(InputError, match="unknown clustering 'lloyd'"):
        KMeansCentroids(size=10, clustering="lloyd").fit(X, y)


def test_row_counts_are_scaled_to_the_points():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(500, 2))
    y = (X[:, 0] > 0).astype(float)
    forest, notes = fit_estimator(RandomForestClassifier(n_estimators=3, min_samples_leaf=200, random_state=0),
                                  X, y, np.ones(500), n_rows=100_000, task="classification")
    params = forest.get_params()
    # a bootstrap of 100,000 draws fits 1 - 1/e of the rows: 200 rows are 0.32 % of a tree's
    assert params["min_samples_leaf"] == 1
    assert params["min_weight_fraction_leaf"] == pytest.approx(200 / (100_000 * (1 - np.exp(-1))))
    knn, notes = fit_estimator(make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=400)), X, y,
                               np.ones(500), n_rows=100_000, task="classification")
    assert knn.get_params()["kneighborsclassifier__n_neighbors"] == 2  # 400 × 500 / 100,000
    assert "n_neighbors 400 -> 2" in " ".join(notes)


def test_path_dependent_estimators_are_fitted_on_the_training_candles(tmp_path):
    from sklearn.neural_network import MLPClassifier

    from distillbt.discovery import discover
    from distillbt.distilled_sets import ROWS_METHOD, needs_of

    assert estimator_traits(SGDClassifier()).family == "rows"
    assert estimator_traits(make_pipeline(StandardScaler(), SGDClassifier())).family == "rows"
    assert estimator_traits(MLPClassifier()).family == "rows"
    assert estimator_traits(LogisticRegression()).family == "linear"
    (tmp_path / "sgd.py").write_text(textwrap.dedent('''
        from sklearn.linear_model import SGDClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from distillbt.strategy import ModelStrategy

        class ScaledSGD(ModelStrategy):
            params = (("alpha", 1e-3), ("long_threshold", 0.52), ("short_threshold", 0.48))
            grid = {"alpha": [1e-4, 1e-2]}
            features, target, horizon = ("ret_1", "ret_4", "ret_16", "ma_dist_16"), "direction", 2

            def make_estimator(self):
                return make_pipeline(StandardScaler(), SGDClassifier(loss="log_loss", alpha=self.p.alpha,
                                                                     random_state=0))
    '''))
    configs = discover(tmp_path).configurations()
    needs, _ = needs_of(configs)
    assert {n.method for n in needs.values()} == {ROWS_METHOD}
    # --method, or a pooled basket, fits them on distilled points after all (those of linear models)
    assert {(n.family, n.method) for n in needs_of(configs, method="gradient")[0].values()} == {("linear", "gradient")}
    assert {n.method for n in needs_of(configs, training_rows=False)[0].values()} == {"exact-linear"}

    result = screen(tmp_path, sample_market(bars=12_000, seed=5), top=1, validate=True, progress=False)
    assert result.summary["distilled"] == {}  # nothing distilled for them
    for record in result.records:
        assert record.error is None and record.distilled_by.startswith(ROWS_METHOD)
        assert "2-candle target" in record.distilled_by
        # fitted on the rows its full backtest fits on, by the same estimator: the same score
        assert record.screen_score == pytest.approx(record.full_score, abs=1e-9)


def test_boosting_by_reweighting_is_fitted_on_the_training_candles(tmp_path):
    """AdaBoost reweights each row by the previous rounds' errors on its own label, a path that
    points carrying their cluster's mean label do not follow: it joins the ``"rows"`` family
    (alone and as a pipeline's last step), while the trees it boosts stay agnostic."""
    from sklearn.ensemble import AdaBoostClassifier, AdaBoostRegressor

    from distillbt.discovery import discover
    from distillbt.distilled_sets import AGNOSTIC_METHOD, ROWS_METHOD, needs_of

    assert estimator_traits(AdaBoostClassifier()).on_rows
    assert "reweights" in estimator_traits(AdaBoostClassifier()).rows_reason
    assert estimator_traits(AdaBoostRegressor(), n_rows=100_000).on_rows
    assert estimator_traits(make_pipeline(StandardScaler(), AdaBoostClassifier())).on_rows
    assert not estimator_traits(DecisionTreeClassifier(max_depth=1)).on_rows
    (tmp_path / "ada.py").write_text(textwrap.dedent('''
        from sklearn.ensemble import AdaBoostClassifier
        from distillbt.strategy import ModelStrategy

        class Stumps(ModelStrategy):
            params = (("n_estimators", 4),)
            grid = {"n_estimators": [2, 4]}
            features, target = ("ret_1", "ret_4"), "direction"

            def make_estimator(self):
                return AdaBoostClassifier(n_estimators=self.p.n_estimators, random_state=0)
    '''))
    configs = discover(tmp_path).configurations()
    assert {n.method for n in needs_of(configs, n_training_rows=100_000)[0].values()} == {ROWS_METHOD}
    # --method, or a pooled basket: the agnostic points after all, not the linear models'
    assert {(n.family, n.method) for n in needs_of(configs, training_rows=False)[0].values()} == \
        {("agnostic", AGNOSTIC_METHOD)}


def test_histogram_boosting_is_fitted_on_the_training_candles(tmp_path):
    """A histogram booster's fit costs about as much on the rows as on points (its rounds search
    bins, not rows), so the screen fits it on the rows its full backtest fits on, early stopping
    or not; with --method or in a pooled basket it stays on the agnostic points."""
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingRegressor

    from distillbt.discovery import discover
    from distillbt.distilled_sets import AGNOSTIC_METHOD, ROWS_METHOD, needs_of

    hgb = HistGradientBoostingRegressor(early_stopping=False)
    assert estimator_traits(hgb).binned and estimator_traits(hgb).on_rows
    assert estimator_traits(hgb).rows_reason.startswith("histogram boosting")
    # early stopping is the reason that decides where it stops: it comes first
    assert estimator_traits(HistGradientBoostingRegressor(early_stopping=True)).rows_reason.startswith("early")
    assert estimator_traits(make_pipeline(StandardScaler(), hgb)).on_rows
    assert not estimator_traits(GradientBoostingClassifier()).on_rows  # exact sorts: cost grows with the rows
    assert not estimator_traits(RandomForestClassifier()).on_rows

    (tmp_path / "hgb.py").write_text(textwrap.dedent('''
        from sklearn.ensemble import HistGradientBoostingRegressor
        from distillbt.strategy import ModelStrategy

        class Boosted(ModelStrategy):
            features, target = ("ret_1", "ret_4"), "return"

            def make_estimator(self):
                return HistGradientBoostingRegressor(early_stopping=False, max_iter=5)
    '''))
    configs = discover(tmp_path).configurations()
    assert [n.method for n in needs_of(configs, n_training_rows=100_000)[0].values()] == [ROWS_METHOD]
    assert [(n.family, n.method) for n in needs_of(configs, training_rows=False)[0].values()] == \
        [("agnostic", AGNOSTIC_METHOD)]


@pytest.mark.parametrize("library", ["lightgbm", "xgboost"])
def test_histogram_boosting_of_other_libraries_is_fitted_on_the_training_candles(library):
    """LightGBM and XGBoost (``pip install -e ".[boosting]"``) bin their rows as scikit-learn's
    histogram boosting does; XGBoost's exact tree method does not."""
    module = pytest.importorskip(library)
    if library == "lightgbm":
        assert estimator_traits(module.LGBMClassifier()).on_rows
        assert estimator_traits(make_pipeline(StandardScaler(), module.LGBMRegressor())).on_rows
    else:
        assert estimator_traits(module.XGBRegressor()).on_rows
        assert estimator_traits(module.XGBClassifier(tree_method="hist")).on_rows
        assert not estimator_traits(module.XGBRegressor(tree_method="exact")).on_rows


def test_boosting_that_stops_early_on_rows_it_holds_out_is_fitted_on_the_training_candles(tmp_path):
    """Where early stopping stops is decided by real rows the estimator holds out of its fit,
    which points cannot stand for: with it on, the estimator is fitted as its full backtest
    fits it (the screen's score is the full backtest's); off, or on a short period for
    ``"auto"``, it stays agnostic."""
    from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingClassifier

    from distillbt.discovery import discover
    from distillbt.distilled_sets import AGNOSTIC_METHOD, ROWS_METHOD, needs_of

    assert estimator_traits(HistGradientBoostingClassifier(early_stopping=True)).stops_early
    assert not estimator_traits(HistGradientBoostingClassifier(early_stopping=False), n_rows=10**6).stops_early
    assert estimator_traits(HistGradientBoostingClassifier(), n_rows=100_000).stops_early  # "auto", above 10,000
    assert not estimator_traits(HistGradientBoostingClassifier(), n_rows=8_000).stops_early
    assert not estimator_traits(HistGradientBoostingClassifier()).stops_early  # rows unknown
    assert estimator_traits(GradientBoostingRegressor(n_iter_no_change=5)).stops_early
    assert not estimator_traits(GradientBoostingRegressor()).stops_early
    assert estimator_traits(make_pipeline(StandardScaler(), HistGradientBoostingClassifier(early_stopping=True))
                            ).stops_early
    (tmp_path / "hgb.py").write_text(textwrap.dedent('''
        from sklearn.ensemble import GradientBoostingClassifier
        from distillbt.strategy import ModelStrategy

        class StoppingBoost(ModelStrategy):
            params = (("early", True), ("long_threshold", 0.51), ("short_threshold", 0.49))
            grid = {"early": [True, False], "long_threshold": [0.505, 0.52]}
            features, target, horizon = ("ret_1", "ret_4", "ret_16", "ma_dist_16"), "direction", 2

            def make_estimator(self):
                # not histogram boosting, which is fitted on the rows early stopping or not
                return GradientBoostingClassifier(n_estimators=40, max_depth=2, validation_fraction=0.2,
                                                  n_iter_no_change=3 if self.p.early else None,
                                                  random_state=0)
    '''))
    configs = discover(tmp_path).configurations()
    needs, _ = needs_of(configs, n_training_rows=100_000)
    methods = {name: need.method for name, need in needs.items()}
    assert {m for name, m in methods.items() if "early=True" in name} == {ROWS_METHOD}
    assert {m for name, m in methods.items() if "early=False" in name} == {AGNOSTIC_METHOD}
    # --method, or a pooled basket: points after all — those of non-linear estimators
    assert {n.family for n in needs_of(configs, method="centroids")[0].values()} == {"agnostic"}
    assert {n.family for n in needs_of(configs, training_rows=False)[0].values()} == {"agnostic"}

    result = screen(tmp_path, sample_market(bars=12_000, seed=5), top=1, validate=True, progress=False,
                    short_training=0)
    stopping = [r for r in result.records if "early=True" in r.name]
    assert len(stopping) == 2
    for record in stopping:
        assert record.error is None and record.distilled_by.startswith(ROWS_METHOD)
        assert "early stopping" in record.distilled_by
        assert record.screen_score == pytest.approx(record.full_score, abs=1e-9)
    assert all(r.distilled_by.startswith(AGNOSTIC_METHOD) for r in result.records if "early=False" in r.name)


@pytest.mark.parametrize("make", [
    lambda: RandomForestClassifier(n_estimators=8, max_samples=0.25, min_samples_leaf=250, random_state=0),
    lambda: BaggingClassifier(DecisionTreeClassifier(min_samples_leaf=150), n_estimators=8, max_samples=0.3,
                              random_state=0),
], ids=["forest", "bagging"])
def test_trees_of_row_drawing_ensembles_get_the_leaves_their_full_fit_has(make):
    """A tree of a forest with ``max_samples=0.25`` fits about 22 % of the rows, so its
    ``min_samples_leaf`` counts rows of that draw: scaled against all the rows, the points'
    trees would grow leaves four times smaller than the full fit's (and trade on their noise)."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(40_000, 3))
    p = 1.0 / (1.0 + np.exp(-2.0 * X[:, 0]))
    full = make().fit(X, (rng.random(40_000) < p).astype(int))
    points = rng.choice(40_000, 4_000, replace=False)  # points standing for the rows, with mean labels
    fitted, notes = fit_estimator(make(), X[points], p[points], np.ones(4_000), n_rows=40_000,
                                  task="classification")

    def leaves(model):
        return np.mean([tree.get_n_leaves() for tree in model.estimators_])

    assert 0.67 < leaves(fitted) / leaves(full) < 1.5, (leaves(fitted), leaves(full), notes)


def test_a_split_count_of_an_ensemble_drawing_by_weight_is_scaled_to_the_draws_it_makes_on_the_points():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(2_000, 3))
    y = X[:, 0] + rng.normal(size=2_000)
    forest, notes = fit_estimator(RandomForestRegressor(n_estimators=2, max_samples=0.3, min_samples_split=400,
                                                        random_state=0), X, y, np.ones(2_000), n_rows=100_000)
    # the full fit's tree sees 1 - exp(-0.3) of 100,000 rows; on the points the weights sum to
    # 100,000, so 30,000 draws reach 1 - exp(-15) of the 2,000 points
    full, points = 100_000 * (1 - np.exp(-0.3)), 2_000 * (1 - np.exp(-15))
    assert forest.get_params()["min_samples_split"] == int(round(400 * points / full))


@pytest.mark.parametrize("make", [
    lambda: BaggingClassifier(DecisionTreeClassifier(max_depth=3), n_estimators=3, max_samples=0.3, random_state=0),
    lambda: RandomForestRegressor(n_estimators=3, max_depth=3, max_samples=0.3, random_state=0),
], ids=["bagging", "regression-forest"])
def test_ensembles_drawing_by_weight_draw_as_many_rows_per_tree_as_the_full_fit(make):
    rng = np.random.default_rng(6)
    X = rng.normal(size=(2_000, 3))
    y = (X[:, 0] > 0).astype(float)
    probe = make().fit(X, y, sample_weight=np.full(2_000, 2.0))
    if len(probe.estimators_samples_[0]) != int(0.3 * 4_000):
        pytest.skip("this scikit-learn draws a share of the rows, whatever the weights sum to")
    fitted, _ = fit_estimator(make(), X, y, rng.uniform(0.5, 2.0, size=2_000), n_rows=50_000)
    # 30 % of the 50,000 rows the points stand for, as in the full fit (to the weights' float
    # sum's rounding); weights of mean 1 drew 600
    assert all(abs(len(drawn) - 15_000) <= 1 for drawn in fitted.estimators_samples_)


def test_early_stopping_auto_is_decided_by_the_rows_the_points_stand_for():
    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.default_rng(7)
    X = rng.normal(size=(3_000, 3))
    y = X[:, 0] + rng.normal(size=3_000)
    fitted, notes = fit_estimator(make_pipeline(StandardScaler(), HistGradientBoostingRegressor(max_iter=300)), X, y,
                                  np.ones(3_000), n_rows=100_000)
    # on 100,000 rows scikit-learn's "auto" stops early; on 3,000 points it would run all 300 rounds
    booster = fitted[-1]
    assert booster.get_params()["early_stopping"] is True and booster.n_iter_ < 300
    assert "early_stopping 'auto' -> True" in " ".join(notes)
    few, _ = fit_estimator(HistGradientBoostingRegressor(max_iter=20), X, y, np.ones(3_000), n_rows=8_000)
    assert few.get_params()["early_stopping"] is False
    real, notes = fit_estimator(HistGradientBoostingRegressor(max_iter=20), X, y)  # real rows: as given
    assert real.get_params()["early_stopping"] == "auto" and not notes


def test_row_draws_are_switched_off_only_where_split_soft_labels_would_be_drawn_apart():
    from sklearn.ensemble import GradientBoostingClassifier

    rng = np.random.default_rng(4)
    X = rng.normal(size=(400, 3))
    soft = 1.0 / (1.0 + np.exp(-X[:, 0]))
    w = rng.uniform(0.5, 2.0, size=400)
    boost, notes = fit_estimator(GradientBoostingClassifier(n_estimators=5, subsample=0.3, random_state=0),
                                 X, soft, w, task="classification")
    assert boost.get_params()["subsample"] == 1.0
    assert any("subsample 0.3 -> 1.0" in note for note in notes)
    forest, notes = fit_estimator(make_pipeline(StandardScaler(), RandomForestClassifier(
        n_estimators=3, max_samples=0.4, random_state=0)), X, soft, w, task="classification")
    params = forest.get_params()
    assert params["randomforestclassifier__max_samples"] is None
    assert params["randomforestclassifier__bootstrap"] is False
    # without its bootstrap a bagging ensemble would draw rows without replacement and ignore the weights
    bagging, _ = fit_estimator(BaggingClassifier(n_estimators=3, max_samples=100, random_state=0), X, soft, w,
                               task="classification")
    assert (bagging.get_params()["max_samples"], bagging.get_params()["bootstrap"]) == (100, True)
    # hard labels are not split, and a regression's mean labels are drawn whole: left alone
    hard, notes = fit_estimator(GradientBoostingClassifier(n_estimators=5, subsample=0.3, random_state=0),
                                X, (soft > 0.5).astype(float), w, task="classification")
    assert hard.get_params()["subsample"] == 0.3 and not any("drawn" in note for note in notes)
    regression, _ = fit_estimator(RandomForestRegressor(n_estimators=3, max_samples=0.4, random_state=0),
                                  X, soft, w, task="regression")
    assert regression.get_params()["max_samples"] == 0.4


def test_agnostic_needs_of_several_targets_share_one_clustering():
    from distillbt.distill.centroids import KMeansCentroids
    from distillbt.distilled_sets import SetNeed, distil_sets

    candles = sample_market(bars=30_000, seed=6)
    data = prepare(candles)
    needs = {name: SetNeed("agnostic", task, horizon, "centroids", 300)
             for name, task, horizon in (("a", "classification", 1), ("b", "regression", 4),
                                         ("c", "classification", 4))}
    sets = distil_sets(data, needs, per_regime=False, seed=3, fractions=data.fractions)
    one, four_r, four_c = (sets[needs[k].key] for k in "abc")
    np.testing.assert_array_equal(one.X, four_r.X)  # the same points and weights for every target
    np.testing.assert_array_equal(one.weight, four_c.weight)
    assert (one.meta["horizon"], four_r.meta["horizon"], four_r.meta["task"]) == (1, 4, "regression")
    # prepared with the longest horizon (on the screen's split and regimes): each set's labels
    # are its own target's cluster means
    four = prepare(candles, horizon=4, like=data)
    alone = distill(four, method="centroids", size=300, task="regression", per_regime=False, seed=3)
    np.testing.assert_array_equal(four_r.X, alone.X)
    np.testing.assert_allclose(four_r.y, alone.y)
    assert four_r.meta["target_scale"] == pytest.approx(four.target_scale)
    rows = four.parts["train"]
    at = candles.frame.index.get_indexer(four.times[rows])
    close = np.log(candles.frame["close"].to_numpy())
    up_next = (close[at + 1] > close[at]).astype(float)
    seed = int(np.random.SeedSequence(3).spawn(1)[0].generate_state(1)[0])
    direct = KMeansCentroids(size=300, random_state=seed).fit(four.X[rows], up_next)
    np.testing.assert_allclose(one.y, direct.y_)
    assert ((one.y > 0) & (one.y < 1)).any() and not np.array_equal(one.y, four_c.y)


def test_strategies_with_their_own_feature_windows_get_points_with_those_windows(tmp_path):
    """A strategy's ``feature_options`` (other return lags, averages, volatility windows) are
    part of its need: its points are prepared with its windows (shared by strategies asking for
    the same), not refused for lacking its columns."""
    from distillbt.discovery import discover
    from distillbt.distilled_sets import feature_options_key, needs_of

    (tmp_path / "windows.py").write_text(textwrap.dedent('''
        from sklearn.ensemble import RandomForestRegressor
        from sklearn.linear_model import Ridge
        from distillbt.strategy import ModelStrategy

        class RidgeOwnWindows(ModelStrategy):
            params = (("alpha", 1.0), ("long_threshold", 0.1))
            grid = {"alpha": [1.0, 100.0]}
            feature_options = {"return_lags": (1, 5, 15), "vol_windows": (20, 100)}
            features = ("ret_1", "ret_5", "ret_15", "vol_20", "ma_dist_16")
            target = "return"

            def make_estimator(self):
                return Ridge(alpha=self.p.alpha)

        class ForestOwnWindows(ModelStrategy):
            params = (("depth", 3), ("long_threshold", 0.1), ("short_threshold", -0.1))
            grid = {"depth": [2, 4]}
            feature_options = {"return_lags": (1, 5, 15), "vol_windows": (20, 100)}
            features = ("ret_5", "vol_ratio_20_100", "ma_dist_64")
            target, horizon = "return", 3

            def make_estimator(self):
                return RandomForestRegressor(n_estimators=5, max_depth=self.p.depth, min_samples_leaf=50,
                                             random_state=0)

        class ForestDefaultWindows(ForestOwnWindows):
            feature_options = {"return_lags": (1, 2, 4, 8, 16, 32)}   # the defaults, said explicitly
            features = ("ret_4", "vol_ratio_16_96", "ma_dist_64")
    '''))
    configs = discover(tmp_path).configurations()
    needs, errors = needs_of(configs)
    assert not errors
    own = feature_options_key({"return_lags": (1, 5, 15), "vol_windows": (20, 100)})
    assert own == (("return_lags", (1, 5, 15)), ("vol_windows", (20, 100)))
    assert feature_options_key({"return_lags": [1, 2, 4, 8, 16, 32]}) == ()  # defaults: no key of their own
    with pytest.raises(InputError, match="unknown feature option 'rsi_windows'"):
        feature_options_key({"rsi_windows": (14,)})
    by_class = {c.strategy.name: needs[c.name] for c in configs}
    assert by_class["RidgeOwnWindows"].features == own == by_class["ForestOwnWindows"].features
    assert by_class["ForestDefaultWindows"].features == ()
    assert by_class["ForestOwnWindows"].key != by_class["ForestDefaultWindows"].key

    result = screen(tmp_path, sample_market(bars=16_000, seed=5), top=1, validate=True, progress=False,
                    short_training=0)  # a short period, distilled all the same: the windows' sets
    assert result.summary["errors"] == 0
    for record in result.records:
        assert record.error is None and record.screen_score is not None and record.full_score is not None
    distilled = result.summary["distilled"]
    assert distilled[by_class["ForestOwnWindows"].key]["feature_options"]["vol_windows"] == [20, 100]
    assert distilled[by_class["RidgeOwnWindows"].key]["feature_options"]["return_lags"] == [1, 5, 15]
    assert "feature_options" not in distilled[by_class["ForestDefaultWindows"].key]


def test_distil_sets_hands_each_method_its_parameters():
    """What ``bench_estimators.py --calibrate --method-params`` varies reaches the distiller,
    in a shared clustering and a single one alike."""
    from distillbt.distilled_sets import SetNeed, distil_sets

    data = prepare(sample_market(bars=20_000, seed=6))
    needs = {"a": SetNeed("agnostic", "classification", 1, "centroids", 200),
             "b": SetNeed("agnostic", "regression", 2, "centroids", 200),
             "c": SetNeed("agnostic", "regression", 1, "kmedoids", 50)}
    sets = distil_sets(data, needs, per_regime=False, seed=1, fractions=data.fractions,
                       method_params={"centroids": {"max_iter": 1, "dtype": "float64"}})
    for name in "ab":
        config = sets[needs[name].key].meta["config"]
        assert (config["max_iter"], config["dtype"]) == (1, "float64")
    default = distil_sets(data, {"a": needs["a"], "c": needs["c"]}, per_regime=False, seed=1,
                          fractions=data.fractions)
    config = default[needs["a"].key].meta["config"]
    assert (config["max_iter"], config["dtype"], config["clustering"]) == (None, "float32", "grouped")
    # another method's distiller is not handed them
    assert sets[needs["c"].key].meta["config"] == default[needs["c"].key].meta["config"]


def test_a_module_level_estimator_is_never_fitted_in_place(tmp_path):
    """A strategy may hand out one module-level estimator: every fit gets its own copy, so
    configurations fitted at once in the screen's threads (or one after the other) never
    share a model, and they score as with a fresh estimator each."""
    shared = textwrap.dedent('''
        from sklearn.ensemble import RandomForestClassifier
        from distillbt.strategy import ModelStrategy

        MODEL = RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0, n_jobs=1)

        class SharedForest(ModelStrategy):
            params = (("horizon", 1), ("long_threshold", 0.51), ("short_threshold", 0.49))
            grid = {"horizon": [1, 2, 3, 4]}
            features, target = ("ret_1", "ret_4", "ma_dist_16"), "direction"

            def make_estimator(self):
                return MODEL
    ''')
    fresh = shared.replace("return MODEL", "return RandomForestClassifier(n_estimators=5, max_depth=3, "
                                           "random_state=0, n_jobs=1)")
    for folder, source in (("shared", shared), ("fresh", fresh)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "shared_forest.py").write_text(source)
    market = sample_market(bars=12_000, seed=5)
    scores = {}
    for folder in ("shared", "fresh"):
        result = screen(tmp_path / folder, market, n_jobs=2, top=1, progress=False, short_training=0)
        assert all(r.error is None for r in result.records)
        scores[folder] = {r.name: r.screen_score for r in result.records}
    assert scores["shared"] == scores["fresh"]
    from distillbt.discovery import discover

    config = discover(tmp_path / "shared").configurations()[0]
    module = sys.modules[config.strategy.cls.__module__]
    assert not hasattr(module.MODEL, "estimators_")  # never fitted in place
