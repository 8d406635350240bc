"""The one-pass weighted binning for scikit-learn's histogram boosting gives scikit-learn's own
thresholds, and only inside the context."""

import threading

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.ensemble._hist_gradient_boosting import binning

from distillbt._weighted_binning import binning_thresholds, fast_weighted_binning
from distillbt.estimators import fit_estimator

ORIGINAL = binning._find_binning_thresholds


def _columns(rng):
    """Columns of the kinds binning meets: continuous, ties, NaN, few distinct values, integer
    and zero weights."""
    for trial in range(240):
        n = int(rng.integers(2, 2500))
        x = rng.normal(size=n)
        if trial % 4 == 1:
            x = np.round(x, 1)  # many ties
        elif trial % 4 == 2:
            x[rng.random(n) < 0.15] = np.nan
        elif trial % 4 == 3:
            x = rng.integers(0, 300, n).astype("float64")
        w = rng.random(n) if trial % 3 else rng.integers(0, 4, n).astype("float64")
        max_bins = int(rng.choice([3, 16, 255]))
        if np.isnan(x).all() or not (w[~np.isnan(x)] != 0).any():
            continue
        yield x, w, max_bins


def test_weighted_thresholds_equal_scikit_learns():
    compared = 0
    for x, w, max_bins in _columns(np.random.default_rng(0)):
        np.testing.assert_array_equal(binning_thresholds(x, max_bins, w), ORIGINAL(x, max_bins, w))
        compared += 1
    assert compared > 200


@pytest.mark.parametrize("cls", [HistGradientBoostingRegressor, HistGradientBoostingClassifier])
def test_a_boosting_model_fitted_inside_equals_one_fitted_outside(cls):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 5))
    y = X[:, 0] * 0.3 + rng.normal(size=3000)
    if cls is HistGradientBoostingClassifier:
        y = (y > 0).astype(int)
    weight = rng.random(3000) * 3
    outside = cls(max_iter=30, random_state=0).fit(X, y, sample_weight=weight)
    with fast_weighted_binning():
        assert binning._find_binning_thresholds is binning_thresholds  # the slow loop is installed here
        inside = cls(max_iter=30, random_state=0).fit(X, y, sample_weight=weight)
    assert binning._find_binning_thresholds is ORIGINAL
    for a, b in zip(outside._bin_mapper.bin_thresholds_, inside._bin_mapper.bin_thresholds_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(outside.predict(X), inside.predict(X))


def test_fit_estimator_gives_the_same_boosting_model_and_restores_scikit_learn():
    rng = np.random.default_rng(2)
    X, y, w = rng.normal(size=(1500, 4)), rng.random(1500), rng.random(1500)
    plain = HistGradientBoostingRegressor(max_iter=20, random_state=0).fit(X, y, sample_weight=w * 1500 / w.sum())
    fitted, _ = fit_estimator(HistGradientBoostingRegressor(max_iter=20, random_state=0), X, y, w)
    np.testing.assert_array_equal(plain.predict(X), fitted.predict(X))
    assert binning._find_binning_thresholds is ORIGINAL


def test_nested_and_concurrent_contexts_restore_once_all_have_left():
    entered, leave = threading.Event(), threading.Event()

    def hold():
        with fast_weighted_binning():
            entered.set()
            leave.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    entered.wait(10)
    with fast_weighted_binning():
        with fast_weighted_binning():
            assert binning._find_binning_thresholds is binning_thresholds
    assert binning._find_binning_thresholds is binning_thresholds  # the thread is still inside
    leave.set()
    thread.join(10)
    assert binning._find_binning_thresholds is ORIGINAL


def test_an_error_inside_still_restores():
    with pytest.raises(ZeroDivisionError):
        with fast_weighted_binning():
            1 / 0
    assert binning._find_binning_thresholds is ORIGINAL
