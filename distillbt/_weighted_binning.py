"""scikit-learn's histogram gradient boosting, fitted with ``sample_weight``, in the time it
takes without.

Since scikit-learn 1.8 ``HistGradientBoosting*`` bins weighted rows at weighted quantiles, one
``_weighted_percentile`` call (a full sort) per bin edge: 254 sorts per feature. On a few
thousand distilled points that binning is most of the fit (``benchmarks/bench_fit_overheads.py``,
150 rounds: 8,514 points × 7 features 0.74 s against 0.20 s with the stand-in and 0.19 s
unweighted; × 20 features 2.12 s against 0.33 s), so a boosting model fitted on weighted points
was no faster than on all the training rows unweighted. Upstream tracks it (scikit-learn issue #34304, pull request #34248: one
helper per column instead of one call per edge), not in the installed releases.

:func:`fast_weighted_binning` swaps in, for the duration of a fit, a threshold finder that
computes the *same* thresholds — the same sort, the same cumulative weights, the same
"averaged inverted CDF" rule — for all edges of a column at once (tested equal, NaN, ties and
zero weights included). It does so only when scikit-learn's function is the slow loop it
replaces (its source is read once); any other version is left alone.
"""

from __future__ import annotations

import contextlib
import inspect
import threading

import numpy as np

__all__ = ["fast_weighted_binning", "binning_thresholds"]

_LOCK = threading.Lock()
_STATE = {"depth": 0, "original": None, "checked": False, "module": None}


def binning_thresholds(col_data, max_bins, sample_weight=None):
    """scikit-learn's ``_find_binning_thresholds`` (1.8–1.9) with every weighted quantile of a
    column computed in one pass: bin edges of one feature, increasing. Unweighted columns go
    to scikit-learn's own."""
    from sklearn.ensemble._hist_gradient_boosting.common import ALMOST_INF, X_DTYPE

    if sample_weight is None:
        return (_STATE["original"] or _original())(col_data, max_bins)
    col_data = np.asarray(col_data)
    missing_mask = np.isnan(col_data)
    any_missing = missing_mask.any()
    if any_missing:
        col_data = col_data[~missing_mask]
    sample_weight = np.asarray(sample_weight)
    if any_missing:
        sample_weight = sample_weight[~missing_mask]
    nonzero = sample_weight != 0
    sort_idx = np.argsort(col_data[nonzero])
    col_data, sample_weight = col_data[nonzero][sort_idx], sample_weight[nonzero][sort_idx]
    distinct_values = np.unique(col_data).astype(X_DTYPE)
    if len(distinct_values) == 1:
        return np.asarray([])
    if len(distinct_values) <= max_bins:
        thresholds = np.lib.stride_tricks.sliding_window_view(distinct_values, 2).mean(axis=1)
    else:
        thresholds = _averaged_inverted_cdf(col_data, sample_weight, np.linspace(0, 100, num=max_bins + 1)[1:-1])
    unique = np.unique(thresholds)
    if unique.shape[0] != thresholds.shape[0]:
        thresholds = unique
    np.clip(thresholds, a_min=None, a_max=ALMOST_INF, out=thresholds)
    return thresholds


def _averaged_inverted_cdf(values, weight, percentiles) -> np.ndarray:
    """``[_weighted_percentile(values, weight, p, average=True) for p in percentiles]`` as
    scikit-learn computes each one (its argsort, cumulative sum, search and tie rule), for all
    ``percentiles`` at once."""
    values = values.astype("float64", copy=False)
    weight = weight.astype("float64", copy=False)
    order = np.argsort(values.reshape(-1, 1), axis=0)[:, 0]  # scikit-learn's (non-stable) sort
    cdf = np.cumsum(weight[order])
    targets = percentiles.astype("float64") / 100 * cdf[-1]
    targets[targets == 0] = np.nextafter(0.0, 1.0)
    last = len(values) - 1
    at = np.clip(np.searchsorted(cdf, targets), 0, last)
    above = (cdf[at] - targets) > np.finfo("float64").eps
    following = np.clip(at + 1, 0, last)
    for k in np.flatnonzero(weight[order[following]] == 0):  # skip zero-weight neighbours
        nxt = np.searchsorted(cdf, cdf[at[k]], side="right")
        following[k] = at[k] if nxt > last else nxt
    low, high = values[order[at]], values[order[following]]
    return np.where(above, low, (low + high) / 2)


def _original():
    from sklearn.ensemble._hist_gradient_boosting import binning

    return binning._find_binning_thresholds


def _slow_loop(module) -> bool:
    """scikit-learn's threshold finder is the per-edge loop this module replaces."""
    original = getattr(module, "_find_binning_thresholds", None)
    if original is None:
        return False
    try:
        source = inspect.getsource(original)
        parameters = list(inspect.signature(original).parameters)
    except (OSError, TypeError, ValueError):
        return False
    return parameters == ["col_data", "max_bins", "sample_weight"] and "for percentile in percentiles" in source


@contextlib.contextmanager
def fast_weighted_binning():
    """Inside, scikit-learn's histogram boosting bins weighted rows with
    :func:`binning_thresholds` (same thresholds, one pass per column) when its own finder is the
    slow loop; otherwise, and outside, nothing changes. Re-entrant and thread-safe."""
    with _LOCK:
        if not _STATE["checked"]:
            _STATE["checked"] = True
            try:
                from sklearn.ensemble._hist_gradient_boosting import binning
            except ImportError:
                binning = None
            _STATE["module"] = binning if binning is not None and _slow_loop(binning) else None
        module = _STATE["module"]
        if module is not None:
            if _STATE["depth"] == 0:
                _STATE["original"] = module._find_binning_thresholds
                module._find_binning_thresholds = binning_thresholds
            _STATE["depth"] += 1
    try:
        yield
    finally:
        if module is not None:
            with _LOCK:
                _STATE["depth"] -= 1
                if _STATE["depth"] == 0:
                    module._find_binning_thresholds = _STATE["original"]
