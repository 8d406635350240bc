"""Escalation: where a configuration that is not trusted yet gets its next episodes.

Each round cuts the episode source period (the end of the training period) into windows,
longer each round, and scores them for one configuration: where its own surrogate predicts the
transitions it has seen too rarely (:func:`~.trust.deficits`), and where its columns leave the
range its episodes showed; windows already mostly recorded are skipped. Without a signal, the
windows are spread over the period away from those recorded.
"""

from __future__ import annotations

import numpy as np

from ..indicators import IndicatorBank, bank_warmup
from .columns import bar_before, frame_arrays, period_lines, plan_columns, trade_inputs
from ..protective import priced_lines
from .model import read_states
from .recorder import merged_flips, merged_reads, merged_units, rules_of
from .trust import deficits, used_columns

__all__ = ["SourceColumns", "escalation_windows", "merged_recording"]


class SourceColumns:
    """Columns over the episode source period ``[start, stop)`` of ``frame``: bank ones grown
    on demand (recomputed with every column needed so far when a new one is asked for), a
    plan's own-line ones computed when it asks (:meth:`take`)."""

    def __init__(self, frame, start: int, stop: int):
        self.frame, self.start, self.stop = frame, int(start), int(stop)
        self.values = None
        self.column: dict = {}

    def ensure(self, names) -> None:
        names = list(dict.fromkeys(names))
        if self.values is None or any(n not in self.column for n in names):
            lead = min(self.start, bank_warmup(names))
            self.values = IndicatorBank(names).transform(
                {k: self.frame[k].to_numpy()[self.start - lead:self.stop] for k in ("high", "low", "close")})[lead:]
            self.column = {n: j for j, n in enumerate(names)}

    def __len__(self) -> int:
        return 0 if self.values is None else len(self.values)

    def trade_inputs(self, plan, F, lines=()):
        """The period's :class:`~.trade_state.TradeInputs` for ``plan`` (``F``: :meth:`take`;
        the strategy's ``lines``, by name)."""
        prices = [self.frame[k].to_numpy()[self.start:self.stop] for k in ("open", "high", "low", "close")]
        return trade_inputs(plan, prices, F, period_lines(plan, lines, self.frame, self.start, self.stop),
                            previous=bar_before(self.frame, self.start))

    def take(self, plan, columns=None) -> np.ndarray:
        """``plan``'s columns (its bank ones made ready by :meth:`ensure`): those at positions
        ``columns`` (default all), zeros elsewhere."""
        def arrays(lead):
            return frame_arrays(self.frame, self.start - lead, self.stop)

        columns = range(len(plan.features)) if columns is None else sorted(set(columns))
        out = np.zeros((len(self), len(plan.features)), dtype=np.float32, order="F")
        if columns:
            def bank(names):
                return self.values[:, [self.column[n] for n in names]]

            out[:, columns] = plan_columns(plan, [plan.features[j] for j in columns], bank, arrays,
                                           lead=0 if plan.own is None else min(self.start, plan.own.converge))
        return out


def escalation_windows(*, plan, model, trust, recording, bank_of, episodes, source: SourceColumns,
                       window_starts, length: int, count: int, min_transitions: int) -> list[int]:
    """Up to ``count`` window starts (candle positions) of ``length`` bars for one
    configuration, best first (module docstring). ``window_starts``: positions in ``source``;
    ``recording``: what was recorded for it so far (its ``episodes``)."""
    m = len(source)
    wanted = deficits(trust, min_transitions)
    own_period = {str(p) for p in plan.periods}
    units = [plan.features.index(u) for u in (plan.own.unit_columns if plan.own is not None else ())]
    if model is not None:  # the columns its walk reads, and those its trade columns measure in
        rely = [j for j in used_columns(model) if j < len(plan.features)]
        needed = rely + (units if model.splits_on_trade() else [])
    else:  # nothing learned yet: the configuration's own-period bank columns
        rely = [j for j, n in enumerate(plan.features) if "(" not in n and set(n.split(":")[1:]) & own_period]
        needed = rely
    F = source.take(plan, needed)
    score = np.zeros(m)
    if model is not None:
        trade = source.trade_inputs(plan, F, priced_lines(model.protection, model.entry)) if model.needs_trade() else None
        path = model.walk(F, start_state=0.0, trade=trade)
        prev = read_states(path)
        for st, kind in wanted:
            moved = ((prev == st) & (path != st)) if kind == "out" else ((prev != st) & (path == st))
            score += 1000.0 * moved
    if rely:
        X = np.concatenate([bank_of(e) for e in recording["episodes"]])[:, rely]
        lo, hi = np.nanmin(X, axis=0), np.nanmax(X, axis=0)
        Fr = F[:, rely]
        score += np.sum((Fr < lo) | (Fr > hi), axis=1)
    per_window = np.add.reduceat(score, window_starts)[:len(window_starts)]
    if window_starts[-1] + length < m:
        per_window[-1] -= score[window_starts[-1] + length:].sum()
    covered = np.zeros(m, dtype=bool)
    for e in recording["episodes"]:
        a_ = int(episodes.source_start[e]) - source.start
        covered[max(0, a_):max(0, a_ + int(episodes.length[e]))] = True
    fresh = np.add.reduceat(covered, window_starts)[:len(window_starts)] < length // 2
    order = [int(k) for k in np.argsort(-per_window, kind="stable") if per_window[k] > 0 and fresh[k]]
    if not order:  # no signal: windows spread over the period, away from those recorded
        order = [k for k in range(len(window_starts)) if fresh[k]]
        step = max(1, len(order) // count)
        order = order[::step]
    return [source.start + int(window_starts[k]) for k in order[:count]]


def merged_recording(first: dict, more: dict) -> dict:
    """One configuration's recordings of two rounds as one."""
    flips, clash = merged_flips(first.get("flips"), more.get("flips"))
    units, unequal = merged_units(first.get("units"), more.get("units"))
    protected = first.get("protective_trades", []) + more.get("protective_trades", [])
    entries = first.get("entry_orders", []) + more.get("entry_orders", [])
    name = more.get("name", first.get("name"))
    rules = rules_of(name, protected, entries)
    why = rules.pop("unmodelled")
    return {"episodes": first["episodes"] + more["episodes"], "state": first["state"] + more["state"],
            "target": first["target"] + more["target"],
            "entry_fills": first.get("entry_fills", []) + more.get("entry_fills", []),
            "entry_refused": first.get("entry_refused", []) + more.get("entry_refused", []),
            "entry_lags": first.get("entry_lags", []) + more.get("entry_lags", []),
            "bars_fed": int(first.get("bars_fed", 0)) + int(more.get("bars_fed", 0)),
            "own_sizer": more.get("own_sizer", first.get("own_sizer")),
            "unmodelled": (first.get("unmodelled") or more.get("unmodelled")
                           or (clash and f"{name}: {clash}") or (unequal and f"{name}: {unequal}") or why),
            "flips": flips, "units": units, "entry_share": first.get("entry_share") or more.get("entry_share"),
            **rules,
            "protective_trades": protected, "entry_orders": entries,
            "reads": merged_reads(first.get("reads"), more.get("reads"))}
