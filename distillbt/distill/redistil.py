"""The distillation jobs of an update: one per regime re-distilled, with the parent's method,
configuration and per-regime seeds, optionally warm-started from the parent's points, run on
the executor; and the child set assembled from re-distilled and kept regimes.

A job's seed is the parent's: ``SeedSequence(seed).spawn`` in the parent's regime order (new
regimes after), as :func:`~distillbt.distill.runner.distill` does.
"""

from __future__ import annotations

import inspect
import time

import numpy as np

from ..executor import using
from .artifact import DistilledSet
from .registry import method_class

__all__ = ["regime_seeds", "run_jobs", "job_kwargs", "points_by_regime", "assemble"]

#: what a job sets itself, not taken from the parent's configuration
_FROM_SCRATCH = ("size", "task", "random_state")


def regime_seeds(seed: int, names: list[str]) -> dict:
    """Regime → the seed of its job: ``SeedSequence(seed).spawn`` in the order of ``names``."""
    states = np.random.SeedSequence(seed).spawn(len(names))
    return {r: int(s.generate_state(1)[0]) for r, s in zip(names, states)}


def _job(method, kwargs, X, y, init):
    """One regime's job (in a worker): fit ``method(**kwargs)``, from ``init`` points if given;
    plain arrays back."""
    started = time.perf_counter()
    cls = method_class(method)
    distiller = cls(**kwargs)
    if init is None:
        distiller.fit(X, y)
    else:
        distiller.fit(X, y, init_points=init[0], init_targets=init[1])
    return {"X": distiller.X_, "y": distiller.y_, "weight": distiller.weight_, "n_iter": distiller.n_iter_,
            "converged": distiller.converged_, "seconds": time.perf_counter() - started}


def run_jobs(specs: dict, *, n_jobs, backend, progress, desc):
    """``specs``: regime → (method, kwargs, X, y, init). Returns regime → result. One job or one
    worker runs in this process (no worker start-up, no data shipped), except on Dask."""
    names = list(specs)
    if not names:
        return {}
    with using(n_jobs=n_jobs, backend=backend) as ex:
        results = ex.map(_job, [specs[r] for r in names], desc=desc, unit="regime", progress=progress, leave=False)
    return dict(zip(names, results))


def job_kwargs(meta: dict, size: int, seed: int, extra: dict | None = None) -> dict:
    """The distiller's keywords: the parent's configuration, this job's ``size`` and ``seed``
    (where the method takes them), then ``extra``."""
    config = {k: v for k, v in (meta.get("config") or {}).items() if k not in _FROM_SCRATCH}
    cls = method_class(meta["method"])
    accepted = inspect.signature(cls.__init__).parameters
    base = {k: v for k, v in {"size": size, "task": meta["task"], "random_state": seed}.items() if k in accepted}
    return {**config, **base, **(extra or {})}


def points_by_regime(parent: DistilledSet) -> dict:
    """Regime → the indices of the parent's points of that regime, in the parent's order."""
    regimes = np.asarray(parent.regime).astype(str)
    return {r: np.flatnonzero(regimes == r) for r in dict.fromkeys(regimes)}


def assemble(parent: DistilledSet, parts: dict, regime_weight: dict, meta: dict) -> DistilledSet:
    """A set from per-regime ``(X, y, weight)`` parts in the parent's regime order, new last."""
    order = [r for r in (parent.meta.get("regimes") or []) if r in parts] + \
            [r for r in parts if r not in (parent.meta.get("regimes") or [])]
    meta = {**meta, "regimes": order}
    return DistilledSet(
        X=np.concatenate([parts[r][0] for r in order]),
        y=np.concatenate([parts[r][1] for r in order]),
        weight=np.concatenate([parts[r][2] if regime_weight is None or regime_weight.get(r) is None
                               else parts[r][2] / parts[r][2].sum() * regime_weight[r] for r in order]),
        regime=np.concatenate([np.full(len(parts[r][0]), r, dtype=object) for r in order]),
        meta=meta,
        # the parent's episodes stay: training-period windows, still before any later screen
        episodes=parent.episodes,
    )
