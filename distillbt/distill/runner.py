"""Distil per regime, one task per (regime, method), on the executor (processes, threads or a
Dask cluster: :mod:`distillbt.executor`)."""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
from threadpoolctl import threadpool_limits

from ..errors import InputError
from ..executor import BACKENDS, one_blas_thread, using
from .artifact import DistilledSet
from .drift import reference_statistics
from .prepare import PreparedData
from .registry import METHODS, method_class

__all__ = ["METHODS", "BACKENDS", "WEIGHTINGS", "distill", "distill_many", "distill_targets", "stack_targets",
           "split_targets", "method_class", "allocate_sizes"]

#: ``frequency``: a regime weighs its share of the training period (reproduces the history);
#: ``equal``: every regime weighs the same (rare regimes such as crashes get a voice).
WEIGHTINGS = ("frequency", "equal")


def allocate_sizes(counts: dict, size: int) -> dict:
    """Split ``size`` points equally over regimes (remainder to the most frequent), ≥ 1 each,
    never more than a regime has rows."""
    names = sorted(counts, key=lambda k: -counts[k])
    if size < len(names):
        raise InputError(f"size {size} is smaller than the number of regimes ({len(names)}): "
                         "give at least one point per regime, or distil without --per-regime")
    sizes = {k: size // len(names) for k in names}
    for k in names[: size % len(names)]:
        sizes[k] += 1
    return {k: min(sizes[k], counts[k]) for k in names}


def _make(cls, *, size, task, seed, params):
    accepted = inspect.signature(cls.__init__).parameters
    kwargs = {k: v for k, v in {"size": size, "task": task, "random_state": seed}.items() if k in accepted}
    return cls(**kwargs, **(params or {}))


def _fit_one(cls, size, task, seed, params, X, y):
    """One (regime, method) job; returns plain arrays (no estimator crosses processes)."""
    started = time.perf_counter()
    distiller = _make(cls, size=size, task=task, seed=seed, params=params).fit(X, y)
    return {
        "X": distiller.X_, "y": distiller.y_, "weight": distiller.weight_,
        "n_iter": distiller.n_iter_, "converged": distiller.converged_,
        "seconds": time.perf_counter() - started,
    }


def distill(
    data: PreparedData,
    *,
    method: str = "gradient",
    size: int = 50,
    task: str = "classification",
    per_regime: bool = True,
    regimes: list[str] | None = None,
    weighting: str = "frequency",
    seed: int = 0,
    method_params: dict | None = None,
    n_jobs: int = 1,
    backend: str = "loky",
    scheduler: str | None = None,
    progress: bool = False,
    executor=None,
    labels: np.ndarray | None = None,
) -> DistilledSet:
    """Distil the training period of ``data`` into a :class:`DistilledSet`.

    With ``per_regime`` each regime's training rows are distilled separately (``size``
    points split equally over regimes; ``exact-linear`` needs at least d + 1 per regime, exactly
    d + 1 for classification — the screen's default size), one
    task per regime on ``backend`` (``loky`` processes by default, ``dask`` on a
    ``LocalCluster`` or the cluster at ``scheduler``) — or on ``executor``, or on the active
    :class:`~distillbt.executor.Executor` (then the three keywords are ignored); a method that
    ``fits_inline`` (exact-linear's closed form) runs here instead. A ``pooled`` method
    (class-moments: exact for the whole period at once) ignores ``per_regime``, and the
    set's ``meta["per_regime"]`` says False. Seeds per task come from
    ``numpy.random.SeedSequence(seed)``, so the result does not depend on the backend or on
    ``n_jobs``. ``regimes`` restricts the set to those regimes. ``labels``: the training rows'
    targets in place of ``data.y(task)``, one column per target for a ``multi_target`` method
    (:func:`distill_targets`). Several distillations at once: :func:`distill_many`.
    """
    plan = _Plan.of(data, method=method, size=size, task=task, per_regime=per_regime, regimes=regimes,
                    weighting=weighting, seed=seed, method_params=method_params, labels=labels)
    started = time.perf_counter()
    if plan.cls.fits_inline:
        backend, results = "inline", [_fit_one(*job) for job in plan.jobs]
    else:
        with using(executor, n_jobs=n_jobs, backend=backend, scheduler=scheduler) as ex:
            backend = ex.backend
            results = ex.map(_fit_one, plan.jobs, desc=f"distil {method}", unit="regime", progress=progress,
                             leave=False)
    return plan.assemble(results, seconds=time.perf_counter() - started, backend=backend)


def distill_many(requests: dict, *, executor=None, progress: bool = False) -> dict:
    """Several distillations in one pass over the workers: ``{key: DistilledSet or the
    InputError it raised}`` for ``requests`` ``{key: {"data": …, **distill's keywords}}``
    (``method``, ``size``, ``task``, ``per_regime``, ``seed``, ``method_params``, ``labels``…;
    not the executor's).

    The per-regime jobs of every request that does not fit inline go to the active executor
    (or ``executor``) as one map, longest first, so the workers stay busy across sets instead
    of waiting on the last regime of each; the inline ones (exact-linear) are fitted here
    meanwhile. Each result is what :func:`distill` gives the request alone (the same seeds
    per job); its ``meta["seconds"]`` is the wall time of its part of the pass. ``data`` may be
    a function that prepares it and ``size`` a function of the prepared data: an inline
    request's are called here while the workers run. One request's failure (an
    :class:`InputError` preparing, planning or fitting it) is its value; the others go on."""
    def plan(key):
        options = dict(requests[key])
        data = options.pop("data")
        data = data() if callable(data) else data
        if callable(options.get("size")):
            options["size"] = options["size"](data)
        return _Plan.of(data, **options)

    out, plans, inline, references = {}, {}, [], {}

    def reference_of(data):  # sets of the same rows (horizons, tasks) share their statistics
        if id(data) not in references:
            references[id(data)] = (data, _reference(data))  # data kept: its id stays its own
        return references[id(data)][1]

    for key, request in requests.items():
        try:
            if method_class(request.get("method", "gradient")).fits_inline:
                inline.append(key)
            else:
                plans[key] = plan(key)
        except InputError as error:
            out[key] = error
    order = [(key, j) for key, p in plans.items() for j in range(len(p.jobs))]
    queued = sorted(order, key=lambda kj: -len(plans[kj[0]].jobs[kj[1]][-1]))  # most rows first: no idle tail
    with using(executor) as ex, contextlib.ExitStack() as stack:
        started = time.perf_counter()
        pending = None
        if queued:  # the workers' pass runs in a thread while this one fits the inline requests
            # BLAS and this thread's OpenMP on one thread while the jobs run: more threads than
            # cores stall all (set here, before the pass's threads start: executor.one_blas_thread)
            stack.enter_context(one_blas_thread())
            stack.enter_context(threadpool_limits(limits=1, user_api="openmp"))
            pool = stack.enter_context(ThreadPoolExecutor(max_workers=1, thread_name_prefix="distillbt-distil"))
            pending = pool.submit(contextvars.copy_context().run, ex.map, _fit_or_error,
                                  [plans[key].jobs[j] for key, j in queued], desc="distil", unit="regime",
                                  progress=progress, leave=False, prefer="threads")
        for key in inline:
            began = time.perf_counter()
            try:
                inline_plan = plan(key)
                out[key] = inline_plan.assemble([_fit_one(*job) for job in inline_plan.jobs],
                                                seconds=time.perf_counter() - began, backend="inline",
                                                reference=reference_of(inline_plan.data))
            except InputError as error:
                out[key] = error
        if pending is not None:
            results = {}
            for (key, j), result in zip(queued, pending.result()):
                results.setdefault(key, [None] * len(plans[key].jobs))[j] = result
            seconds = time.perf_counter() - started
            for key, p in plans.items():
                failed = next((r for r in results[key] if isinstance(r, InputError)), None)
                out[key] = failed if failed is not None else p.assemble(results[key], seconds=seconds,
                                                                        backend=ex.backend,
                                                                        reference=reference_of(p.data))
    return {key: out[key] for key in requests}


def _fit_or_error(*job):
    """:func:`_fit_one`, with an :class:`InputError` returned (one request of
    :func:`distill_many` fails, not the pass)."""
    try:
        return _fit_one(*job)
    except InputError as error:
        return error


def _reference(data: PreparedData) -> dict:
    """The training rows' per-block statistics (:func:`~distillbt.distill.drift.reference_statistics`)."""
    train = data.parts["train"]
    return reference_statistics(data.X[train], data.regime[train], data.labeller.warmup, data.times[train],
                                last_candle=data.candles.end)


@dataclass
class _Plan:
    """One distillation cut into its per-regime jobs (run anywhere) and the assembly of their
    results into a :class:`DistilledSet` (here)."""

    data: PreparedData
    cls: type
    method: str
    task: str
    seed: int
    per_regime: bool
    weighting: str
    size: int
    method_params: dict | None
    counts: dict
    sizes: dict
    jobs: list

    @classmethod
    def of(cls_, data: PreparedData, *, method: str = "gradient", size: int = 50, task: str = "classification",
           per_regime: bool = True, regimes=None, weighting: str = "frequency", seed: int = 0,
           method_params: dict | None = None, labels=None) -> _Plan:
        if weighting not in WEIGHTINGS:
            raise InputError(f"unknown weighting {weighting!r}: choose one of {', '.join(WEIGHTINGS)}")
        cls = method_class(method)
        per_regime = per_regime and not getattr(cls, "pooled", False)
        train = data.parts["train"]
        X, y = data.X[train], (data.y(task, "train") if labels is None else np.asarray(labels, dtype="float64"))
        if len(y) != len(X) or (y.ndim == 2 and not cls.multi_target):
            raise InputError(f"{method} takes one target of the {len(X)} training rows, got labels of shape "
                             f"{y.shape}")
        labels = data.regime[train] if per_regime else np.full(len(X), "all", dtype=object)
        counts = {name: int(n) for name, n in zip(*np.unique(labels.astype(str), return_counts=True))}
        if regimes:
            unknown = [r for r in regimes if r not in counts]
            if unknown:
                raise InputError(f"regime {unknown[0]!r} has no training candles "
                                 f"(present: {', '.join(f'{k} ({v})' for k, v in counts.items())})")
            counts = {r: counts[r] for r in regimes}
        if size < 1 or (size > len(X)):
            raise InputError(f"size {size} must be between 1 and the {len(X)} training rows")
        sizes = allocate_sizes(counts, size)
        names = list(sizes)
        seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(len(names))]
        jobs = [(cls, sizes[r], task, s, method_params, X[labels == r], y[labels == r])
                for r, s in zip(names, seeds)]
        return cls_(data=data, cls=cls, method=method, task=task, seed=seed, per_regime=per_regime,
                    weighting=weighting, size=size, method_params=method_params, counts=counts, sizes=sizes,
                    jobs=jobs)

    def assemble(self, results: list, *, seconds: float, backend: str, reference: dict | None = None
                 ) -> DistilledSet:
        """The set of the jobs' ``results``; ``reference``: :func:`_reference` of its data, when
        already computed for another set of the same rows."""
        data, names, counts = self.data, list(self.sizes), self.counts
        total = sum(counts.values())
        regime_weight = {r: (counts[r] / total if self.weighting == "frequency" else 1 / len(names))
                         for r in names}
        parts = list(zip(names, results))
        meta = {
            **data.metadata(),
            "method": self.method, "task": self.task, "seed": self.seed, "per_regime": self.per_regime,
            "weighting": self.weighting, "regimes": names, "requested_size": self.size,
            "n_rows": int(total),  # real training rows the points stand for
            "config": _make(self.cls, size=self.sizes[names[0]], task=self.task, seed=self.seed,
                            params=self.method_params).get_params(),
            "jobs": [{"regime": r, "points": len(res["X"]), "training_rows": counts[r],
                      "n_iter": res["n_iter"], "converged": res["converged"], "seconds": res["seconds"]}
                     for r, res in parts],
            "seconds": seconds, "backend": backend,
        }
        # what the regime policy of ``update`` compares new candles with: per-block statistics of
        # the training rows (JSON, see distillbt.distill.drift), so it need not recompute them
        meta["reference"] = reference if reference is not None else _reference(data)
        return DistilledSet(
            X=np.concatenate([res["X"] for _, res in parts]),
            y=np.concatenate([res["y"] for _, res in parts]),
            weight=np.concatenate([res["weight"] * regime_weight[r] for r, res in parts]),
            regime=np.concatenate([np.full(len(res["X"]), r, dtype=object) for r, res in parts]),
            meta=meta,
        )


def distill_targets(data: PreparedData, targets: dict, *, method: str, size: int, seed: int = 0,
                    **options) -> dict:
    """One distillation of ``data``'s training rows serving several targets: ``{key:
    DistilledSet}``, every set with the same points and weights and its own labels.

    ``targets`` maps a key to ``(task, labels, header)``: the target's values on the training
    rows (as :meth:`PreparedData.y` gives them) and the header entries that differ from
    ``data``'s (``horizon``, ``target_scale``). ``method`` must be ``multi_target`` (its points
    do not depend on the labels, e.g. ``centroids``); ``options`` as :func:`distill`'s.
    """
    task, labels = stack_targets(targets, method=method)
    shared = distill(data, method=method, size=size, task=task, seed=seed, labels=labels, **options)
    return split_targets(shared, targets)


def stack_targets(targets: dict, *, method: str) -> tuple[str, np.ndarray]:
    """``(task, labels)`` of one distillation serving every target of ``targets`` (as
    :func:`distill_targets` takes them): the first target's task, one label column per target."""
    if not method_class(method).multi_target:
        raise InputError(f"{method} distils one target at a time: its points depend on the labels")
    keys = list(targets)
    return targets[keys[0]][0], np.column_stack([np.asarray(targets[k][1], dtype="float64") for k in keys])


def split_targets(shared: DistilledSet, targets: dict) -> dict:
    """``{key: set}``: the set distilled with :func:`stack_targets`' labels, one per target,
    each with its own label column, task and header entries."""
    shared.meta["targets"] = len(targets)  # how many sets these points serve
    return {key: replace(shared, y=shared.y[:, k].copy(), meta={**shared.meta, "task": targets[key][0],
                                                                  **targets[key][2]})
            for k, key in enumerate(targets)}
