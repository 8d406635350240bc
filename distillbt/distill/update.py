"""Keep a distilled set fresh: periodic, incremental and regime-triggered updates.

::

    new, report = update(DistilledSet.load("set.npz"), candles, policy="regime")
    print("\\n".join(report.summary_lines()))
    new.save("set-updated.npz")

Every policy works in the artifact's own feature space (:mod:`~distillbt.distill.artifact_rows`:
features with its ``feature_options``, its scaler, its labeller's regimes, its target scale),
so points kept from the parent and points distilled now mean the same thing. Method,
configuration and each regime's seed are the parent's (:mod:`~distillbt.distill.redistil`).

*New candles* are the usable rows (complete features and target) after the last row the
artifact has seen (``meta["data_range"]["last"]``; for a set straight from ``distill``, the
last row of its test period). None: nothing is done and the artifact comes back unchanged.

Policies
--------
``periodic``
    Re-distil every regime from scratch on the *window*: the usable rows of the latest
    ``window`` candles (default: as many candles as the artifact was distilled from).
``incremental``
    The same window, but each regime's points start from the parent's points of that regime
    and run only ``steps`` iterations (methods in :data:`WARM_STARTABLE`; the others are
    recomputed on the window, as by ``periodic``). The report gives the relative distance of
    the least-squares coefficients fitted on the parent, on the new set and — with
    ``compare=True``, which also runs ``periodic`` — on the full re-distillation, to those
    fitted on the window's real rows, and the time of both.
``regime``
    Compare the new rows with the rows the artifact was distilled from by the two
    block-permutation tests of :func:`~distillbt.distill.drift.regime_shift` (regime mix;
    features per regime), on the per-block statistics the set stores of its source rows
    (``meta["reference"]``; recomputed from ``candles`` for a set without them or at another
    ``block``). ``candles`` must include the source period all the same: their fingerprint up
    to the set's last candle is checked. A changed mix, or a regime the set does not know,
    re-weights the regimes (``frequency`` weighting) to the new shares; regimes whose features
    changed, new regimes, and — when the mix changed — regimes with ``grow`` times their
    source rows among the new rows are re-distilled from their new rows. The others' points
    (and, when the mix did not change, their weights) stay byte-identical.

Each update appends an entry to ``meta["lineage"]`` (:mod:`~distillbt.distill.lineage`). A
multi-horizon set is updated part by part (:mod:`~distillbt.distill.multihorizon`, which also
holds :func:`distill_horizons`). Why the tests are built as they are, and what the policies
cost and give on the sample market: ``docs/update.md``.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ..data.candles import Candles
from ..errors import InputError
from ..executor import parallel_api
from .artifact import ArtifactError, DistilledSet
from .artifact_rows import ArtifactMismatchError, artifact_pipeline, check_market, verify_reference
from .artifact_rows import artifact_rows
from .drift import BlockStats
from .drift import reference_statistics, regime_shift, stored_reference
from .kernel import ridge_solution
from .lineage import SIZE_KEYS, UpdateReport, child_meta, last_seen, record_update, regime_sources
from .multihorizon import distill_horizons, update_horizons
from .redistil import assemble, job_kwargs, points_by_regime, regime_seeds, run_jobs

__all__ = ["POLICIES", "UpdateReport", "ArtifactMismatchError", "update", "distill_horizons",
           "regime_shift", "reference_statistics", "WARM_STARTABLE"]

POLICIES = ("periodic", "incremental", "regime")
#: Methods whose ``fit`` accepts ``init_points``/``init_targets`` and the option counting
#: their iterations (what ``steps`` sets).
WARM_STARTABLE = {"gradient": "n_outer", "distribution": "n_iter", "kernel": "n_iter"}


@parallel_api  # one executor for every job of the call (takes scheduler=, executor=)
def update(
    artifact: DistilledSet,
    candles: Candles,
    *,
    policy: str = "regime",
    window: int | None = None,
    steps: int = 20,
    seed: int | None = None,
    alpha: float = 0.01,
    block: int | None = None,
    n_permutations: int = 1999,
    min_rows: int = 200,
    grow: float | None = 2.0,
    compare: bool = False,
    verify: bool = True,
    n_jobs: int = 1,
    backend: str = "loky",
    progress: bool = False,
) -> tuple[DistilledSet, UpdateReport]:
    """Update ``artifact`` with ``candles`` by ``policy`` (module docstring).

    Parameters
    ----------
    artifact : DistilledSet
        The parent; never modified. A multi-horizon set is updated part by part (``candles``
        are resampled to each part's interval).
    candles : Candles
        The same market and interval as the artifact, including the candles after it (and,
        for ``policy="regime"``, the period it was distilled from).
    window : int, optional
        Candles of the rolling window of ``periodic`` and ``incremental`` (default: as many
        as the artifact was distilled from).
    steps : int
        Matching iterations of ``incremental``.
    seed : int, optional
        Seed of the distillation jobs (default: the artifact's) and of the permutations.
    alpha, block, n_permutations, min_rows
        The regime policy's tests: level, rows per block (default: the labeller's longest
        window), permutations, fewest new rows to test a regime.
    grow : float, optional
        Regime policy: when the mix changed, also re-distil a regime with ``grow`` times its
        source rows or more among the new rows (None: never).
    compare : bool
        ``incremental`` only: also run the full re-distillation (``periodic``) and report
        how close and how much slower it is.
    verify : bool
        ``regime`` only: refuse candles whose part up to the set's last candle does not have
        the set's fingerprint (other candles than it was distilled from). Candles that begin
        earlier than the set's source fail this check too: pass False then.
    n_jobs, backend, scheduler, executor
        Where the distillation jobs run: ``executor``, else the active
        :class:`~distillbt.executor.Executor`, else one made from ``n_jobs``, ``backend`` and
        ``scheduler`` for the whole call (every part of a multi-horizon set included).

    Returns
    -------
    (DistilledSet, UpdateReport)
        With no new candles, the artifact itself and a report saying so.

    Raises
    ------
    ArtifactMismatchError
        Another symbol or candle interval.
    InputError
        Unknown policy, bad options, or (regime policy) candles that lack the artifact's
        source period.
    """
    # The work here is on small matrices (features × blocks, points × features): one BLAS
    # thread, as each joblib worker gets, is fastest; several oversubscribe a busy machine.
    with threadpool_limits(limits=1, user_api="blas"):
        return _update(artifact, candles, policy=policy, window=window, steps=steps, seed=seed, alpha=alpha,
                       block=block, n_permutations=n_permutations, min_rows=min_rows, grow=grow, compare=compare,
                       verify=verify, n_jobs=n_jobs, backend=backend, progress=progress)


def _update(
    artifact: DistilledSet,
    candles: Candles,
    *,
    policy, window, steps, seed, alpha, block, n_permutations, min_rows, grow, compare, verify, n_jobs, backend,
    progress,
) -> tuple[DistilledSet, UpdateReport]:
    if policy not in POLICIES:
        raise InputError(f"unknown update policy {policy!r}: choose one of {', '.join(POLICIES)}")
    if artifact.part is not None:
        return update_horizons(artifact, candles, _update, policy=policy, window=window, steps=steps, seed=seed,
                               alpha=alpha, block=block, n_permutations=n_permutations, min_rows=min_rows,
                               grow=grow, compare=compare, verify=verify, n_jobs=n_jobs, backend=backend,
                               progress=progress)
    for name, value, low in (("steps", steps, 1), ("n_permutations", n_permutations, 19), ("min_rows", min_rows, 2)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise InputError(f"{name} must be an integer >= {low}, not {value!r}")
    if window is not None and (isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 2):
        raise InputError(f"window must be a number of candles >= 2, not {window!r}")
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be between 0 and 1, not {alpha!r}")
    if grow is not None and (isinstance(grow, bool) or not isinstance(grow, (int, float, np.number))
                             or not grow >= 1):
        raise InputError(f"grow must be a number >= 1 (or None), not {grow!r}")
    meta = artifact.meta
    check_market(meta, candles)
    for key in ("method", "task"):
        if key not in meta:
            raise ArtifactError(f"the distilled set's header lacks {key!r}: cannot update it")
    started = time.perf_counter()
    seed = int(meta.get("seed", 0) if seed is None else seed)
    seen = last_seen(meta)
    timings = {}

    t0 = time.perf_counter()
    after = seen + pd.Timedelta(1, "ns")
    rows = None
    if policy == "regime":
        new = artifact_rows(meta, candles, since=after)
    else:
        # one pass over the window and the new candles: the window's rows, the new ones among them
        window = int(window or meta.get("n_source_candles") or len(candles))
        frame = candles.frame
        early = frame.index[max(0, len(frame) - window - 2)]
        rows = artifact_rows(meta, candles, since=min(early, after))
        new = rows.select(rows.times >= after)
    timings["features"] = time.perf_counter() - t0
    if len(new) == 0:
        report = UpdateReport(policy=policy, action="none",
                              reason=f"no new candles after {seen.isoformat()}: the set is unchanged",
                              timings={"total": time.perf_counter() - started})
        return artifact, report
    new_range = {"first": new.times[0].isoformat(), "last": new.times[-1].isoformat(), "rows": len(new)}

    if policy == "regime":
        result, report = _regime_update(artifact, candles, new, seed=seed, alpha=alpha, block=block,
                                        n_permutations=n_permutations, min_rows=min_rows, grow=grow, n_jobs=n_jobs,
                                        backend=backend, progress=progress, timings=timings, verify=verify)
    else:
        result, report = _window_update(artifact, candles, new, rows, policy=policy, window=window, steps=steps,
                                        seed=seed, compare=compare, n_jobs=n_jobs, backend=backend,
                                        progress=progress, timings=timings)
    report.new_rows, report.new_range = len(new), new_range
    timings["total"] = time.perf_counter() - started
    if result is not artifact:
        record_update(result, artifact, candles, report, last=new.times[-1], seed=seed, seconds=timings["total"])
    return result, report


def _reference_block(meta: dict) -> int:
    """Rows per block of the artifact's stored reference statistics (the regime policy's default)."""
    ref = meta.get("reference")
    if isinstance(ref, dict) and ref.get("block"):
        return int(ref["block"])
    return int(artifact_pipeline(meta)[0].warmup)


def _ridge_coef(X, y, w) -> np.ndarray:
    intercept, coef = ridge_solution(X, y, w / w.sum(), 1e-6)
    return np.append(intercept, coef)


def _rel(a, b) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def _window_update(parent, candles, new, rows, *, policy, window, steps, seed, compare, n_jobs, backend,
                   progress, timings):
    meta = parent.meta
    window = int(window or meta.get("n_source_candles") or len(candles))
    frame = candles.frame
    stop = int(frame.index.searchsorted(new.times[-1], side="right"))
    start_time = frame.index[max(0, stop - window)]
    pool = rows.select((rows.times >= start_time) & (rows.times <= new.times[-1]))
    names = sorted(set(pool.regime), key=lambda r: -int((pool.regime == r).sum())) if meta.get("per_regime", True) \
        else ["all"]
    labels = pool.regime if meta.get("per_regime", True) else np.full(len(pool), "all")
    counts = {r: int((labels == r).sum()) for r in names}
    have = points_by_regime(parent)
    parent_order = list(meta.get("regimes") or [])
    seeds = regime_seeds(seed, parent_order + [r for r in names if r not in parent_order])
    method = meta["method"]
    warm = policy == "incremental" and method in WARM_STARTABLE

    def specs(incremental):
        out = {}
        for r in names:
            rows = labels == r
            size = len(have[r]) if r in have else max(1, parent.size // max(len(have), 1))
            size = min(size, counts[r]) if method != "exact-linear" else size
            init, extra = None, None
            if incremental and r in have and size == len(have[r]):
                init = (parent.X[have[r]], parent.y[have[r]])
                extra = {WARM_STARTABLE[method]: steps}
            out[r] = (method, job_kwargs(meta, size, seeds[r], extra), pool.X[rows], pool.y[rows], init)
        return out

    def run(incremental, desc):
        t = time.perf_counter()
        results = run_jobs(specs(incremental), n_jobs=n_jobs, backend=backend, progress=progress, desc=desc)
        return results, time.perf_counter() - t

    results, seconds = run(warm, f"update {policy}")
    timings["distil"] = seconds
    total = sum(counts.values())
    weighting = meta.get("weighting", "frequency")
    regime_weight = {r: counts[r] / total if weighting == "frequency" else 1 / len(names) for r in names}
    window_info = {"first": pool.times[0].isoformat(), "last": pool.times[-1].isoformat(), "rows": len(pool),
                   "candles": int(stop - frame.index.searchsorted(start_time))}
    sources = {r: {"first": window_info["first"], "last": window_info["last"], "rows": counts[r]} for r in names}
    jobs = [{"regime": r, "points": len(res["X"]), "training_rows": counts[r], "n_iter": res["n_iter"],
             "converged": res["converged"], "seconds": res["seconds"],
             "warm_start": bool(warm and r in have)} for r, res in results.items()]
    block = _reference_block(meta)
    new_meta = child_meta(parent, sources=sources, jobs=jobs, n_source=window_info["candles"],
                          reference=BlockStats.from_rows(pool.X, pool.regime, block, pool.times))
    new_meta["regimes"] = names

    def build(res):
        return assemble(parent, {r: (v["X"], v["y"], v["weight"]) for r, v in res.items()}, regime_weight,
                        new_meta)

    result = build(results)
    if policy == "periodic":
        action, reason = "redistilled", f"re-distilled every regime from scratch on the latest {window} candles"
    elif warm:
        action, reason = "fine-tuned", (f"warm-started each regime from the parent's points, {steps} "
                                        f"{WARM_STARTABLE[method]} iterations on the latest {window} candles")
    else:
        action, reason = "redistilled", (f"{method} has nothing to warm-start (closed-form or a coreset): "
                                         f"recomputed on the latest {window} candles")
    # closeness: least-squares coefficients of each set against those of the window's real rows
    w_real = np.array([regime_weight[r] / counts[r] for r in labels]) if counts else None
    real = _ridge_coef(pool.X, pool.y.astype(float), w_real)
    closeness = {"parent_coef_rel_error": _rel(_ridge_coef(parent.X, parent.y, parent.weight), real),
                 "updated_coef_rel_error": _rel(_ridge_coef(result.X, result.y, result.weight), real)}
    if compare and policy == "incremental":
        full_results, full_seconds = run(False, "full re-distillation")
        full = build(full_results)
        closeness.update({
            "full_coef_rel_error": _rel(_ridge_coef(full.X, full.y, full.weight), real),
            "updated_vs_full_coef_rel_distance": _rel(_ridge_coef(result.X, result.y, result.weight),
                                                      _ridge_coef(full.X, full.y, full.weight)),
            "full_seconds": full_seconds, "speedup": full_seconds / max(seconds, 1e-9),
        })
    report = UpdateReport(policy=policy, action=action, reason=reason, window=window_info,
                          closeness=closeness, timings=timings, redistilled=names, kept=[])
    return result, report


def _regime_update(parent, candles, new, *, seed, alpha, block, n_permutations, min_rows, grow, n_jobs, backend,
                   progress, timings, verify=True):
    meta = parent.meta
    if not meta.get("per_regime", True):
        raise InputError("the regime policy needs a set distilled per regime (--per-regime); "
                         "use --policy periodic or incremental")
    labeller = artifact_pipeline(meta)[0]
    block = int(block or labeller.warmup)
    sources = regime_sources(meta)
    if not sources:
        raise ArtifactError("the distilled set's header names no source period: cannot compare regimes")
    t0 = time.perf_counter()
    first = min(pd.Timestamp(s["first"]) for s in sources.values())
    if candles.frame.index[0] > first:
        raise InputError(f"the regime policy compares the new candles with those the set was distilled from "
                         f"({first.isoformat()} on): give candles that include that period")
    verified = verify_reference(meta, candles)
    if verified is False and verify:
        raise ArtifactMismatchError(
            "the candles up to the set's last one are not those it was distilled from (fingerprint differs): "
            "give the same series, extended (the same file or cache entry, starting where it started)")
    reference = stored_reference(meta, block)
    if reference is None:
        # a set without stored statistics (or tested at another block size): recompute its rows
        history = artifact_rows(meta, candles, since=first)
        keep = np.zeros(len(history), dtype=bool)
        for r, s in sources.items():
            keep |= (history.regime == r) & (history.times >= pd.Timestamp(s["first"])) & \
                    (history.times <= pd.Timestamp(s["last"]))
        # rows of regimes the set does not know, inside its overall source period, count for the mix
        span = (history.times >= first) & (history.times <= max(pd.Timestamp(s["last"]) for s in sources.values()))
        old = history.select(keep | (span & ~np.isin(history.regime, list(sources))))
        reference = BlockStats.from_rows(old.X, old.regime, block, old.times)
    timings["features"] += time.perf_counter() - t0
    if reference.rows == 0:
        raise InputError("the candles hold none of the rows the set was distilled from: the regime policy "
                         "needs that period to compare with")
    new_stats = BlockStats.from_rows(new.X, new.regime, block, new.times)

    t0 = time.perf_counter()
    tests = regime_shift(reference, new_stats, block=block, alpha=alpha, n_permutations=n_permutations, min_rows=min_rows,
                         seed=seed, feature_names=list(meta["feature_names"]))
    timings["detect"] = time.perf_counter() - t0
    regimes, mix = tests["regimes"], tests["mix"]
    have = points_by_regime(parent)
    changed = [r for r, v in regimes.items() if v["status"] == "changed" and r in have]
    appeared = [r for r, v in regimes.items() if v["status"] == "new" and (new.regime == r).sum() > 0]
    outgrown = []
    trained_on = {j.get("regime"): j.get("training_rows") for j in meta.get("jobs") or []}
    if grow is not None and mix["changed"]:
        for r, v in regimes.items():
            # the rows its points were distilled from (the reference keeps only the latest blocks)
            source_rows = int((sources.get(r) or {}).get("rows") or trained_on.get(r) or v["rows_old"])
            if r in have and r not in changed and v["rows_new"] >= max(min_rows, grow * source_rows):
                v["status"] = "outgrown"
                v["why"] = (f"{v['rows_new']} new rows, {v['rows_new'] / max(source_rows, 1):.1f}x its "
                            f"{source_rows} source rows, and the mix changed: re-distilled from the larger sample")
                outgrown.append(r)
    redo = changed + appeared + outgrown
    for r in regimes:
        if r in have and r not in redo:
            regimes[r].setdefault("why", "")
    mix["reference_verified"] = verified

    parent_order = list(meta.get("regimes") or [])
    seeds = regime_seeds(seed, parent_order + [r for r in redo if r not in parent_order])
    method = meta["method"]
    specs = {}
    for r in redo:
        rows = new.regime == r
        size = len(have[r]) if r in have else max(1, parent.size // max(len(have), 1))
        size = min(size, int(rows.sum())) if method != "exact-linear" else size
        specs[r] = (method, job_kwargs(meta, size, seeds[r]), new.X[rows], new.y[rows], None)
    t0 = time.perf_counter()
    results = run_jobs(specs, n_jobs=n_jobs, backend=backend, progress=progress, desc="update regime")
    timings["distil"] = time.perf_counter() - t0

    if not redo and not mix["changed"]:
        report = UpdateReport(
            policy="regime", action="checked", reason="no regime changed and the regime mix did not change: "
            "points and weights unchanged", regimes=regimes, mix=mix, timings=timings, kept=list(have))
        result = DistilledSet(X=parent.X, y=parent.y, weight=parent.weight, regime=parent.regime,
                              episodes=parent.episodes,
                              meta={k: v for k, v in meta.items() if k not in SIZE_KEYS})
        return result, report

    # weights: the new shares when the mix changed (frequency weighting), else the parent's
    weighting = meta.get("weighting", "frequency")
    names = [r for r in parent_order if r in have] + [r for r in redo if r not in have]
    parts, regime_weight = {}, {}
    for r in names:
        if r in results:
            parts[r] = (results[r]["X"], results[r]["y"], results[r]["weight"])
        else:
            idx = have[r]
            parts[r] = (parent.X[idx], parent.y[idx], parent.weight[idx])
        if mix["changed"] or r not in have:
            if weighting == "frequency":
                regime_weight[r] = mix["new_shares"].get(r, 0.0)
            else:
                regime_weight[r] = 1.0 / len(names)
        else:
            regime_weight[r] = float(parent.weight[have[r]].sum())
    if not mix["changed"]:
        # re-distilled regimes keep their share; kept regimes keep their exact weights
        regime_weight = {r: (None if r not in results else regime_weight[r]) for r in names}
    else:
        total = sum(regime_weight.values())
        regime_weight = {r: v / total for r, v in regime_weight.items()}
    new_sources = {r: sources[r] for r in names if r in sources and r not in results}
    for r in results:
        new_sources[r] = {"first": new.times[0].isoformat(), "last": new.times[-1].isoformat(),
                          "rows": int((new.regime == r).sum())}
    jobs = [j for j in (meta.get("jobs") or []) if j.get("regime") in names and j.get("regime") not in results]
    jobs += [{"regime": r, "points": len(res["X"]), "training_rows": int((new.regime == r).sum()),
              "n_iter": res["n_iter"], "converged": res["converged"], "seconds": res["seconds"]}
             for r, res in results.items()]
    # the reference of the next update: the kept regimes' source rows, the re-distilled ones' new rows
    new_meta = child_meta(parent, sources=new_sources, jobs=jobs,
                          n_source=int(meta.get("n_source_candles") or 0) + len(new),
                          reference=BlockStats.concat(reference.only([r for r in reference.names if r not in results]),
                                                       new_stats.only(list(results))))
    result = assemble(parent, parts, regime_weight, new_meta)
    if mix["changed"]:
        # kept regimes: their points and their weights within the regime are the parent's
        for r in names:
            if r not in results:
                regimes.setdefault(r, {})["why"] = "points kept; weight set to the new share"
    kept = [r for r in names if r not in results]
    why = []
    if changed:
        why.append("feature distribution changed in " + ", ".join(changed))
    if appeared:
        why.append("new regime(s) " + ", ".join(appeared))
    if outgrown:
        why.append("outgrew their source rows: " + ", ".join(outgrown))
    if mix["changed"]:
        why.append(f"regime mix changed (chi-square {mix['chi2']:.3f}, TV {mix['tv']:.3f}, p {mix['p_value']:.4f})")
    action = "partial" if redo else "reweighted"
    report = UpdateReport(policy="regime", action=action,
                          reason="; ".join(why) + (f": re-distilled {', '.join(redo)}, kept {', '.join(kept) or '-'}"
                                                   if redo else ": weights updated, points kept"),
                          regimes=regimes, mix=mix, timings=timings, redistilled=redo, kept=kept)
    return result, report
