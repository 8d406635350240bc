"""The surrogate of one configuration: next position from the indicator bank and the current one.

::

    model = PositionSurrogate(max_depth=8).fit(X_with_state, y)    # last column: the state
    path = model.walk(F)              # positions over a whole period, state carried bar to bar

A single shallow decision tree with the current position (the state) as a feature did best in
the prototype (docs/design.md §6: better than one tree per state at tiny budgets; boosting ranked no
better at 4–8x the cost; logistic regression blurs thresholds). Two refinements here:

- **Threshold snapping.** A tree puts a split halfway between the nearest training values on
  either side; with a few hundred transitions that is a little off the strategy's real
  threshold. After fitting, each split on a column whose natural boundary is known — 0 for
  crosses, breakouts and z-scores, the configuration's own numeric parameters (RSI 30/70) for
  bounded columns — is moved to that boundary when it lies in the gap the training data leave
  open. The training predictions do not change; the thresholds transfer.
- **The walk** carries the state through a whole period without a Python loop over bars: the
  tree is evaluated once per state for every bar (a table ``next_state[t, s]``), and the
  composition of those per-bar maps is a prefix scan (:func:`carry_states`). The tree is
  evaluated by a compact copy of itself that reads only the columns it splits on (``predict``
  would validate and copy every bank column of every bar, once per state).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.validation import check_is_fitted

from ..errors import InputError
from .trade_state import TradeContext, entered_columns, held_columns, protective_levels

__all__ = ["PositionSurrogate", "carry_states", "read_states"]


def carry_states(table: np.ndarray, start: int) -> np.ndarray:
    """States along a path: ``s[t] = table[t, s[t-1]]`` with ``s[-1] = start`` (indices).

    ``table`` is ``(n, S)`` of state indices (``S <= 3``: short, flat, long). Each row is a
    map of the state; the path is the prefix composition of those maps, computed as a
    Hillis–Steele scan (``log2(n)`` numpy steps) with three shortcuts that keep it to a few
    milliseconds over 10^5 bars:

    - a map is encoded as one small integer (``S**S <= 27`` codes) and two maps compose
      through a lookup table, one 1-d gather per step;
    - identity rows (most bars of a rule strategy: "keep what you hold") are dropped before
      the scan and the states carried forward over them afterwards;
    - the scan stops once every unfinished composition is constant (a constant map, such as
      "flat while the indicator warms up" or "long after a cross", forgets what came before).
    """
    table = np.asarray(table)
    n, S = table.shape
    if n == 0:
        return np.zeros(0, dtype=table.dtype)
    if not 1 <= S <= 3:
        raise InputError(f"carry_states handles 1 to 3 states, got {S}")
    moving = np.flatnonzero((table != np.arange(S, dtype=table.dtype)).any(axis=1))
    if len(moving) == 0:
        return np.full(n, start, dtype=table.dtype)
    weights, decode, compose, constant = _map_algebra(S)
    comp = table[moving].astype(np.int64) @ weights
    m = len(comp)
    shift = 1
    # Invariant: rows < shift compose every map from the first; rows >= shift the last 2*shift.
    while shift < m and not constant[comp[shift:]].all():
        comp[shift:] = compose[comp[shift:], comp[:-shift]]
        shift *= 2
    at_moving = decode[comp, start]
    # Bars between two moving rows keep the state the earlier one left.
    last = np.full(n, -1, dtype=np.int64)
    last[moving] = np.arange(m)
    np.maximum.accumulate(last, out=last)
    out = np.concatenate(([start], at_moving)).astype(table.dtype)
    return out[last + 1]


@functools.lru_cache(maxsize=None)
def _map_algebra(S: int):
    """Maps of ``S`` states as codes: ``weights`` (code of map ``m`` is ``m @ weights``),
    ``decode[code]`` (the map), ``compose[later, earlier]`` (code of ``later ∘ earlier``) and
    ``constant[code]``."""
    weights = S ** np.arange(S)
    decode = np.array(list(np.ndindex(*(S,) * S)), dtype=np.int64)[:, ::-1]
    compose = np.empty((S ** S, S ** S), dtype=np.int64)
    for later in range(S ** S):
        compose[later] = (decode[later][decode] * weights).sum(axis=1)
    constant = (decode == decode[:, :1]).all(axis=1)
    for array in (weights, decode, compose, constant):
        array.flags.writeable = False  # shared between calls and threads
    return weights, decode, compose, constant


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
    snap_prefer : sequence of float
        Boundaries taken first when several lie in a split's gap (the strategy's own
        numbers: :func:`~.plan.code_levels`); the nearest of the others otherwise.
    random_state : int
        Seed of the tree's tie-breaking between equally good splits.
    columns : sequence of int, optional
        The columns of ``X`` the tree may split on (the state always): a subset is fitted
        faster than hiding the others.
    trade_names : sequence of str
        Names of the trade columns (:mod:`.trade_state`) placed just before the state
        column: ``X`` is ``[columns..., trade columns..., state]``. The walk computes them
        from the positions it carries (:meth:`walk`'s ``trade``).
    protection : distillbt.protective.Protection, optional
        The protective orders (stop-loss, take-profit, trailing stop) every trade of the
        strategy carries, recorded from its runs: the walk closes a trade where one of them
        fills, by Backtrader's rules, and decides from flat at that bar's close.
    entry : distillbt.entry_orders.EntryOrder, optional
        The Stop, Limit or StopLimit order (or OCO pair of them) every entry of the strategy
        is made with, recorded from its runs: where the tree decides to enter, the walk sends
        it, waits while it works (deciding nothing) and holds the position from the bar it
        fills in, at its price — or decides again, flat, once it is withdrawn unfilled.
    by_state : bool
        Split on the state first, then grow one tree per state on its rows alone (``if not
        self.position: … else: …``, the way ``next`` is usually written): a greedy tree
        over all rows may split on an entry's column first and learn the exit as patches
        under it. The result is one tree (its root splits on the state), used as any other.
    stateless : bool
        Never split on the state: the next position from the columns alone, as a strategy
        that orders the target its indicators name whatever it holds
        (``order_target_size(wanted)``) decides. A greedy tree over the state may split on
        it first and learn that rule as patches under each state, which need not hold where
        no training row of that state reached.
    natural : bool
        Split each column that has natural boundaries (``snap_candidates``) at those
        boundaries only: the tree is grown on the indicators ``column > boundary`` (other
        columns, the state among them, as they are) and read back as splits of the columns
        at the boundaries. A rule that is a conjunction of such comparisons (three up candles
        in a row) is then found where a greedy split between boundaries (a two-candle body)
        separates the training bars better and leaves patches under it.
    """

    def __init__(self, max_depth: int = 8, min_samples_leaf: int = 1, snap: bool = True,
                 snap_candidates=None, random_state: int = 0, trade_names=(), columns=None, protection=None,
                 entry=None, by_state: bool = False, snap_prefer=(), stateless: bool = False, natural: bool = False):
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.snap = snap
        self.snap_candidates = snap_candidates
        self.random_state = random_state
        self.trade_names = trade_names
        self.columns = columns
        self.protection = protection
        self.entry = entry
        self.by_state = by_state
        self.snap_prefer = snap_prefer
        self.stateless = stateless
        self.natural = natural

    def fit(self, X, y, sample_weight=None):
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y)
        if X.ndim != 2 or X.shape[1] < 1 or len(X) != len(y):
            raise InputError(f"X must be (n, d + 1) with the state last and y of length n; got "
                             f"{X.shape} and {y.shape}")
        if len(X) == 0:
            raise InputError("no training rows")
        if self.by_state and self.stateless:
            raise InputError("by_state splits on the state first; stateless never reads it: choose one")
        self.tree_ = DecisionTreeClassifier(max_depth=self.max_depth, min_samples_leaf=self.min_samples_leaf,
                                            random_state=self.random_state)
        # X is checked above and float32 without NaN here: scikit-learn's own input checks
        # (check_input=False skips them) would only copy it again, at every one of the many
        # fits a screen makes
        allowed = None
        state = X.shape[1] - 1
        if self.columns is None and not self.stateless:
            X_fit = np.nan_to_num(X, nan=0.0)
        else:
            # Fitted on the allowed columns only (a tree's cost grows with its columns), then
            # its nodes renumbered to X's columns: it reads X as if fitted on all of it.
            columns = range(state) if self.columns is None else self.columns
            allowed = np.asarray(sorted(set(int(j) for j in columns) - {state}) + ([] if self.stateless else [state]),
                                 dtype=np.intp)
            X_fit = np.nan_to_num(X[:, allowed], nan=0.0)
        fitted_on = np.arange(X.shape[1], dtype=np.intp) if allowed is None else allowed
        boundaries = None
        if self.natural and self.snap_candidates:
            X_fit, fitted_on, boundaries = _natural_design(X_fit, fitted_on, self.snap_candidates, state)
        self.tree_.fit(X_fit, y, sample_weight=sample_weight, check_input=False)
        if self.by_state:
            self.tree_.tree_ = _tree_by_state(X_fit, y, sample_weight, self.tree_)
        if allowed is not None or boundaries is not None:
            t = self.tree_.tree_
            internal = np.flatnonzero(t.children_left >= 0)
            if boundaries is not None:  # ``column > boundary`` ≤ 0.5 is ``column`` ≤ boundary
                at = boundaries[t.feature[internal]]
                split = ~np.isnan(at)
                t.threshold[internal[split]] = at[split]
            t.feature[internal] = fitted_on[t.feature[internal]]
            self.tree_.n_features_in_ = X.shape[1]
        self.classes_ = self.tree_.classes_
        self.n_features_in_ = X.shape[1]
        self.states_ = np.array(sorted(set(np.unique(X[:, -1]).tolist()) | set(self.classes_.tolist()) | {0.0}))
        self.snapped_ = self._snap(np.nan_to_num(X, nan=0.0)) if self.snap and self.snap_candidates else 0
        self._compact_walk_tree()
        return self

    def predict(self, X):
        check_is_fitted(self, "tree_")
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise InputError(f"X must be (n, {self.n_features_in_}), got {X.shape}")
        return self.tree_.predict(np.nan_to_num(X, nan=0.0), check_input=False)

    def splits_on_state(self) -> bool:
        t = self.tree_.tree_
        return bool(np.any(t.feature[t.children_left >= 0] == self.n_features_in_ - 1))

    def splits_on_trade(self) -> bool:
        """Whether the tree reads a trade column (the walk then goes trade by trade)."""
        return bool(self.trade_names) and any(j >= self._n_columns for j in self.walk_columns_)

    def needs_trade(self) -> bool:
        """Whether :meth:`walk` needs ``trade`` (trade columns, or protective or entry orders
        to fill)."""
        return self.protection is not None or self.entry is not None or self.splits_on_trade()

    @property
    def _n_columns(self) -> int:
        return self.n_features_in_ - 1 - len(self.trade_names)

    def walk(self, F, start_state: float = 0.0, *, restarts=None, trade=None) -> np.ndarray:
        """Positions over ``F`` (the columns, without trade columns or state), carrying the
        state bar to bar.

        Rows with a NaN in a column the tree splits on (indicator warm-up) decide flat, as a
        strategy does before its indicators are ready. Only those columns are read (a
        column-major ``F`` reads fastest); the others may hold anything. ``restarts``
        (``{row: state}``) walks several stretches at once: at each such row the state
        before it is taken to be the given one, whatever the walk carried there
        (``start_state`` is the restart at row 0). A tree that reads trade columns needs
        ``trade`` (:class:`~.trade_state.TradeInputs` over the same rows) and, for a restart
        inside a position, its :class:`~.trade_state.TradeContext` as the state
        (``{row: TradeContext}``). So does one with ``protection`` or ``entry``; its walk is
        a :class:`WalkedPath`, whose ``exits`` say where protective orders closed a position
        and ``entries`` where entry orders were sent and filled.
        """
        check_is_fitted(self, "tree_")
        F = np.asarray(F)
        n_columns = self._n_columns
        if F.ndim != 2 or F.shape[1] != n_columns:
            raise InputError(f"F must be (n, {n_columns}) columns, got {F.shape}")
        n = len(F)
        states = self.states_
        X, warm = self._walk_matrix(F)
        index = {float(s): i for i, s in enumerate(states)}
        zero = index[0.0]
        if self.needs_trade():
            if trade is None:
                raise InputError("this surrogate reads trade columns or fills protective orders: "
                                 "walk(..., trade=TradeInputs)")
            return self._walk_trades(X, warm, trade, start_state, restarts or {})
        table = np.empty((n, len(states)), dtype=np.int8)
        if self.splits_on_state():
            for j, s in enumerate(states):
                X[:, -1] = s
                table[:, j] = self.walk_leaf_state_[self.walk_tree_.apply(X)]
        else:
            X[:, -1] = 0.0
            table[:] = self.walk_leaf_state_[self.walk_tree_.apply(X)][:, None]
        table[warm] = zero
        for row, state in (restarts or {}).items():
            # whatever came before, this bar moves on from ``state``: a constant map
            state = state.state if isinstance(state, TradeContext) else state
            table[row] = table[row, index.get(float(state), zero)]
        path = carry_states(table, index.get(float(start_state), zero))
        return states[path]

    def decide_flat(self, F) -> np.ndarray:
        """What the tree decides at each row of ``F`` (as :meth:`walk`'s columns) when flat
        at that row's close — no trade columns then: an opening the broker dropped for cash
        leaves the strategy flat, whatever the walk carried."""
        check_is_fitted(self, "tree_")
        X, warm = self._walk_matrix(np.asarray(F))
        X[:, -1] = 0.0
        decided = self.states_[self.walk_leaf_state_[self.walk_tree_.apply(X)]]
        decided[warm] = 0.0
        return decided

    def _walk_matrix(self, F) -> tuple[np.ndarray, np.ndarray]:
        """``(X, warm)``: the columns the compact tree reads, then a state column to fill,
        column-major; trade columns 0 (flat; the walk fills them trade by trade); a NaN
        (indicator warm-up) as 0 with its row marked in ``warm``."""
        X = np.empty((len(F), len(self.walk_columns_) + 1), dtype=np.float32, order="F")
        warm = np.zeros(len(F), dtype=bool)
        for k, j in enumerate(self.walk_columns_):
            if j >= self._n_columns:
                X[:, k] = 0.0
                continue
            X[:, k] = F[:, j]
            missing = np.isnan(X[:, k])
            warm |= missing
            X[missing, k] = 0.0
        return X, warm

    def _walk_trades(self, X, warm, trade, start_state, restarts) -> np.ndarray:
        """The walk of a tree that reads trade columns: flat stretches at once (the next
        entry is the next row whose flat decision moves), each trade in growing chunks whose
        trade columns are computed from its entry, up to the row that leaves it — over a long
        walk with market entries, the first chunk of many trades in one pass
        (:meth:`_first_exits`)."""
        n = len(X)
        states = self.states_
        index = {float(s): i for i, s in enumerate(states)}
        zero = index[0.0]
        trade_at = {j: k for k, j in enumerate(self.walk_columns_) if j >= self._n_columns}
        names = [self.trade_names[j - self._n_columns] for j in trade_at]
        slots = list(trade_at.values())
        X[:, -1] = 0.0
        flat_next = self.walk_leaf_state_[self.walk_tree_.apply(X)]
        flat_next[warm] = zero
        moves = np.flatnonzero(flat_next != zero)
        path = np.empty(n, dtype=np.int8)
        protection, exit_rows, exit_prices = self.protection, [], []
        sent_rows, fill_rows, fill_prices, fill_sides, waits = [], [], [], [], []

        def enter(t1, b):
            """From flat, the tree's entry ordered at ``t1``'s close (``path[t1]``): ``(state,
            next row to decide, trade context)`` — a market order fills at the next open; an
            entry order is tried on the bars after, within the stretch ending at ``b``, and
            the rows it works on decide nothing."""
            s = path[t1]
            if self.entry is None:
                return s, t1 + 1, _entered(states[s], trade, t1 + 1)
            f, price, side, stop = _entry_fill(self.entry, states[s], trade, t1, b)
            sent_rows.append(t1)
            fill_rows.append(f)
            fill_prices.append(price)
            fill_sides.append(side)
            if f < 0:
                path[t1 + 1:stop] = zero
                waits.append((t1 + 1, stop))
                return zero, stop, None
            path[t1 + 1:f] = zero
            waits.append((t1 + 1, f))
            if side not in index:  # an OCO pair filled the way no recorded trade went
                raise InputError(f"the walk's entry order at row {t1} opened a position of sign {side:+.0f}, "
                                 "one the recorded episodes never held")
            return index[side], f, TradeContext.signalled(side, price, trade, f, lag=f - t1)

        # Market entries without protective orders, over many rows: the first rows of the trades
        # entered after many candidate entries (rows whose flat decision moves) are decided in
        # one pass; the walk then chains them (each next entry is the first candidate after the
        # last exit), trade by trade only where a trade outlasts those rows or reverses. (An
        # episode's few trades cost less one at a time than a pass over a block of candidates.)
        quick = protection is None and self.entry is None and n >= _QUICK_WALK
        first_exits: dict = {}

        def first_exit(k, b):
            """``(offset of the row that leaves it or -1, the decision there, whether its rows
            reach ``b``)`` of the trade entered after ``moves[k]``, within the stretch ending at ``b``."""
            block = k // _QUICK_ENTRIES
            found = first_exits.get((block, b))
            if found is None:
                found = first_exits[(block, b)] = self._first_exits(
                    X, warm, trade, names, slots, moves[block * _QUICK_ENTRIES:(block + 1) * _QUICK_ENTRIES],
                    flat_next, b, zero)
            at = k - block * _QUICK_ENTRIES
            return int(found[0][at]), found[1][at], bool(found[2][at])

        starts = sorted({0, *restarts})
        for a, b in zip(starts, starts[1:] + [n]):
            given = restarts.get(a, start_state if a == 0 else 0.0)
            context = given if isinstance(given, TradeContext) else None
            s = index.get(float(given.state if context else given), zero)
            if s != zero and context is None:
                raise InputError(f"a restart inside a position (row {a}) needs its TradeContext")
            t, chunk = a, 32
            while t < b:
                if s == zero:
                    k = np.searchsorted(moves, t)
                    if k == len(moves) or moves[k] >= b:
                        path[t:b] = zero
                        break
                    t1 = int(moves[k])
                    path[t:t1] = zero
                    path[t1] = flat_next[t1]
                    chunk = 32
                    if quick:
                        s, t = path[t1], t1 + 1
                        j, decision, ends = first_exit(int(k), b)
                        if j >= 0:
                            path[t:t + j] = s
                            s = path[t + j] = decision
                            t += j + 1
                            context = _entered(states[s], trade, t) if s != zero else None
                        elif ends:
                            path[t:b] = s
                            t = b
                        else:  # a trade longer than the rows decided in one pass: on from their end
                            path[t:t + _QUICK_ROWS] = s
                            context = held_columns(_entered(states[s], trade, t), trade, t, t + _QUICK_ROWS, ())[1]
                            t, chunk = t + _QUICK_ROWS, 2 * _QUICK_ROWS
                        continue
                    s, t, context = enter(t1, b)
                    continue
                rows = slice(t, min(b, t + chunk))
                columns, after = held_columns(context, trade, rows.start, rows.stop, names)
                Xc = X[rows].copy(order="F")
                Xc[:, -1] = states[s]
                Xc[:, slots] = columns
                decided = self.walk_leaf_state_[self.walk_tree_.apply(Xc)]
                decided[warm[rows]] = zero
                leave = np.flatnonzero(decided != s)
                if protection is not None:
                    # Its orders are tried up to the bar whose close orders anything else
                    # (the strategy cancels them there); one that fills closes the trade.
                    last = rows.stop if not len(leave) else t + int(leave[0]) + 1
                    row, price, after = _protective_exit(protection, context, trade, t, last, after)
                    if row >= 0:
                        exit_rows.append(row)
                        exit_prices.append(price)
                        path[t:row] = s
                        path[row] = flat_next[row]  # flat at that close: it decides from flat
                        s, t, context = enter(row, b) if path[row] != zero else (zero, row + 1, None)
                        chunk = 32
                        continue
                if not len(leave):
                    path[rows] = s
                    context = after
                    t, chunk = rows.stop, chunk * 2
                    continue
                k = int(leave[0])
                path[t:t + k] = s
                s = path[t + k] = decided[k]
                t, chunk = t + k + 1, 32
                context = _entered(states[s], trade, t) if s != zero else None
        if protection is None and self.entry is None:
            return states[path]
        out = states[path].view(WalkedPath)
        if protection is not None:
            out.exits = (np.asarray(exit_rows, dtype=np.int64), np.asarray(exit_prices, dtype=np.float64))
        if self.entry is not None:
            out.entries = (np.asarray(sent_rows, dtype=np.int64), np.asarray(fill_rows, dtype=np.int64),
                           np.asarray(fill_prices, dtype=np.float64), np.asarray(fill_sides, dtype=np.float64))
            out.waiting = np.zeros(n, dtype=bool)
            for a, b in waits:
                out.waiting[a:b] = True
        return out

    def _first_exits(self, X, warm, trade, names, slots, signals, flat_next, stop, zero) -> tuple:
        """For trades entered by market orders after each row of ``signals`` (in the state
        ``flat_next`` decides there), over their first :data:`_QUICK_ROWS` rows before
        ``stop``: the offset of the row whose decision leaves each (-1: none), the decision
        there, and whether those rows reach ``stop`` (:meth:`_walk_trades`' rows one trade
        at a time, many trades in one pass; ``zero``: the flat state's index)."""
        entries = np.asarray(signals, dtype=np.int64) + 1
        held = flat_next[signals]
        rows = entries[:, None] + np.arange(_QUICK_ROWS)
        inside = rows < stop
        rows = np.minimum(rows, len(X) - 1)
        Xq = X[rows.ravel()]
        Xq[:, -1] = np.repeat(self.states_[held], _QUICK_ROWS)
        Xq[:, slots] = entered_columns(trade, entries, _QUICK_ROWS, names).reshape(len(Xq), len(names))
        decided = self.walk_leaf_state_[self.walk_tree_.apply(Xq)].reshape(rows.shape)
        decided[warm[rows]] = zero
        leave = (decided != held[:, None]) & inside
        first = np.where(leave.any(axis=1), leave.argmax(axis=1), -1)
        return first, decided[np.arange(len(entries)), np.maximum(first, 0)], entries + _QUICK_ROWS >= stop

    def _compact_walk_tree(self) -> None:
        """A copy of the fitted (snapped) tree that reads only the columns it splits on.

        The walk runs the tree's own traversal (``Tree.apply``, which takes any float32 matrix
        and follows its strides) on ``[used columns..., state]``: the estimator's ``predict``
        would validate and copy every bank column, several times the cost over 10^5 bars.
        """
        tree = self.tree_.tree_
        state_column = self.n_features_in_ - 1
        internal = tree.children_left >= 0
        self.walk_columns_ = sorted(set(int(f) for f in tree.feature[internal]) - {state_column})
        compact = {j: k for k, j in enumerate(self.walk_columns_)}
        compact[state_column] = len(self.walk_columns_)
        self.walk_tree_ = copy.deepcopy(tree)
        feature = self.walk_tree_.feature  # a view of the copy's nodes: written in place
        for node in np.flatnonzero(internal):
            feature[node] = compact[int(feature[node])]
        self.walk_leaf_state_ = _to_index(self.classes_[np.argmax(tree.value[:, 0, :], axis=1)], self.states_)

    def _snap(self, X) -> int:
        t = self.tree_.tree_
        internal = np.flatnonzero(t.children_left >= 0)
        if len(internal) == 0:
            return 0
        path = self.tree_.decision_path(np.asarray(X, dtype=np.float32), check_input=False).tocsc()
        moved, baseline, X32, leaf_class = 0, None, None, None
        prefer = set(float(c) for c in self.snap_prefer or ())
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
                best = min(ok, key=lambda c: (c not in prefer, abs(c - thr)))
                if best != thr:
                    t.threshold[node] = best
                    moved += 1
                continue
            # No boundary in the gap: a greedy split of a conjunction (``cci[-1] > 150 and
            # cci <= 150``) often sits beside the rule's level because the rows between fell
            # the same way by chance. Move it to the nearest boundary inside the values that
            # reach the node when no training prediction changes.
            if baseline is None:  # the tree's own traversal: predict() would validate X each time
                X32 = np.ascontiguousarray(X, dtype=np.float32)
                leaf_class = np.argmax(t.value[:, 0, :], axis=1)
                baseline = leaf_class[t.apply(X32)]
            # only the rows reaching this node can change their leaf when its threshold moves
            reaching, before = X32[rows], baseline[rows]
            low, high = vals.min(), vals.max()
            for c in sorted((c for c in cands if low <= c < high), key=lambda c: (c not in prefer, abs(c - thr))):
                t.threshold[node] = c
                if np.array_equal(leaf_class[t.apply(reaching)], before):
                    moved += 1
                    break
                t.threshold[node] = thr
        return moved


class WalkedPath(np.ndarray):
    """A walk's positions (one per bar, as decided at its close; an entry order's side at the
    close that sends it, flat while it works), ``exits``: ``(rows, prices)`` where a
    protective order closed the position inside a bar, and ``entries``: ``(sent, filled,
    prices, sides)`` of its entry orders (``filled`` -1: withdrawn unfilled; ``sides``: the
    position each opened, the other way from ``sent``'s for an OCO pair's other order) — what
    :func:`distillbt.vectorised.simulate` takes as ``exits`` and ``entries`` — and
    ``waiting``, the rows an entry order works on (nothing is decided there; None without
    entry orders). Slices and copies are plain positions (all None): they belong to the
    whole walk."""

    exits = None
    entries = None
    waiting = None

    def __array_finalize__(self, obj):
        self.exits = self.entries = self.waiting = None


def read_states(path) -> np.ndarray:
    """The state each of ``path``'s decisions reads: the position decided at the close
    before, flat where a protective order closed it inside the bar (a walk's ``exits``) and
    while an entry order works, held from the bar one filled in (its ``entries``)."""
    values = np.asarray(path, dtype=np.float64)
    prev = np.concatenate(([0.0], values[:-1]))
    exits = getattr(path, "exits", None)
    if exits is not None:
        prev[exits[0]] = 0.0
    entries = getattr(path, "entries", None)
    if entries is not None:
        sent, filled, _, sides = entries
        after = sent + 1
        prev[after[after < len(prev)]] = 0.0
        done = filled >= 0
        prev[filled[done]] = sides[done]
    return prev


def _protective_exit(protection, context, trade, start, stop, after):
    """``(row, price, context after)``: where ``protection``'s orders close the trade
    ``context`` (held before row ``start``) among rows ``[start, stop)``, or ``(-1, nan, …)``
    with ``after`` (the context at ``stop - 1``'s close) carrying their prices on."""
    side = context.state
    first = start + 1 if context.bars == 0 else start  # the entry bar: orders are first tried on the next
    levels = context.levels
    if levels is None:
        levels = protective_levels(protection, context, trade, start)
    sl = slice(first, stop)
    f, price = protection.first_exit(side, levels, trade.open[sl], trade.high[sl], trade.low[sl], trade.close[sl])
    if f >= 0:
        return first + f, price, None
    return -1, math.nan, dataclasses.replace(after, levels=protection.after(side, levels, trade.close[sl]))


def _entry_fill(entry, side, trade, sent, stop) -> tuple[int, float, float, int]:
    """``(row, price, side filled, end)``: where ``entry``, sent at row ``sent``'s close for
    a position of sign ``side``, fills among the rows before ``stop`` (-1, nan), and the row
    where the strategy decides again when it does not fill: the one after the last it may be
    tried on, or that last one when the strategy withdraws it there and decides at once
    (``entry.again``)."""
    end = stop if entry.lifetime is None else min(stop, sent + 1 + entry.lifetime)
    rows = slice(sent + 1, end)
    f, price, filled = entry.send(float(side), float(trade.close[sent]), lambda name: float(trade.lines[name][sent]),
                                  trade.open[rows], trade.high[rows], trade.low[rows], trade.close[rows])
    if f >= 0:
        return sent + 1 + f, price, float(filled), end
    return -1, math.nan, float(side), end - 1 if entry.again and end == sent + 1 + entry.lifetime else end


#: Candidate entries, and rows of each trade, decided in one pass by a walk of at least
#: ``_QUICK_WALK`` rows with market entries (:meth:`PositionSurrogate._first_exits`): most
#: trades end within the rows, and a block of entries costs a few trades' walks one at a time.
_QUICK_ENTRIES, _QUICK_ROWS, _QUICK_WALK = 512, 32, 5_000


def _entered(state, trade, t) -> TradeContext:
    """The trade entered at the open of row ``t`` (ordered at row ``t - 1``'s close)."""
    price = float(trade.open[t]) if t < len(trade.open) else np.nan
    return TradeContext.signalled(float(state), price, trade, t)


def _natural_design(X_fit, fitted_on, candidates, state: int):
    """``(design, column of X per design column, boundary per design column)``: each column of
    ``X_fit`` (column ``fitted_on[k]`` of X) with natural boundaries as the indicators ``> b``
    of each (float32 0/1; boundary ``b``), the others — the state, counts — as they are
    (boundary NaN), the state last."""
    parts, origin, boundary = [], [], []
    for k, j in enumerate(fitted_on.tolist()):
        column = X_fit[:, k]
        # a count (bars held) splits anywhere between its values, as a greedy tree's does
        found = sorted(set(float(c) for c in candidates.get(j, ()))) \
            if j != state and not np.array_equal(column, np.round(column)) else []
        if not found:
            parts.append(X_fit[:, k:k + 1])
            origin.append(j)
            boundary.append(np.nan)
            continue
        parts.append((X_fit[:, k:k + 1] > np.asarray(found, dtype=np.float32)).astype(np.float32))
        origin += [j] * len(found)
        boundary += found
    last = [i for i, j in enumerate(origin) if j == state]  # the state stays last (by_state reads it there)
    order = [i for i in range(len(origin)) if i not in last] + last
    design = np.concatenate(parts, axis=1)[:, order]
    return (np.asfortranarray(design), np.asarray(origin, dtype=np.intp)[order],
            np.asarray(boundary, dtype=np.float64)[order])


def _tree_by_state(X, y, sample_weight, fitted: DecisionTreeClassifier):
    """One scikit-learn ``Tree`` whose root splits on the state (``X``'s last column: -1, 0,
    1) and, under each state, a tree like ``fitted`` (same parameters) grown on that state's
    rows alone; its leaves' values laid out in ``fitted.classes_``."""
    state = X[:, -1]
    values_of = np.unique(state)
    classes = fitted.classes_
    sub_nodes, sub_values, sub_depths = [], [], []
    for value in values_of:
        rows = state == value
        sub = DecisionTreeClassifier(**fitted.get_params()).fit(
            X[rows], y[rows], sample_weight=None if sample_weight is None else sample_weight[rows], check_input=False)
        kept = sub.tree_.__getstate__()
        laid_out = np.zeros((kept["node_count"], 1, len(classes)))
        laid_out[:, 0, np.searchsorted(classes, sub.classes_)] = kept["values"][:, 0, :len(sub.classes_)]
        sub_nodes.append(kept["nodes"])
        sub_values.append(laid_out)
        sub_depths.append(int(kept["max_depth"]))
    dtype = sub_nodes[0].dtype
    n_splits = len(values_of) - 1  # a chain of splits on the state: <= between each pair of values
    nodes = [np.zeros(n_splits, dtype=dtype)]
    values = [np.zeros((n_splits, 1, len(classes)))]
    offset = n_splits
    firsts = []
    for kept_nodes, kept_values in zip(sub_nodes, sub_values):
        moved = kept_nodes.copy()
        internal = moved["left_child"] >= 0
        moved["left_child"][internal] += offset
        moved["right_child"][internal] += offset
        firsts.append(offset)
        nodes.append(moved)
        values.append(kept_values)
        offset += len(moved)
    chain = nodes[0]
    state_column = X.shape[1] - 1
    for k in range(n_splits):
        chain[k]["feature"] = state_column
        chain[k]["threshold"] = (float(values_of[k]) + float(values_of[k + 1])) / 2.0
        chain[k]["left_child"] = firsts[k]
        chain[k]["right_child"] = k + 1 if k + 1 < n_splits else firsts[k + 1]
        below = state > values_of[k - 1] if k else np.ones(len(state), dtype=bool)
        chain[k]["n_node_samples"] = chain[k]["weighted_n_node_samples"] = int(below.sum())
        values[0][k, 0] = [np.mean(y[below] == c) for c in classes]
    tree = type(fitted.tree_)(*fitted.tree_.__reduce__()[1])
    tree.__setstate__({"max_depth": n_splits + max(sub_depths), "node_count": offset,
                       "nodes": np.concatenate(nodes), "values": np.ascontiguousarray(np.concatenate(values))})
    return tree


def _to_index(pred, states) -> np.ndarray:
    return np.searchsorted(states, np.asarray(pred, dtype=np.float64)).astype(np.int8)
