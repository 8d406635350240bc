"""Fitting a plain configuration's surrogate and measuring how far it can be trusted.

:func:`fit_and_trust` fits the :class:`~.model.PositionSurrogate` on the recorded decisions,
held out by blocks (agreement, P&L gap, threshold gap), then on all of them, and walks the
screening period; :func:`is_trusted` applies the thresholds (their calibration is in
:mod:`distillbt.surrogate.api`'s docstring); :func:`deficits` names the transitions seen too
rarely, which escalation looks for.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np

from .model import PositionSurrogate, read_states
from .own_features import is_own, windows_read
from .plan import code_levels, snap_candidates
from .recorder import NO_LABEL
from .trade_state import TradeContext, TradeInputs, context_at, held_runs, protective_levels, trade_columns

__all__ = ["fit_and_trust", "walk_and_trust", "spot_check", "Evidence", "is_trusted", "deficits", "used_columns"]


def _training_rows(rec, episode_bank, columns, which, part=slice(None)):
    """Stack (features, state) → target over the episodes ``which`` of one recording, over
    the bars ``part`` (a slice, or a function of the episode length giving one)."""
    X, y = [], []
    pos = {e: k for k, e in enumerate(rec["episodes"])}
    for e in which:
        k = pos[e]
        sl = part(len(rec["state"][k])) if callable(part) else part
        st, tg = rec["state"][k][sl], rec["target"][k][sl]
        F = episode_bank[e][sl][:, columns]
        ok = (tg != NO_LABEL) & ~np.isnan(F).any(axis=1)
        X.append(np.column_stack([F[ok], st[ok].astype(np.float32)]))
        y.append(tg[ok])
    return np.concatenate(X), np.concatenate(y)


def _transitions(state, target, states):
    out = {}
    for s in states:
        out[float(s)] = {"out": int(np.sum((state == s) & (target != s))),
                         "into": int(np.sum((state != s) & (target == s))),
                         "bars": int(np.sum(state == s))}
    return out


def used_columns(model) -> list[int]:
    """Bank columns (not the state) the fitted tree splits on."""
    t = model.tree_.tree_
    f = t.feature[t.children_left >= 0]
    return sorted(set(int(j) for j in f if j != model.n_features_in_ - 1))


def fit_and_trust(rec, plan, bank_of, screen_columns, *, max_depth, seed, commission=0.001, fraction=0.95,
                   folds=3, trade_of=None, screen_trade=None, thresholds=None, screen_bars=None, give_up=False,
                   fill=None):
    """Fit on held-in bars, agreement and P&L gap on held-out ones, refit on all; coverage
    and rates. Returns ``(model, path, trust, evidence)`` (:class:`Evidence`: what
    :func:`walk_and_trust` needs to walk the model on another screening period).

    ``bank_of(e)`` is episode ``e``'s bank (this configuration's columns, computed from the
    bar its own feed started at); ``screen_columns(names)`` the screening period's columns.
    Held out: the last three quarters of every episode are cut in ``folds`` blocks; fold ``k``
    fits on everything but block ``k`` and walks block ``k`` of every episode from the state
    the strategy really held there. The first quarter is always fitted on: an episode starts
    flat with its indicators already set (an event strategy waits for the next cross), a
    situation the screening period shows once and a tree never shown it would fail on. ``agreement`` is the share of held-out bars whose position the walks got
    right; ``pnl_gap`` what the walks' mistakes would have cost or earned — per held-out bar
    ``fraction × (walk − real) × next bar's return``, minus the commission of the trades only
    one of them made — summed per block and scaled to the screening period's length as a
    random walk (``sqrt(Σ block² × screen bars / held-out bars)``, log-return units: the
    error the screen's score would carry); ``pnl_bias`` the same sum scaled linearly (a
    systematic gap).

    With trade columns (``plan.trade``), ``trade_of(e)`` gives episode ``e``'s
    :class:`~.trade_state.TradeInputs` and ``screen_trade()`` the screening period's; the
    training rows carry the trade the strategy really was in, the walks the one they carry.

    ``thresholds``, ``screen_bars`` (:func:`is_trusted`'s keywords; the screening period's
    length) and ``fill``: as :func:`walk_and_trust`'s.

    ``give_up`` (with ``thresholds``), for a caller that replays or backtests in full every
    configuration its episodes fail and asks nothing more of its surrogate: the folds stop as
    soon as the held-out agreement cannot reach ``min_agreement`` any more, even were every
    bar still to walk right, and nothing else is fitted or walked. The model, path and
    evidence are then None, and the trust says ``agreement`` on the bars walked so far (which
    fails the check, as the whole would have), ``folds_walked`` and ``walked: False``.
    Returning early saves the folds left and the final fit, whose search over column sets
    costs most for what the episodes cannot teach. No trusted configuration changes: one
    that gives up would have failed ``agreement`` anyway."""
    trade = list(plan.trade) if trade_of is not None else []
    cands = snap_candidates(plan.features + trade, plan.thresholds, plan.own)
    model_kw = dict(max_depth=max_depth, snap_candidates=cands, snap_prefer=code_levels(plan.thresholds),
                    random_state=seed, trade_names=tuple(trade),
                    protection=rec.get("protection"), entry=rec.get("entry"))
    recorded = list(rec["episodes"])
    n_cols = len(plan.features)
    inputs = _recorded_inputs(rec, trade_of) if trade_of is not None else {}
    banks = {}
    for k, e in enumerate(recorded):
        banks[e] = bank_of(e)
        if trade:  # the trade the strategy was in, bar by bar
            banks[e] = np.column_stack([banks[e], trade_columns(rec["state"][k], inputs[e], trade)])
    cols = list(range(n_cols + len(trade)))
    anonymous = {j for j, n in enumerate(plan.features) if plan.own is not None and plan.own.anonymous(n)}
    read = windows = None
    if plan.own is not None and rec.get("reads") is not None:
        seen = set(plan.own.read_columns(rec["reads"]))
        read = [j for j, n in enumerate(plan.features) if n in seen]
        spans = set(windows_read(rec["reads"]))
        windows = [j for j, n in enumerate(plan.features) if n in spans]
    column_sets, trade_cols, read_sets = _column_sets(plan.features, trade, anonymous, read, windows)
    ret_col = plan.features.index("ret:1") if "ret:1" in plan.features else None
    lengths = [len(rec["state"][k]) for k in range(len(recorded))]

    def block(n, k):
        edges = np.linspace(n // 4, n, folds + 1).round().astype(int)
        return slice(int(edges[k]), int(edges[k + 1]))

    X_all, y_all = _training_rows(rec, banks, cols, recorded)
    discrete = _discrete_columns(X_all)  # of all the rows: the folds judge splits as the final fit does
    agreement, hits, seen_bars, sums, n_held = None, 0, 0, [], 0
    # labelled bars each fold can add at most: what the agreement could still gain
    most = [sum(block(n, k).stop - block(n, k).start for n in lengths) for k in range(folds)]
    for k in range(folds):
        X, y = [], []
        for e_i, e in enumerate(recorded):
            n = lengths[e_i]
            out_ = block(n, k)
            keep = np.ones(n, dtype=bool)
            keep[out_] = False
            Xe, ye = _training_rows(rec, banks, cols, [e], lambda _n, keep=keep: keep)
            X.append(Xe)
            y.append(ye)
        X, y = np.concatenate(X), np.concatenate(y)
        if len(y) == 0 or len(np.unique(y)) < 2:
            continue
        m = _fit_simplest(X, y, column_sets, model_kw, anonymous=anonymous, tie_breaks=1, trade=trade_cols,
                          read_sets=read_sets, discrete=discrete)  # alternatives: final fit
        walked = _held_out_walk(m, rec, banks, inputs, recorded, [block(n, k) for n in lengths], n_cols=n_cols,
                                ret_col=ret_col, commission=commission, fraction=fraction)
        hits, seen_bars, n_held = hits + walked[0], seen_bars + walked[1], n_held + walked[3]
        sums += walked[2]
        rest = sum(most[k + 1:])
        if give_up and thresholds is not None and seen_bars and \
                (hits + rest) / (seen_bars + rest) < thresholds["min_agreement"]:
            return None, None, {"agreement": hits / seen_bars, "folds_walked": k + 1, "heldout_bars": int(n_held),
                                "episodes": len(recorded), "bars_fed": int(rec.get("bars_fed", 0)),
                                **_NOT_WALKED}, None
    if seen_bars:
        agreement = hits / seen_bars
    X, y = X_all, y_all
    model = _fit_simplest(X, y, column_sets, model_kw, anonymous=anonymous, trade=trade_cols, read_sets=read_sets,
                          discrete=discrete)
    # The threshold gap trusts a split at 0 or at a level of a line without units (RSI 30);
    # a band guessed from a fractional parameter may sit on the wrong ratio (close/sma or
    # sma/close): its gap is measured like any other split's.
    firm = {j: [c for c in v if c == 0.0] if j < len(plan.features) and plan.own is not None
            and plan.features[j] in plan.own.specs and plan.own.specs[plan.features[j]].ratio else v
            for j, v in cands.items()}
    evidence = Evidence(X=X, y=y, cands=firm, sums=sums, n_held=n_held, agreement=agreement,
                        ret_col=ret_col, episodes=len(recorded), bars_fed=int(rec.get("bars_fed", 0)),
                        longest_hold=max(_longest_hold(st) for st in rec["state"]))
    path, trust = walk_and_trust(model, plan, evidence, screen_columns, commission=commission, fraction=fraction,
                                 screen_trade=screen_trade, thresholds=thresholds, screen_bars=screen_bars, fill=fill)
    return model, path, trust, evidence


def _held_out_walk(model, rec, banks, inputs, recorded, slices, *, n_cols, ret_col, commission, fraction):
    """``(hits, labelled bars, per-slice P&L differences, bars walked)`` of ``model`` walked over
    ``slices[j]`` of recorded episode ``recorded[j]`` (``banks[e]``: its columns), each walk
    starting from the state — and trade — the strategy really held there (see
    :func:`fit_and_trust` for the P&L difference), and restarting from it wherever the broker
    did not fill what the strategy decided (an opening dropped for cash: the strategy is flat
    at the next close; the screen's walk finds those bars by filling its own orders,
    :func:`settled_walk`)."""
    trade = bool(inputs)
    F = np.concatenate([banks[e][sl, :n_cols] for e, sl in zip(recorded, slices)])
    starts = np.cumsum([0] + [sl.stop - sl.start for sl in slices[:-1]])
    restarts = {}
    for j, (e, sl, at) in enumerate(zip(recorded, slices, starts.tolist())):
        if sl.stop <= sl.start:
            continue
        state, target = rec["state"][j], rec["target"][j]
        # not filled as decided, from a decision to change: a protective order closing a
        # position held as decided is the walk's to find, and so is an entry order's fill
        # (sent from flat; nothing is decided while it works)
        before, decided = state[sl.start:sl.stop - 1], target[sl.start:sl.stop - 1]
        unfilled = np.flatnonzero((state[sl.start + 1:sl.stop] != decided) & (before != decided)
                                  & (decided != NO_LABEL) & ((before != 0) | (model.entry is None))) + sl.start + 1
        # and where the broker refused an entry order for cash (the strategy is flat there)
        refused = (rec.get("entry_refused") or [np.zeros(0, dtype=np.int64)] * len(recorded))[j]
        rows = [sl.start, *unfilled.tolist(), *refused[(refused > sl.start) & (refused < sl.stop)].tolist()]
        if target[sl.start] == NO_LABEL:  # inside an entry order's wait: from the first decision after it
            labelled = np.flatnonzero(target[sl.start:sl.stop] != NO_LABEL)
            rows += [sl.start + int(labelled[0])] if len(labelled) else []
        for row in rows:
            restarts[at + row - sl.start] = _restart(state, inputs.get(e), row, model.protection)
    held_out = _concatenated([inputs[e].rows(sl) for e, sl in zip(recorded, slices)]) if trade else None
    walk = model.walk(F, restarts=restarts, trade=held_out)
    walk_prev = read_states(walk)
    for row, given in restarts.items():  # the state a restarted decision reads is the one given
        walk_prev[row] = given.state if isinstance(given, TradeContext) else given
    hits = seen_bars = n_held = 0
    sums, at = [], 0
    for j, (e, sl) in enumerate(zip(recorded, slices)):
        w = walk[at:at + sl.stop - sl.start]
        w_prev = walk_prev[at:at + sl.stop - sl.start]
        at += sl.stop - sl.start
        if not len(w):
            continue
        tg = rec["target"][j][sl].astype(np.float64)
        st = rec["state"][j][sl].astype(np.float64)
        ok = tg != NO_LABEL
        hits += int(np.sum(w[ok] == tg[ok]))
        seen_bars += int(ok.sum())
        if ret_col is None:
            continue
        r_all = banks[e][:, ret_col].astype(np.float64)
        r_next = np.nan_to_num(np.concatenate((r_all[1:], [0.0]))[sl])
        tg_ok = np.where(ok, tg, w)  # (w_prev's first bar is the restart's: the state held there)
        d = fraction * (w - tg_ok) * r_next
        d -= commission * fraction * (np.abs(w - w_prev) - np.abs(tg_ok - st))
        d[~ok] = 0.0  # no decision recorded (an entry order working, the last bar): nothing to judge
        sums.append(float(d.sum()))
        n_held += len(w)
    return hits, seen_bars, sums, n_held


def spot_check(model, plan, rec, bank_of, *, screen_bars: int, trade_of=None, commission=0.001,
               fraction=0.95) -> dict:
    """The fitted surrogate on episodes it never saw: each of ``rec``'s recorded episodes (the
    strategy's real decisions on windows it was not fitted on) walked whole from the state the
    strategy held at its first bar. ``spot_agreement``:
    the share of their bars it decides as the strategy did; ``spot_gap``: what its mistakes
    cost or earned, scaled to the ``screen_bars`` of the screening period as
    :func:`fit_and_trust` scales ``pnl_gap`` (log-return units). Unlike the held-out blocks,
    which come from the episodes it was fitted on, these come from elsewhere in time: a rule
    the training episodes never showed (a time exit that never had to act there) shows up."""
    recorded = list(rec["episodes"])
    n_cols = len(plan.features)
    inputs = _recorded_inputs(rec, trade_of) if trade_of is not None and model.needs_trade() else {}
    banks = {e: bank_of(e) for e in recorded}
    ret_col = plan.features.index("ret:1") if "ret:1" in plan.features else None
    slices = [slice(0, len(rec["state"][k])) for k in range(len(recorded))]
    hits, seen_bars, sums, n_held = _held_out_walk(model, rec, banks, inputs, recorded, slices, n_cols=n_cols,
                                                   ret_col=ret_col, commission=commission, fraction=fraction)
    return {"spot_agreement": hits / seen_bars if seen_bars else None, "spot_gap": _scaled_gap(sums, n_held, screen_bars),
            "spot_episodes": len(recorded), "spot_bars": int(n_held)}


def _column_sets(features, trade_names, anonymous=frozenset(), read=None, windows=None
                 ) -> tuple[list[list[int]], list[int], int]:
    """The columns a surrogate may read, simplest first. With ``read`` (the columns of the
    lines the strategy's code was seen reading, :meth:`~.own_features.OwnFeatures.
    read_columns`): those, then with the bars the trade has been held, then with every trade
    column — before any column it never read, which could only be a proxy that happens to
    separate the recorded bars (a %D beside the %K it compares); then the same three with
    ``windows`` (the bank's windows over prices it read whole, :func:`~.own_features.
    windows_read`: ``min(low[-1], low[-2], low[-3])``), which its code may or may not have
    compared with the close. Then (first without
    ``read``): the lines the strategy holds as attributes (their lines and differences, not
    bars earlier: not ``anonymous``, no ``@k``), then with the bars the trade has been
    held; the same with every own line; then the held lines with every trade column, every
    own line with them, and every column (without own lines, the bank's first). And the
    trade columns (of which :func:`_fit_simplest` tries the fewest that suffice, on the first
    set, before a set reading several), and how many of the sets are ``read``'s."""
    own = [j for j, n in enumerate(features) if is_own(n)]
    bank = [j for j, n in enumerate(features) if not is_own(n)]
    trade = list(range(len(features), len(features) + len(trade_names)))
    held = [j for j, n in zip(trade, trade_names) if n == "trade:bars"]
    first = own or bank
    now = [j for j in own if j not in anonymous and "@" not in features[j]] or first
    seen = sorted(read or ())
    spans = sorted(set(windows or ()) - set(seen))
    unique = []
    for columns in [seen, seen + held, seen + trade] + ([seen + spans, seen + spans + held, seen + spans + trade]
                                                          if spans else []):
        if columns and sorted(columns) not in unique:
            unique.append(sorted(columns))
    read_sets = len(unique)
    for columns in [now, now + held, first, first + held, now + trade, first + trade, bank + own + trade]:
        if columns and sorted(columns) not in unique:
            unique.append(sorted(columns))
    return unique, trade, read_sets


#: Trade columns tried at most this many at a time before all of them (:func:`_fit_simplest`).
FEWEST_TRADE_COLUMNS = 3


def _fit_simplest(X, y, column_sets, model_kw, tie_breaks: int = 3, anonymous=None, trade=(), read_sets=0,
                  discrete=None):
    """The surrogate on the first column set (:func:`_column_sets`) it fits the recorded
    decisions exactly with, else on the last: a rule written on the strategy's own lines is
    then learned on them, not on a proxy that happens to separate a few hundred bars as
    well. The tree reads only the set's columns (``PositionSurrogate(columns=…)``), in the
    layout of ``X``. Of the first ``read_sets`` (those of the lines the strategy was seen
    reading), only an exact fit with every split on a natural boundary is taken; else the
    sets after them are searched as they would be without them. A greedy tree that misses
    bars or splits off a natural boundary is also compared with one that splits on the state
    first (``by_state``), below.

    Before several ``trade`` columns at once, the fewest of them that fit exactly
    (:func:`_fewest_trade_columns`): an exit "2 % under the entry price" reads the return
    since entry alone, while the highest close or the distance from the low since entry
    separate a few dozen recorded exits as well and mislead the walk later. Several columns
    often separate the recorded bars equally well (``close/sma`` and ``sma/close``, a cross and a slope); of
    ``tie_breaks`` trees that break those ties differently, the one with the fewest splits
    off a natural boundary (its thresholds transfer) — and the tree by state — then reading the fewest ``anonymous``
    columns (lines the strategy does not hold as attributes: its rule reads those it holds),
    then with the fewest leaves is kept."""
    cands = model_kw.get("snap_candidates") or {}
    if discrete is None:
        discrete = _discrete_columns(X)

    def simplicity(m):
        return _loose_splits(m, cands, discrete), m.tree_.get_n_leaves()

    grown: dict = {}

    def fit(columns):  # a column set is often tried again (each search for trade columns starts alike)
        key = None if columns is None else tuple(columns)
        if key not in grown:
            grown[key] = PositionSurrogate(**dict(model_kw, columns=columns)).fit(X, y)
        return grown[key]

    model = columns = None
    misses = len(y)
    for k, columns_k in enumerate(column_sets):
        last = k == len(column_sets) - 1
        columns = None if last else columns_k
        fitted = fit(columns)
        fitted_misses = int(np.sum(fitted.predict(X) != y))
        # Before several trade columns at once, the fewest that fit, if reading them halves
        # the bars missed (else they explain no exit: noise, or state no column shows, and a
        # search would cost a deep tree per column and round). Every trade column is a
        # candidate, not only those this tree reads: of columns that separate the recorded
        # exits alike, it may have picked one that does not transfer.
        if len(set(trade) & set(used_columns(fitted))) > 1 and fitted_misses <= misses / 2:
            base = column_sets[0] if k < read_sets else column_sets[read_sets]
            searched = _fewest_trade_columns(X, y, base, trade, fit, simplicity, misses)
            if searched is not None:
                (fitted, columns), fitted_misses = searched, 0
                if k >= read_sets or simplicity(fitted)[0] == 0:
                    model = fitted
                    break
        model, misses = fitted, fitted_misses
        if k < read_sets:
            # Of the sets the strategy was seen reading, a fit is the rule only when exact
            # with every split on a natural boundary: a deep tree on the indicators alone can
            # separate a few dozen recorded exits that one split on the trade (a stop 3 ATR
            # under the peak) decides, and a patch of loose splits stands in for state no
            # column shows (a trailing high started at the signal bar's high). Else the
            # search goes on; past these sets, as without them (the first exact set wins).
            if misses == 0 and simplicity(model)[0] == 0:
                break
            if misses == 0:  # the same columns, split on the position first (the exits' own tree)
                by_state = PositionSurrogate(**dict(model_kw, columns=columns, by_state=True)).fit(X, y)
                if not np.any(by_state.predict(X) != y) and simplicity(by_state)[0] == 0:
                    model = by_state
                    break
                # the same columns split at their natural boundaries only: a conjunction of
                # comparisons the greedy tree patched under a split between them. Taken only
                # in place of such an exact patchwork and with fewer leaves: a tree confined to
                # boundaries is natural by construction, and exactness alone is no evidence of
                # the rule (grown where the greedy tree is not exact, such trees fitted two
                # held-out configurations' episodes and spot checks exactly and walked 0.20
                # and 0.77 off; see the README's twelfth round)
                natural = PositionSurrogate(**dict(model_kw, columns=columns, natural=True)).fit(X, y)
                if not np.any(natural.predict(X) != y) and simplicity(natural)[0] == 0 \
                        and natural.tree_.get_n_leaves() < model.tree_.get_n_leaves():
                    model = natural
                    break
            if k == read_sets - 1:  # the sets after start their search afresh
                misses = len(y)
        elif last or misses == 0:
            break
    kw = dict(model_kw, columns=columns, by_state=model.by_state, natural=model.natural)
    seed = model_kw.get("random_state", 0)
    candidates = [model] + [PositionSurrogate(**{**kw, "random_state": seed + 1 + j}).fit(X, y)
                            for j in range(tie_breaks - 1)]
    if not model.by_state and (np.any(model.predict(X) != y) or simplicity(model)[0] or _state_in_trade(model)):
        # and one tree per state when the greedy one is not exact on natural boundaries: it
        # may have split on an entry's column first and patched the exits in under it; or
        # when it tells flat from held by a trade column alone (0 when flat, so flat rows
        # share a side with exits at that level and what splits them there is a patch)
        candidates.append(PositionSurrogate(**{**kw, "by_state": True}).fit(X, y))
    if model.splits_on_state():
        # and one that never reads the state: a strategy ordering the target its indicators
        # name decides alike in every state, and a tree split on the state first learns that
        # rule in patches per state (the check set's RocPairLS(slow=200): 13 leaves where 4
        # decide; 0.076 off on the screening period)
        candidates.append(PositionSurrogate(**{**kw, "by_state": False, "stateless": True}).fit(X, y))
    anonymous = anonymous if anonymous is not None else set()
    allowed = set(kw["columns"] if kw["columns"] is not None else range(X.shape[1] - 1))
    held = sorted(allowed - anonymous)
    if anonymous & allowed and held:  # and one on the lines the strategy holds, if they suffice
        candidates.append(PositionSurrogate(**{**kw, "columns": held}).fit(X, y))
    predicted = {id(m): m.predict(X) for m in candidates}
    best = min(candidates, key=lambda m: (-int(np.sum(predicted[id(m)] == y)), _loose_splits(m, cands, discrete),
                                          _state_in_trade(m), len(set(used_columns(m)) & anonymous),
                                          len(used_columns(m)), m.tree_.get_n_leaves()))
    # The others that decide every training bar as it does: rules the episodes cannot tell
    # apart (``rule_gap`` walks them on the screening period).
    fitted = predicted[id(best)]
    alternatives = {}  # one of each distinct tree: trees grown alike (ties broken alike) walk alike
    for m in candidates:
        # A tree that never reads the state is a rival only of another that does not: beside
        # a tree split on the state it is a hypothesis about the strategy's form, not a tie
        # its columns break (taken as one, it cost the held-out set two surrogates: see the
        # README's tenth round)
        if m is not best and np.array_equal(predicted[id(m)], fitted) and used_columns(m) != used_columns(best) \
                and (best.stateless or not m.stateless):
            alternatives.setdefault(_tree_signature(m), m)
    best.alternatives_ = list(alternatives.values())
    return best


def _state_in_trade(model) -> bool:
    """Whether a tree that reads trade columns never splits on the state: it tells a flat bar
    from a held one only by a trade column's 0."""
    return model.splits_on_trade() and not model.splits_on_state()


def _tree_signature(model) -> tuple:
    """A tree's splits and leaves' decisions: two trees with the same one decide alike."""
    t = model.tree_.tree_
    leaf = t.children_left < 0
    decided = np.where(leaf, np.argmax(t.value[:, 0, :], axis=1), -1)
    return (t.children_left.tobytes(), t.children_right.tobytes(), np.where(leaf, -2, t.feature).tobytes(),
            np.where(leaf, 0.0, t.threshold).tobytes(), model.classes_.tobytes(), decided.tobytes())


def _discrete_columns(X) -> set:
    """Columns of ``X`` (the state's aside) with integer values or at most 8 distinct ones (a
    cross, bars held): a split on one has no loose threshold (:func:`_loose_splits`)."""
    return {j for j in range(X.shape[1] - 1)
            if np.array_equal(X[:, j], np.round(X[:, j])) or len(np.unique(X[:, j])) <= 8}


def _fewest_trade_columns(X, y, base, trade, fit, simplicity, misses):
    """``(model, columns)``: the tree on ``base`` plus the fewest of the ``trade`` columns
    that fit ``y`` exactly, added greedily (each the one that misses fewest bars, and only
    while each halves the bars missed), at most :data:`FEWEST_TRADE_COLUMNS`; None if none.
    An exact fit with splits off natural boundaries is kept only until one more column
    gives an exact fit with fewer such splits and no more leaves: a deep tree on the return
    since entry alone can separate a few time exits ("after 48 bars") by chance values
    that the bars held decide in one split."""
    chosen, left, found = [], list(trade), None
    for _ in range(min(FEWEST_TRADE_COLUMNS, len(left) - 1)):
        fits = [(j, fit(sorted(base + chosen + [j]))) for j in left]
        missed = [int(np.sum(m.predict(X) != y)) for _, m in fits]
        exact = [(simplicity(m), n, j, m) for n, ((j, m), miss) in enumerate(zip(fits, missed)) if miss == 0]
        if exact:
            simplest, _, j, model = min(exact, key=lambda e: e[:2])
            if found is None or (simplest[0] < found[2][0] and simplest[1] <= found[2][1]):
                found = (model, sorted(base + chosen + [j]), simplest)
            if found[2][0] == 0 or found[0] is not model:
                return found[:2]
        elif min(missed) > misses / 2:
            return None if found is None else found[:2]
        else:
            misses = min(missed)
            j = fits[int(np.argmin(missed))][0]
        chosen.append(j)
        left.remove(j)
    return None if found is None else found[:2]


def _loose_splits(model, cands, discrete=frozenset()) -> int:
    """Splits (not on the state) whose threshold is not one of its column's natural values;
    a column with integer or few values (a cross, bars held) has no loose split: anywhere
    between two of its values splits them alike."""
    t = model.tree_.tree_
    state = model.n_features_in_ - 1
    return sum(1 for node in np.flatnonzero(t.children_left >= 0)
               if int(t.feature[node]) != state and int(t.feature[node]) not in discrete
               and not any(abs(float(t.threshold[node]) - c) < 1e-12 for c in cands.get(int(t.feature[node]), ())))


def _recorded_inputs(rec, trade_of) -> dict:
    """Each recorded episode's :class:`~.trade_state.TradeInputs`, with the prices its entry
    orders filled at (the entry price of those trades)."""
    fills = rec.get("entry_fills") or [None] * len(rec["episodes"])
    lags = rec.get("entry_lags") or [None] * len(rec["episodes"])
    out = {}
    for e, filled, lag in zip(rec["episodes"], fills, lags):
        out[e] = trade_of(e)
        if filled is not None and np.isfinite(filled).any():
            out[e].fills, out[e].lags = filled, lag
    return out


def _restart(state, inputs, row, protection=None):
    """What a held-out walk starting at ``row`` of an episode starts from: the position the
    strategy held at that bar's close (the state its decision reads) and, in a position with
    trade columns or protective orders, the trade it was in."""
    held = float(state[row])
    if held == 0.0 or inputs is None:
        return held
    if row > 0 and float(state[row - 1]) == held:  # the trade so far, up to the bar before
        return context_at(state, inputs, row - 1, protection=protection)
    entered = TradeContext.signalled(held, inputs.entry_price(row), inputs, row, lag=inputs.entry_lag(row))
    if protection is not None:  # priced here: the walk's rows may not hold the bar that sent them
        entered.levels = protective_levels(protection, entered, inputs, row)
    return entered


def _concatenated(parts):
    def joined(key):  # recorded entry fills: those of every part, or none
        return None if any(getattr(p, key) is None for p in parts) else np.concatenate([getattr(p, key) for p in parts])

    return TradeInputs(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("open", "high", "low", "close")),
                       units={u: np.concatenate([p.units[u] for p in parts]) for u in parts[0].units},
                       lines={k: np.concatenate([p.lines[k] for p in parts]) for k in parts[0].lines},
                       fills=joined("fills"), lags=joined("lags"), previous=parts[0].previous,
                       parts=tuple((int(s), p.previous) for s, p in zip(np.cumsum([len(p.close) for p in parts])[:-1],
                                                                       parts[1:])))


@dataclass
class Evidence:
    """What a surrogate learned from its episodes and how its held-out walks did: enough to
    walk it on another screening period (another instrument) and judge it there again."""

    X: np.ndarray
    y: np.ndarray
    cands: dict  # per column, the split values the threshold gap takes as exact
    sums: list
    n_held: int
    agreement: float | None
    ret_col: int | None
    episodes: int
    bars_fed: int
    longest_hold: int = 0  # bars: the longest the strategy held a position in its episodes


def _longest_hold(state) -> int:
    """The longest run of bars one non-zero position was held (state per bar)."""
    holds = held_runs(state)
    return int(holds[:, 1].max()) if len(holds) else 0


def _scaled_gap(sums, n_held: int, screen_bars: int) -> float | None:
    """Per-stretch P&L differences of held-out walks over ``n_held`` bars, scaled to a period
    of ``screen_bars`` as a random walk: ``sqrt(Σ sum² × screen bars / held-out bars)``."""
    if not len(sums) or not n_held:
        return None
    return float(math.sqrt(float(np.sum(np.square(sums))) * screen_bars / n_held))


def walk_and_trust(model, plan, evidence: Evidence, screen_columns, *, commission=0.001, fraction=0.95,
                   screen_trade=None, thresholds=None, screen_bars=None, fill=None):
    """``(path, trust)``: the fitted surrogate walked over the screening period whose columns
    ``screen_columns`` gives (and, for a surrogate reading trade columns, whose
    :class:`~.trade_state.TradeInputs` ``screen_trade()`` gives), and every trust signal —
    those of the episodes (agreement, P&L gap scaled to this period) and those of this walk
    (coverage of the transitions it relies on, exit-rate ratios, threshold and rule gaps).

    ``thresholds`` (:func:`is_trusted`'s keywords): when the episodes' agreement or P&L gap
    already fail them, the threshold and rule gaps — a walk per moved split and per
    alternative rule, the costliest signals of a strategy that trades often — are not walked
    (None; ``trust["gaps_walked"]`` is False): the configuration is untrusted whatever they
    say. None: every signal (e.g. to choose thresholds).

    ``screen_bars`` (the screening period's length), with ``thresholds``: a configuration its
    episodes already fail is not walked at all (``path`` None, ``trust["walked"]`` False):
    for a caller that scores it by a full backtest or replay, which it gets whatever the walk
    says (the walk of a strategy that trades at every other bar costs seconds). The signals
    of the episodes — agreement, P&L gap, the transitions seen — are kept; those of the walk
    are None.

    ``fill`` (``path → fills``, :func:`distillbt.vectorised.simulate` with ``reissue=True``):
    the path returned is settled on the fills (:func:`settled_walk`), and the walk's signals
    are those of that path; ``trust`` says ``refused`` and ``refusals_unlike``. Without it,
    the walk as the tree carries it."""
    X, y, cands = evidence.X, evidence.y, evidence.cands
    seen = _transitions(X[:, -1], y, model.states_)
    if screen_bars is not None:
        pnl_gap, failed = _episodes_judged(evidence, int(screen_bars), thresholds)
        if failed:
            trust = _episode_signals(model, plan, evidence, seen, pnl_gap, int(screen_bars))
            trust.update(_NOT_WALKED)
            return None, trust
    d = len(plan.features)
    others = getattr(model, "alternatives_", [])
    # every column any walk below reads, computed once (own lines evaluate a whole graph)
    on_features = sorted({j for m in [model, *others] for j in used_columns(m) if j < d}
                         | ({evidence.ret_col} if evidence.ret_col is not None else set()))
    F = screen_columns([plan.features[j] for j in on_features], d, on_features)
    needs_trade = any(m.needs_trade() for m in [model, *others])
    trade = screen_trade() if needs_trade else None
    path = model.walk(F, start_state=0.0, trade=trade if model.needs_trade() else None)
    n_screen = len(path)
    pnl_gap, failed = _episodes_judged(evidence, n_screen, thresholds)
    if evidence.ret_col is not None and not failed:
        r = F[:, evidence.ret_col].astype(np.float64)
        r_next = np.nan_to_num(np.concatenate((r[1:], [0.0])))
        threshold_gap = _threshold_gap(model, X, cands, F, path, r_next, commission=commission,
                                       fraction=fraction, trade=trade if model.needs_trade() else None)
        rule_gap = _rule_gap(others, F, path, r_next, trade, commission=commission, fraction=fraction)
    else:
        threshold_gap = rule_gap = None
    refusals, refused = {}, []
    if fill is not None:  # the gaps above compare walks as the trees carry them; the rest reads the settled one
        path, fills, unlike = settled_walk(model, F, path, fill, trade=trade if model.needs_trade() else None)
        refused = fills["refused"]
        refusals = dict(refused=len(refused), refusals_unlike=unlike)
    prev = read_states(path)
    prev[refused] = 0.0  # flat where an opening was dropped: the broker's doing, not a decision
    deciding = slice(None) if getattr(path, "waiting", None) is None else ~path.waiting
    walked = _transitions(prev[deciding], np.asarray(path)[deciding], model.states_)
    relied = sorted(set(np.unique(path).tolist()) | {0.0})
    # The transitions the walk relies on: out of every state it holds (it must know how to
    # leave, even if it never does: "never exits"), into every state it enters. Flat before
    # the first entry is not entered (an always-in strategy never returns to it).
    # (A position its protective orders close need not be left by a decision.)
    needed = [seen[s]["out"] for s in relied if s == 0.0 or model.protection is None] + \
        [seen[s]["into"] for s in relied if walked[s]["into"]]
    # ... and every move from one position to another it makes (a reversal the episodes never
    # showed may be sized or filled otherwise: a close() then buy() sized on the short's cash)
    state_seen = X[:, -1]
    for a, b in {(float(a), float(b)) for a, b in zip(prev[path != prev], path[path != prev])}:
        if a != 0.0 and b != 0.0:
            needed.append(int(np.sum((state_seen == a) & (y == b))))
    coverage = min(needed) if len(relied) > 1 else \
        min(seen[0.0]["out"], seen[0.0]["into"]) if seen[0.0]["out"] else 0
    ratios = []
    for s in relied:
        ep_rate = seen[s]["out"] / seen[s]["bars"] if seen[s]["bars"] else 0.0
        walk_rate = walked[s]["out"] / walked[s]["bars"] if walked[s]["bars"] else 0.0
        if ep_rate > 0:
            ratios.append(walk_rate / ep_rate)
    trust = _episode_signals(model, plan, evidence, seen, pnl_gap, n_screen)
    trust.update(coverage=int(coverage), rate_ratio=min(ratios) if ratios else None,
                 rate_ratio_max=max(ratios) if ratios else None, threshold_gap=threshold_gap, rule_gap=rule_gap,
                 gaps_walked=not failed, walked=True, longest_hold_walk=_longest_hold(path),
                 exposure_walk=float(np.mean(path != 0)) if n_screen else None, **refusals)
    return path, trust


def settled_walk(model, F, path, fill, *, trade=None, rounds: int = 50):
    """``(path, fills, unlike)``: the walk ``path`` over ``F`` (the screening period's
    columns; ``trade``, its :class:`~.trade_state.TradeInputs` for a tree that reads trade
    columns) made to agree with what the broker fills. ``fill(path)`` fills a path's orders
    (:func:`distillbt.vectorised.simulate` with ``reissue=True``); at each bar it reports
    ``refused`` (an opening dropped for cash) the strategy is flat, whatever the walk carried,
    and decides from flat. Where the surrogate decides there from flat as the walk did, the
    path stands (the target is ordered again); elsewhere the walk restarts flat at that bar
    and is filled again, until no refused bar is decided otherwise (each round settles the
    first disagreement for good: the fills are causal) or ``rounds`` run out — ``unlike``,
    the refused bars still decided otherwise, is then not 0."""
    fills = fill(path)
    restarts: set = set()
    withdrawn: set = set()  # entry orders refused where they fill (kept: the restart undoes the fill)
    for _ in range(rounds):
        refused = fills["refused"]
        if not len(refused) and not restarts:
            return path, fills, 0
        # An entry order refused where it fills: the strategy decides there from flat, and an
        # entry it decides is a new order, not the same target ordered again at market. The
        # first one only, each round: those after it came from the path before it.
        entries = getattr(path, "entries", None)
        filled_here = set(entries[1].tolist()) if entries is not None else set()
        fresh = sorted(set(refused.tolist()) & filled_here - withdrawn)
        if fresh:
            withdrawn = {w for w in withdrawn if w < fresh[0]} | {fresh[0]}
        unlike = {int(r) for r, flat in zip(refused, model.decide_flat(F[refused]))
                  if flat != path[r] and r not in filled_here}
        unlike |= withdrawn - restarts
        kept = (restarts & set(refused.tolist())) | (restarts & withdrawn)
        if not unlike and kept == restarts:
            return path, fills, 0
        restarts = kept | unlike
        path = model.walk(F, start_state=0.0, restarts={r: 0.0 for r in sorted(restarts)}, trade=trade)
        fills = fill(path)
    refused = fills["refused"]
    return path, fills, int(np.sum(model.decide_flat(F[refused]) != path[refused])) if len(refused) else 0


def _episodes_judged(evidence: Evidence, n_screen: int, thresholds) -> tuple[float | None, bool]:
    """The held-out P&L gap scaled to ``n_screen`` bars, and whether it or the held-out
    agreement already fail ``thresholds`` (never without them)."""
    pnl_gap = _scaled_gap(evidence.sums, evidence.n_held, n_screen)
    failed = thresholds is not None and bool(failed_checks({"agreement": evidence.agreement, "pnl_gap": pnl_gap},
                                                           **thresholds))
    return pnl_gap, failed


#: The walk's own signals of a configuration that was not walked (:func:`walk_and_trust`).
_NOT_WALKED = dict(coverage=None, rate_ratio=None, rate_ratio_max=None, threshold_gap=None, rule_gap=None,
                   gaps_walked=False, walked=False, longest_hold_walk=None, exposure_walk=None)


def _episode_signals(model, plan, evidence: Evidence, seen, pnl_gap, n_screen: int) -> dict:
    """The trust signals of the episodes and the fitted tree (none of the walk's)."""
    y, sums, n_held = evidence.y, evidence.sums, evidence.n_held
    return {"agreement": evidence.agreement, "pnl_gap": pnl_gap,
            "pnl_bias": float(abs(float(np.sum(sums))) * n_screen / n_held) if pnl_gap is not None else None,
            "heldout_bars": int(n_held), "longest_hold_episodes": int(evidence.longest_hold),
            "exposure_episodes": float(np.mean(y != 0)) if len(y) else None,
            "episodes": evidence.episodes, "training_bars": int(len(y)), "bars_fed": evidence.bars_fed,
            "transitions": {str(int(s)): v for s, v in seen.items()},
            "depth": int(model.tree_.get_depth()), "leaves": int(model.tree_.get_n_leaves()),
            "snapped": int(model.snapped_),
            "features_used": [(plan.features + list(model.trade_names))[j] for j in used_columns(model)]}


def _pnl_difference(a, b, r_next, *, commission, fraction) -> float:
    """What holding ``a`` instead of ``b`` (targets per bar) earns, approximately, in log
    return: ``fraction × (a − b) × next bar's return`` minus the extra commission."""
    da = np.abs(a - read_states(a))
    db = np.abs(b - read_states(b))
    return float(np.sum(fraction * (a - b) * r_next) - commission * fraction * np.sum(da - db))


def _rule_gap(others, F, path, r_next, trade, *, commission, fraction) -> float:
    """How much the screen's score depends on which of the rules that decide every recorded
    bar alike the tree learned (its ``alternatives_``: trees that broke ties between columns
    differently, e.g. a slope where the strategy reads a cross): each walked on the screening
    period, the largest difference in (approximate) P&L against the chosen one, log-return
    units. 0 when there is no such alternative or they walk alike."""
    gap = 0.0
    for other in others:
        walked = other.walk(F, start_state=0.0, trade=trade if other.needs_trade() else None)
        if not np.array_equal(walked, path):
            gap = max(gap, abs(_pnl_difference(walked, path, r_next, commission=commission, fraction=fraction)))
    return gap


def _threshold_gap(model, X, cands, F, path, r_next, *, commission, fraction, trade=None):
    """How much the screen's score depends on where, inside the gap its training values
    leave open, each split threshold lies. A split the data cannot place exactly (no natural
    boundary was snapped to) is moved to either end of its gap — the training predictions
    are the same — and the screen walked again: the largest difference in (approximate) P&L,
    log-return units. 0 when every split is snapped or the walks agree."""
    t = model.tree_.tree_
    state_col = X.shape[1] - 1
    internal = np.flatnonzero(t.children_left >= 0)
    nodes = []
    Xf = np.nan_to_num(X, nan=0.0).astype(np.float32)
    reach = None
    for node in internal:
        f = int(t.feature[node])
        if f == state_col:
            continue
        thr = float(t.threshold[node])
        if any(abs(thr - c) < 1e-12 for c in cands.get(f, ())):
            continue  # snapped to the column's natural boundary
        if reach is None:
            reach = model.tree_.decision_path(Xf, check_input=False).tocsc()
        rows = reach.indices[reach.indptr[node]:reach.indptr[node + 1]]
        vals = Xf[rows, f]
        left, right = vals[vals <= thr], vals[vals > thr]
        if not len(left) or not len(right):
            continue
        nodes.append((node, float(left.max()), float(np.nextafter(np.float32(right.min()), np.float32(-np.inf)))))
    if not nodes:
        return 0.0
    gap = 0.0
    for end in (1, 2):
        alt = copy.deepcopy(model)
        for node, lo, hi in nodes:
            alt.walk_tree_.threshold[node] = (lo, hi)[end - 1]
        other = alt.walk(F, start_state=0.0, trade=trade)
        if not np.array_equal(other, path):
            gap = max(gap, abs(_pnl_difference(other, path, r_next, commission=commission, fraction=fraction)))
    return gap


def failed_checks(trust, *, min_transitions, min_agreement, rate_band, max_pnl_gap=math.inf) -> list[str]:
    """The trust checks ``trust`` fails, by name, in this order: ``coverage`` (a transition
    the walk relies on seen fewer than ``min_transitions`` times in the episodes),
    ``agreement`` (held-out bars), ``rates`` (exit rates of the walk against the episodes'),
    ``spot_agreement``, then each P&L gap over ``max_pnl_gap`` (``pnl_gap``,
    ``threshold_gap``, ``rule_gap``, ``spot_gap``), then ``refusals`` (openings dropped for
    cash the walk could not be settled on: :func:`settled_walk`). Empty: trusted. A record
    keeps them as ``trust["failed"]``, so a replayed configuration says why."""
    failed = []  # a signal ``trust`` lacks (or holds as None) is not judged
    if trust.get("coverage") is not None and trust["coverage"] < min_transitions:
        failed.append("coverage")
    if trust.get("agreement") is not None and trust["agreement"] < min_agreement:
        failed.append("agreement")
    lo, hi = trust.get("rate_ratio"), trust.get("rate_ratio_max")
    if lo is not None and (lo < 1.0 / rate_band or hi > rate_band):
        failed.append("rates")
    if trust.get("spot_agreement") is not None and trust["spot_agreement"] < min_agreement:
        failed.append("spot_agreement")
    failed += [k for k in ("pnl_gap", "threshold_gap", "rule_gap", "spot_gap")
               if trust.get(k) is not None and trust[k] > max_pnl_gap]
    if trust.get("refusals_unlike"):
        failed.append("refusals")
    return failed


def is_trusted(trust, *, min_transitions, min_agreement, rate_band, max_pnl_gap=math.inf) -> bool:
    """Whether ``trust`` passes every check (:func:`failed_checks`)."""
    return not failed_checks(trust, min_transitions=min_transitions, min_agreement=min_agreement,
                             rate_band=rate_band, max_pnl_gap=max_pnl_gap)


def deficits(trust, min_transitions) -> list[tuple[float, str]]:
    """(state, "out" | "into") pairs seen fewer than ``min_transitions`` times (all of them
    when none is short: the configuration failed on agreement or rates)."""
    tr = trust.get("transitions") or {}
    short = [(float(s), k) for s, v in tr.items() for k in ("out", "into") if v[k] < min_transitions]
    if not short:
        short = [(float(s), k) for s in tr for k in ("out", "into")]
    return short or [(0.0, "out"), (0.0, "into")]
