"""Multi-horizon sets: one artifact holding a distilled part per candle interval.

:func:`distill_horizons` resamples the base candles
(:func:`~distillbt.data.resample.resample_candles`) to several intervals, prepares and distils
each, and stores one part per interval in one artifact (``DistilledSet.part``);
``part_for(timeframe)`` gives back the single-horizon set a model strategy fits on (the screen
picks the part of the candles it screens). :func:`update_horizons` updates such a set part by
part (what :func:`~distillbt.distill.update.update` does with one).
"""

from __future__ import annotations

from collections.abc import Callable

from tqdm.auto import tqdm

from ..data.candles import Candles
from ..data.resample import resample_candles
from ..errors import InputError
from ..executor import parallel_api
from .artifact import DistilledSet, fingerprint_candles
from .lineage import SIZE_KEYS, UpdateReport, extend_lineage, lineage_entry
from .prepare import DEFAULT_FRACTIONS, prepare
from .runner import distill

__all__ = ["distill_horizons", "update_horizons"]


@parallel_api  # one executor for every interval's distillation (takes scheduler=, executor=)
def distill_horizons(candles: Candles, timeframes, *, progress: bool = False, fractions=None, n_jobs: int = 1,
                     backend: str = "loky", **distill_options) -> DistilledSet:
    """Distil ``candles`` resampled to each of ``timeframes`` into one multi-horizon set.

    Each interval is prepared on its own (features, split, scaler and labeller on its own
    candles) and distilled with ``distill_options`` (those of
    :func:`~distillbt.distill.runner.distill`); every part weighs the same in the set. All the
    intervals run on one executor: ``executor=``, the active one, or one made from ``n_jobs``,
    ``backend`` and ``scheduler=`` for the call.
    """
    timeframes = [str(tf).strip() for tf in timeframes if str(tf).strip()]
    if not timeframes:
        raise InputError("give at least one timeframe")
    if len(set(timeframes)) != len(timeframes):
        raise InputError(f"timeframes repeat: {', '.join(timeframes)}")
    sets = {}
    for tf in tqdm(timeframes, disable=not progress, desc="horizons", unit="timeframe", leave=False):
        resampled = resample_candles(candles, tf)
        try:
            data = prepare(resampled, fractions=fractions or DEFAULT_FRACTIONS)
        except InputError as error:
            raise InputError(f"{tf}: {len(resampled)} candles after resampling: {error}") from None
        sets[tf] = distill(data, progress=False, n_jobs=n_jobs, backend=backend, **distill_options)
    return DistilledSet.combine_horizons(
        sets, meta={"timeframe": candles.timeframe, "fingerprint": fingerprint_candles(candles.frame),
                    "seconds": sum(s.meta.get("seconds", 0.0) for s in sets.values())})


def update_horizons(artifact: DistilledSet, candles: Candles, update_part: Callable,
                    **options) -> tuple[DistilledSet, UpdateReport]:
    """Update each part of the multi-horizon ``artifact`` by ``update_part(part, candles
    resampled to its interval, **options)`` (a single-horizon update returning ``(set,
    report)``), and combine the parts again, with one lineage entry for the whole update. With
    nothing new in any part: the artifact itself."""
    parts, reports = {}, {}
    for tf in artifact.timeframes:
        part = artifact.part_for(tf)
        parts[tf], reports[tf] = update_part(part, resample_candles(candles, tf), **options)
    first = next(iter(reports.values()))
    report = UpdateReport(policy=first.policy, action=",".join(f"{tf}:{r.action}" for tf, r in reports.items()),
                          reason="; ".join(f"{tf}: {r.reason}" for tf, r in reports.items()),
                          new_rows=sum(r.new_rows for r in reports.values()),
                          regimes={f"{tf}/{k}": v for tf, r in reports.items() for k, v in r.regimes.items()},
                          timings={"total": sum(r.timings.get("total", 0.0) for r in reports.values())},
                          redistilled=[f"{tf}/{x}" for tf, r in reports.items() for x in r.redistilled],
                          kept=[f"{tf}/{x}" for tf, r in reports.items() for x in r.kept])
    if all(r.action == "none" for r in reports.values()):
        return artifact, report
    dropped = ("horizons", "timeframes", "regimes", "n_source_candles", *SIZE_KEYS)
    keep = {k: v for k, v in artifact.meta.items() if k not in dropped}
    combined = DistilledSet.combine_horizons(parts, meta=keep)
    entry = lineage_entry(artifact, candles, {"first": candles.start.isoformat(), "last": candles.end.isoformat()},
                          policy=first.policy, action=report.action,
                          parts={tf: r.action for tf, r in reports.items()})
    combined.meta["lineage"] = extend_lineage(artifact, entry)
    return combined, report
