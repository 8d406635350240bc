"""The surrogate of one configuration: next position from the indicator bank and the current one.

::

    model = PositionSurrogate(max_depth=8).fit(X_with_state, y)    # last column: the state
    path = model.walk(F)              # positions over a whole period, state carried bar to bar

A single shallow decision tree with the current position (the state) as a feature did best in
the prototype (DESIGN.md §6: better than one tree per state at tiny budgets; boosting ranked no
better at 4–8x the cost; logistic regression blurs thresholds). Two refinements here:

- **Threshold snapping.** A tree puts a split halfway between the nearest training values on
  either side; with a few hundred transitions that is a little off the strategy's real
  threshold. After fitting, each split on a column whose natural boundary is known — 0 for
  crosses, breakouts and z-scores, the configuration's own numeric parameters (RSI 30/70) for
  bounded columns — is moved to that boundary when it lies in the gap the training data leave
  open. The training predictions do not change; the thresholds transfer.
- **The walk** carries the state through a whole period without a Python loop over bars: the
  tree is evaluated once per state for every bar (a table ``next_state[t, s]``), and the
  composition of those per-bar maps is a prefix scan (Hillis–Steele, ``log2(n)`` numpy steps).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.validation import check_is_fitted

from ..errors import InputError

__all__ = ["PositionSurrogate", "carry_states"]


def carry_states(table: np.ndarray, start: int) -> np.ndarray:
    """States along a path: ``s[t] = table[t, s[t-1]]`` with ``s[-1] = start`` (indices).

    ``table`` is ``(n, S)`` of state indices. Prefix composition of the per-bar maps:
    after the step with shift ``k``, row ``t`` maps a state at ``t - 2k`` to the state at
    ``t``.
    """
    table = np.asarray(table)
    n, S = table.shape
    if n == 0:
        return np.zeros(0, dtype=table.dtype)
    comp = table.copy()
    shift = 1
    while shift < n:
        # later ∘ earlier: comp[t][s] <- comp[t][comp[t - shift][s]]
        comp[shift:] = np.take_along_axis(comp[shift:], comp[:-shift], axis=1)
        shift *= 2
    return comp[:, start]


class PositionSurrogate(ClassifierMixin, BaseEstimator):
    """A decision tree from ``[bank columns..., state]`` to the next position (-1, 0, +1).

    Parameters
    ----------
    max_depth : int
        Depth of the tree (shallow: the rule of a plain strategy is a few comparisons).
    min_samples_leaf : int
        Smallest leaf; 1 lets a rare transition be learned from a handful of examples.
    snap : bool
        Move split thresholds to ``snap_candidates`` when the training data allow it.
    snap_candidates : dict of int to sequence of float, optional
        Column index → natural boundaries for that column.
    random_state : int
        Seed of the tree's tie-breaking between equally good splits.
    """

    def __init__(self, max_depth: int = 8, min_samples_leaf: int = 1, snap: bool = True,
                 snap_candidates=None, random_state: int = 0):
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.snap = snap
        self.snap_candidates = snap_candidates
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y)
        if X.ndim != 2 or X.shape[1] < 1 or len(X) != len(y):
            raise InputError(f"X must be (n, d + 1) with the state last and y of length n; got "
                             f"{X.shape} and {y.shape}")
        if len(X) == 0:
            raise InputError("no training rows")
        self.tree_ = DecisionTreeClassifier(max_depth=self.max_depth, min_samples_leaf=self.min_samples_leaf,
                                            random_state=self.random_state)
        self.tree_.fit(np.nan_to_num(X, nan=0.0), y, sample_weight=sample_weight)
        self.classes_ = self.tree_.classes_
        self.n_features_in_ = X.shape[1]
        self.states_ = np.array(sorted(set(np.unique(X[:, -1]).tolist()) | set(self.classes_.tolist()) | {0.0}))
        self.snapped_ = self._snap(np.nan_to_num(X, nan=0.0)) if self.snap and self.snap_candidates else 0
        return self

    def predict(self, X):
        check_is_fitted(self, "tree_")
        return self.tree_.predict(np.nan_to_num(np.asarray(X, dtype=np.float32), nan=0.0))

    def splits_on_state(self) -> bool:
        t = self.tree_.tree_
        return bool(np.any(t.feature[t.children_left >= 0] == self.n_features_in_ - 1))

    def walk(self, F, start_state: float = 0.0) -> np.ndarray:
        """Positions over ``F`` (bank columns, no state), carrying the state bar to bar.

        Rows with a NaN column (indicator warm-up) decide flat, as a strategy does before its
        indicators are ready.
        """
        check_is_fitted(self, "tree_")
        F = np.asarray(F, dtype=np.float32)
        n = len(F)
        states = self.states_
        Xs = np.empty((n, F.shape[1] + 1), dtype=np.float32)
        Xs[:, :-1] = np.nan_to_num(F, nan=0.0)
        warm = np.isnan(F).any(axis=1)
        index = {float(s): i for i, s in enumerate(states)}
        zero = index[0.0]
        table = np.empty((n, len(states)), dtype=np.int8)
        if self.splits_on_state():
            for j, s in enumerate(states):
                Xs[:, -1] = s
                pred = self.tree_.predict(Xs)
                table[:, j] = _to_index(pred, states)
        else:
            Xs[:, -1] = 0.0
            table[:] = _to_index(self.tree_.predict(Xs), states)[:, None]
        table[warm] = zero
        path = carry_states(table, index.get(float(start_state), zero))
        return states[path]

    def _snap(self, X) -> int:
        t = self.tree_.tree_
        internal = np.flatnonzero(t.children_left >= 0)
        if len(internal) == 0:
            return 0
        path = self.tree_.decision_path(X).tocsc()
        moved = 0
        for node in internal:
            f = int(t.feature[node])
            cands = self.snap_candidates.get(f) if f != X.shape[1] - 1 else None
            if not cands:
                continue
            rows = path.indices[path.indptr[node]:path.indptr[node + 1]]
            vals = X[rows, f].astype(np.float64)
            thr = float(t.threshold[node])
            left, right = vals[vals <= thr], vals[vals > thr]
            if not len(left) or not len(right):
                continue
            lo, hi = left.max(), right.min()
            ok = [c for c in cands if lo <= c < hi]
            if ok:
                best = min(ok, key=lambda c: abs(c - thr))
                if best != thr:
                    t.threshold[node] = best
                    moved += 1
        return moved


def _to_index(pred, states) -> np.ndarray:
    return np.searchsorted(states, np.asarray(pred, dtype=np.float64)).astype(np.int8)
