"""Successive halving over episodes: the multi-fidelity baseline the surrogates are compared with."""

from __future__ import annotations

import math
import time

import numpy as np

from ..distill.episodes import Episodes
from ..executor import parallel_api
from .plan import plan_configuration
from .recorder import record_many

__all__ = ["successive_halving"]


@parallel_api
def successive_halving(configurations, episodes: Episodes, *, rungs=(4, 8, 16), eta: int = 2,
                       warmups=None, cash=10_000.0, commission=0.001, timeframe=None, n_jobs=1,
                       backend="loky", progress=True) -> dict:
    """Multi-fidelity baseline: estimate each configuration's score from its P&L on episodes.

    Every configuration runs on the first ``rungs[0]`` episodes (the same ones for all: common
    random numbers), the best ``1/eta`` go on to ``rungs[1]`` episodes, and so on; each rung
    adds only the new episodes. The estimate is the weighted mean per-episode log return
    (``Episodes.weights``). Configurations eliminated earlier rank below those that went on.
    Returns ``{"scores": {name: estimate}, "rank_key": {name: (rung, estimate)},
    "seconds", "bars"}``.
    """
    began = time.perf_counter()
    configs = list(configurations)
    plans = [plan_configuration(c) for c in configs]
    warm = warmups or [p.warmup for p in plans]
    alive = list(range(len(configs)))
    returns = {i: {} for i in alive}
    reached = {i: 0 for i in alive}
    done = 0
    bars = 0
    estimate = {}
    for r, n in enumerate(rungs):
        n = min(int(n), episodes.n)
        which = list(range(done, n))
        if which:
            jobs = [(configs[i], which, warm[i]) for i in alive]
            out = record_many(jobs, episodes, cash=cash, commission=commission, timeframe=timeframe,
                              n_jobs=n_jobs, backend=backend, progress=progress, desc=f"halving rung {r}")
            for i, rec in zip(alive, out):
                if rec.get("error"):
                    returns[i] = None
                    continue
                bars += rec["bars_fed"]
                for e, v in zip(rec["episodes"], rec["log_return"]):
                    returns[i][e] = v
        w = episodes.weights(n)
        for i in alive:
            reached[i] = r
            if returns[i] is None:
                estimate[i] = -math.inf
                continue
            vals = np.array([returns[i].get(e, 0.0) for e in range(n)])
            estimate[i] = float(np.sum(w * np.nan_to_num(vals, neginf=-10.0)))
        done = n
        if r < len(rungs) - 1:
            keep = max(1, int(math.ceil(len(alive) / eta)))
            alive = sorted(alive, key=lambda i: -estimate[i])[:keep]
    return {"scores": {configs[i].name: estimate[i] for i in estimate},
            "rank_key": {configs[i].name: (reached[i], estimate[i]) for i in estimate},
            "seconds": time.perf_counter() - began, "bars": bars}
