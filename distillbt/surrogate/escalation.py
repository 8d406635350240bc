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
from .trust import deficits, used_columns

__all__ = ["SourceColumns", "escalation_windows", "merged_recording"]


class SourceColumns:
    """Bank columns over the episode source period ``[start, stop)`` of ``frame``, grown on
    demand (recomputed with every column needed so far when a new one is asked for)."""

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

    def take(self, names) -> np.ndarray:
        return self.values[:, [self.column[n] for n in names]]


def escalation_windows(*, plan, model, trust, recording, bank_of, episodes, source: SourceColumns,
                       window_starts, length: int, count: int, min_transitions: int) -> list[int]:
    """Up to ``count`` window starts (candle positions) of ``length`` bars for one
    configuration, best first (module docstring). ``window_starts``: positions in ``source``;
    ``recording``: what was recorded for it so far (its ``episodes``)."""
    m = len(source)
    wanted = deficits(trust, min_transitions)
    F = source.take(plan.features)
    score = np.zeros(m)
    if model is not None:
        path = model.walk(F, start_state=0.0)
        prev = np.concatenate(([0.0], path[:-1]))
        for st, kind in wanted:
            moved = ((prev == st) & (path != st)) if kind == "out" else ((prev != st) & (path == st))
            score += 1000.0 * moved
        rely = used_columns(model)
    else:
        rely = []
    if not rely:  # nothing learned yet: the configuration's own-period columns
        own = {str(p) for p in plan.periods}
        rely = [j for j, n in enumerate(plan.features) if "(" not in n and set(n.split(":")[1:]) & own]
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
    return {"episodes": first["episodes"] + more["episodes"], "state": first["state"] + more["state"],
            "target": first["target"] + more["target"],
            "bars_fed": int(first.get("bars_fed", 0)) + int(more.get("bars_fed", 0)),
            "own_sizer": more.get("own_sizer", first.get("own_sizer"))}
