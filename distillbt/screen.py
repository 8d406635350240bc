"""The screen: rank every configuration of a folder of strategies fast, backtest the survivors.

Periods (in time order; fractions of the usable candles, default 50 / 30 / 20 %):

- **training**: regime labeller, scaler and distilled points come from here; full backtests of
  model strategies fit their models on these real candles;
- **screening**: every configuration is scored here — model strategies by the vectorised
  execution of a model fitted on the distilled points (milliseconds), plain strategies by a
  learned surrogate of each configuration (``path="surrogate"`` or ``"surrogate+escalated"``;
  ``"full"`` where it could not be trusted, on short histories, or with ``plain="full"``);
  ``validate=True`` also backtests every
  configuration in full here, which is how far the screen can be trusted;
- **holdout**: the survivors are backtested again on this later period, which nothing was
  selected on: the honest out-of-sample number.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from tqdm.auto import tqdm

from .backtest import BacktestJob, run_many
from .data.candles import Candles
from .data.resample import resample_candles
from .discovery import Configuration, Discovery, StrategyError, configuration_name, discover
from .distill.artifact import DistilledSet
from .distill.prepare import prepare
from .distill.runner import distill
from .errors import InputError
from .horizons import check_horizons
from ._vectorised_screen import screen_vectorised
from .stats import deflated_sharpe_ratio, probability_of_backtest_overfitting, return_summary
from .strategy import ModelStrategy

__all__ = ["screen", "ScreenResult", "DEFAULT_FRACTIONS", "TASK_OF_TARGET"]

DEFAULT_FRACTIONS = (0.5, 0.3, 0.2)
TASK_OF_TARGET = {"return": "regression", "direction": "classification"}
_STAT_KEYS = ("total_return_pct", "cagr_pct", "sharpe", "sortino", "max_drawdown_pct", "n_trades",
              "win_rate_pct", "profit_factor", "exposure_pct")


@dataclass
class ScreenResult:
    """One record per configuration (ranked) and a summary (periods, timings, trust)."""

    records: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)
    #: What the report's plots need (price, regimes, survivors' equity, distributions,
    #: episodes; see :mod:`distillbt.report.series`); saved as ``"series"`` when present.
    series: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {"summary": self.summary, "records": self.records, "problems": self.problems}
        if self.series:
            out["series"] = self.series
        return out

    def table(self, limit: int | None = None) -> str:
        head = ["rank", "survivor", "configuration", "path", "screen", "full", "holdout"]
        rows = []
        for r in self.records[:limit]:
            rows.append([
                str(r["screen_rank"]) if r["screen_rank"] else "-", "*" if r["survivor"] else "",
                r["name"], r["path"], _fmt(r.get("screen_score")), _fmt(r.get("full_score")),
                _fmt(r.get("holdout_score")),
            ])
        widths = [max(len(x[i]) for x in [head] + rows) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [head] + rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def _fmt(value) -> str:
    return "" if value is None else f"{value:+.4f}"


def _periods(candles: Candles, fractions) -> dict:
    """Candle positions ``[start, stop)`` of the three periods, from the usable rows' split."""
    data = prepare(candles, fractions=fractions)
    index = candles.frame.index

    def bounds(part):
        rows = data.parts[part]
        return int(index.get_loc(data.times[rows.start])), int(index.get_loc(data.times[rows.stop - 1])) + 1

    periods = {name: bounds(part) for name, part in
               (("training", "train"), ("screening", "validation"), ("holdout", "test"))}
    return {"data": data, **periods}


def _describe(candles: Candles, start: int, stop: int) -> dict:
    index = candles.frame.index
    return {"first": index[start].isoformat(), "last": index[stop - 1].isoformat(), "candles": stop - start}


def _stats(result: dict) -> dict:
    return {k: result.get(k) for k in _STAT_KEYS if k in result}


def screen(
    folder,
    candles: Candles,
    *,
    distilled: DistilledSet | dict | None = None,
    method: str = "exact-linear",
    size: int | None = None,
    per_regime: bool = True,
    top: int = 10,
    min_score: float | None = None,
    validate: bool = False,
    n_jobs: int = 1,
    backend: str = "loky",
    commission: float = 0.001,
    cash: float = 10_000.0,
    fractions=DEFAULT_FRACTIONS,
    seed: int = 0,
    progress: bool = True,
    plain: str = "surrogate",
    horizons=(),
) -> ScreenResult:
    """Screen every configuration of the strategies in ``folder`` on ``candles``.

    ``distilled``: a :class:`DistilledSet` (or a dict task → set) to fit model strategies on;
    by default one is distilled on the fly from the training period with ``method`` and
    ``size`` (per regime). The default, ``exact-linear`` with d + 1 points per regime,
    reproduces the training period's second moments exactly, so linear models (least squares,
    ridge) fitted on it equal their full-data fits and logistic ones come very close; it
    ranked configurations best in ``benchmarks/bench_screen.py``. Other methods default to
    100 points. ``top`` survivors (or those with ``screen_score >= min_score``)
    get full backtests on the screening and holdout periods. Returns a
    :class:`ScreenResult`; see the module docstring for the periods.

    ``plain``: how plain (non-model) strategies are screened — ``"surrogate"`` (a learned
    surrogate of each configuration, escalated to more episodes and then to a full backtest
    when it cannot be trusted; :mod:`distillbt.surrogate`; the default — on short histories it
    backtests everything in full itself) or ``"full"`` (a full backtest each). Each record's
    ``path`` says which score it got.

    ``horizons``: longer candle intervals (e.g. ``("1h", "4h")``) every model configuration
    also fits its model at, trading the mean prediction (the ``horizons`` param of
    :class:`~distillbt.strategy.ModelStrategy`; :mod:`distillbt.horizons`). Their points
    come from the parts of a multi-horizon ``distilled`` set (``distill --timeframes``), or
    are distilled now from the training period resampled to each interval.
    """
    if plain not in ("surrogate", "full"):
        raise InputError(f"plain must be 'surrogate' or 'full', not {plain!r}")
    started = time.perf_counter()
    found: Discovery = folder if isinstance(folder, Discovery) else discover(folder)
    configs = found.configurations()
    if not configs:
        raise StrategyError(f"no strategy configurations found in {folder}")
    horizons = check_horizons(candles.timeframe, horizons) if horizons else ()
    if horizons:
        configs = [_with_horizons(c, horizons) if issubclass(c.strategy.cls, ModelStrategy) else c for c in configs]
    if top < 1 or (min_score is None and top > len(configs)):
        raise InputError(f"--top {top} must be between 1 and the number of configurations ({len(configs)})")

    periods = _periods(candles, fractions)
    data = periods.pop("data")
    (train_start, train_stop), (s_start, s_stop), (h_start, h_stop) = (
        periods["training"], periods["screening"], periods["holdout"])
    is_model = [issubclass(c.strategy.cls, ModelStrategy) for c in configs]

    # 1. Distilled training points, one set per task the model strategies need.
    tasks = sorted({TASK_OF_TARGET[c.strategy.cls.target] for c, m in zip(configs, is_model) if m})
    sets, distill_seconds = _distilled_sets(distilled, data, tasks, method=method, size=size,
                                            per_regime=per_regime, seed=seed, n_jobs=n_jobs,
                                            backend=backend, progress=progress, horizons=horizons,
                                            train_stop=train_stop)
    for task, dset in sets.items():
        for part in ([dset.part_for(tf) for tf in dset.timeframes] if dset.part is not None else [dset]):
            last_train = pd.Timestamp(part.meta["split"]["train"]["last"])
            if last_train >= candles.frame.index[s_start]:
                raise InputError(f"the distilled set was trained up to {last_train}, which is not before "
                                 f"the screening period ({candles.frame.index[s_start]})")

    # 2. The screen: model strategies fitted on distilled points, vectorised over screening.
    screen_started = time.perf_counter()
    records, curves, summaries = [], {}, {}
    feature_cache: dict = {}  # features of the screening run, reused by the validation replicas
    plain_jobs, model_jobs = [], []
    for config, model in zip(configs, is_model):
        record = {"name": config.name, "strategy": config.strategy.name, "params": config.params,
                  "file": str(config.strategy.file), "path": "vectorised" if model else "full",
                  "screen_score": None, "screen_rank": None, "survivor": False, "error": None}
        records.append(record)
        (model_jobs if model else plain_jobs).append((record, config))
    with tqdm(total=len(model_jobs), desc="screen", unit="config", disable=not progress or not model_jobs,
              leave=False) as bar:
        outcomes = screen_vectorised([c for _, c in model_jobs], sets, candles, task_of_target=TASK_OF_TARGET,
                                     cash=cash, commission=commission, start=s_start, stop=s_stop,
                                     n_jobs=n_jobs, backend=backend, progress=bar, feature_cache=feature_cache)
    for (record, config), outcome in zip(model_jobs, outcomes):
        if outcome["error"]:
            record["error"] = outcome["error"]
            continue
        record["screen_score"] = outcome["score"]
        if outcome["notes"]:
            record["notes"] = outcome["notes"]
        summaries[config.name] = outcome["returns"]
    screen_seconds = time.perf_counter() - screen_started

    # Plain strategies: a learned surrogate (distillbt.surrogate), or a full backtest each.
    plain_started = time.perf_counter()
    plain_summary = None
    if plain_jobs and plain == "surrogate":
        from .surrogate.api import fill_screen_records

        plain_summary, plain_curves = fill_screen_records(
            plain_jobs, candles, train=(train_start, train_stop), screen=(s_start, s_stop), seed=seed,
            n_jobs=n_jobs, backend=backend, cash=cash, commission=commission, progress=progress,
            episodes=_stored_episodes(distilled, candles, s_start))
        for name, curve in plain_curves.items():
            summaries[name] = return_summary(np.asarray(curve, dtype="float64"))
    elif plain_jobs:
        results = run_many([BacktestJob(c, candles, cash=cash, commission=commission,
                                        start=candles.frame.index[s_start], end=candles.frame.index[s_stop - 1],
                                        warmup_bars=s_start) for _, c in plain_jobs],
                           n_jobs=n_jobs, backend=backend, progress=progress)
        for (record, config), result in zip(plain_jobs, results):
            if result.get("error"):
                record["error"] = result["error"]
                continue
            record["screen_score"] = record["full_score"] = float(result["score"])
            record["full_stats"] = _stats(result)
            if result.get("equity") is not None:
                curves[config.name] = np.asarray(result["equity"], dtype="float64")
                summaries[config.name] = return_summary(curves[config.name])
    plain_seconds = time.perf_counter() - plain_started

    # 3. Rank and select survivors.
    scored = sorted((r for r in records if r["screen_score"] is not None and np.isfinite(r["screen_score"])),
                    key=lambda r: -r["screen_score"])
    for rank, record in enumerate(scored, start=1):
        record["screen_rank"] = rank
        record["survivor"] = (record["screen_score"] >= min_score) if min_score is not None else rank <= top
    by_name = {c.name: c for c in configs}

    # 4. Full backtests: survivors on screening (if not yet) and holdout; everything with --validate.
    full_started = time.perf_counter()

    def job_for(record, start, stop):
        config = by_name[record["name"]]
        params = dict(config.params)
        if record["path"] == "vectorised":
            # The model is fitted inside the worker on the real candles before ``start`` (its
            # own fit_model): fitted objects may hold classes of the user's strategy file,
            # which a worker cannot unpickle before it has imported that file.
            params["trade_start"] = candles.frame.index[start]
        return BacktestJob(Configuration(config.strategy, params, config.name), candles, cash=cash,
                           commission=commission, start=candles.frame.index[start],
                           end=candles.frame.index[stop - 1], warmup_bars=start,
                           # only survivors' curves are shown; the rest would pile up in memory
                           record_equity=record["survivor"])

    screening_targets = [r for r in records if r["path"] in _FAST_PATHS and r["screen_score"] is not None
                         and (validate or r["survivor"])]
    holdout_targets = [r for r in records if r["survivor"]]
    jobs = [job_for(r, s_start, s_stop) for r in screening_targets] + \
           [job_for(r, h_start, h_stop) for r in holdout_targets]
    results = run_many(jobs, n_jobs=n_jobs, backend=backend, progress=progress) if jobs else []
    validation_seconds = 0.0
    for record, result in zip(screening_targets, results[: len(screening_targets)]):
        if result.get("error"):
            record["error"] = result["error"]
            continue
        record["full_score"] = float(result["score"])
        record["full_stats"] = _stats(result)
        validation_seconds += float(result.get("seconds") or 0.0)
    # The real-fitted model each worker used (same data, same code), run vectorised: do the two
    # executions agree? Plain strategies have no model to replay.
    replayed = [(r, res) for r, res in zip(screening_targets, results) if r["path"] == "vectorised"
                and r.get("full_score") is not None]
    replicas = screen_vectorised([by_name[r["name"]] for r, _ in replayed], None, candles,
                                 task_of_target=TASK_OF_TARGET, cash=cash, commission=commission, start=s_start,
                                 stop=s_stop, feature_cache=feature_cache) if replayed else []
    for (record, result), replica in zip(replayed, replicas):
        if replica["error"] is None:
            record["execution_rel_diff"] = abs(replica["final_value"] - result["final_value"]) / result["final_value"]
    for record, result in zip(holdout_targets, results[len(screening_targets):]):
        if result.get("error"):
            record["holdout_error"] = result["error"]
            continue
        record["holdout_score"] = float(result["score"])
        record["holdout_stats"] = _stats(result)
    full_seconds = time.perf_counter() - full_started

    summary = {
        "source": candles.source, "symbol": candles.symbol, "timeframe": candles.timeframe,
        "synthetic": candles.synthetic,
        "periods": {name: _describe(candles, *bounds) for name, bounds in
                    (("training", (train_start, train_stop)), ("screening", (s_start, s_stop)),
                     ("holdout", (h_start, h_stop)))},
        "score": "log(final value / initial cash)",
        "cash": cash, "commission": commission, "configurations": len(configs),
        "model_configurations": int(sum(is_model)), "plain_configurations": len(plain_jobs),
        "errors": sum(1 for r in records if r["error"]),
        "distilled": {task: {"method": d.meta.get("method"), "points": d.size, "per_regime": d.meta.get("per_regime"),
                             "compression_ratio": d.compression_ratio, "fallback": d.meta.get("fallback"),
                             "timeframes": d.timeframes}
                      for task, d in sets.items()},
        "distill_seconds": distill_seconds, "screen_seconds": screen_seconds,
        "plain_full_seconds": plain_seconds, "full_seconds": full_seconds,
        "survivors": [r["name"] for r in records if r["survivor"]],
    }
    summary.update(_trust(records, summaries, top=top, validate=validate, validation_seconds=validation_seconds,
                          screen_seconds=screen_seconds))
    if plain_summary is not None:
        summary["plain_surrogate"] = _plain_trust(records, plain_summary, validate=validate)
    summary["total_seconds"] = time.perf_counter() - started
    records.sort(key=lambda r: (r["screen_rank"] is None, r["screen_rank"] or 0))
    from .report.series import collect_series

    series = collect_series(candles, data=data, sets=sets, records=records, curves=curves, periods=periods,
                            screening_targets=screening_targets, holdout_targets=holdout_targets,
                            results=results, cash=cash)
    return ScreenResult(records=records, summary=summary,
                        problems=[{"file": p.file, "message": p.message} for p in found.errors], series=series)


_FAST_PATHS = ("vectorised", "surrogate", "surrogate+escalated")


def _plain_trust(records, plain_summary, *, validate) -> dict:
    """The plain strategies' surrogate screen: its phases and paths, and with ``validate`` its
    own Spearman against the full backtests (escalated-to-full records count as exact)."""
    out = {k: v for k, v in plain_summary.items() if k != "regimes"}
    plain = [r for r in records if r["path"] in ("surrogate", "surrogate+escalated", "full")
             and "trust" in r and r["screen_score"] is not None and r.get("full_score") is not None]
    if validate and len(plain) >= 3:
        out["spearman"] = float(spearmanr([r["screen_score"] for r in plain],
                                          [r["full_score"] for r in plain]).statistic)
        out["validated_configurations"] = len(plain)
    return out


def _default_size(method, data, per_regime) -> int:
    if method != "exact-linear":
        return 100
    regimes = len(set(data.regime[data.parts["train"]])) if per_regime else 1
    return (len(data.feature_names) + 1) * regimes


def _stored_episodes(distilled, candles: Candles, s_start: int):
    """``(episodes, n_base)`` from the given distilled set(s) (``distill --episodes``), placed
    in ``candles``; None when there are none. Refused when they come from another market or
    reach into the screening period (the surrogates would learn from what they are scored on)."""
    sets = list(distilled.values()) if isinstance(distilled, dict) else [distilled]
    dset = next((d for d in sets if d is not None and getattr(d, "episodes", None) is not None
                 and d.episodes.n), None)
    if dset is None:
        return None
    for key, have in (("symbol", candles.symbol), ("timeframe", candles.timeframe)):
        if dset.meta.get(key) not in (None, have):
            raise InputError(f"the distilled set's episodes are of {dset.meta[key]} candles, the screen's of "
                             f"{have}: distil from the same market and interval")
    last = pd.Timestamp(int(dset.episodes.time_ns.max()), unit="ns", tz="UTC")
    if last >= candles.frame.index[s_start]:
        raise InputError(f"the distilled set's episodes reach {last}, which is not before the screening "
                         f"period ({candles.frame.index[s_start]})")
    return dset.episodes.located_in(candles.frame), dset.episodes.n


def _with_horizons(config: Configuration, horizons: tuple) -> Configuration:
    params = {**config.params, "horizons": horizons}
    return Configuration(config.strategy, params, configuration_name(config.strategy.name, params))


def _distilled_sets(distilled, data, tasks, *, method, size, per_regime, seed, n_jobs, backend, progress,
                    horizons=(), train_stop=None):
    base = data.candles.timeframe
    if distilled is not None:
        given = distilled if isinstance(distilled, dict) else {distilled.meta.get("task"): distilled}
        for v in given.values() if horizons else ():
            parts = v.timeframes if v.part is not None else []
            missing = [tf for tf in (base, *horizons) if tf not in parts]
            if missing:
                raise InputError(f"horizons need a multi-horizon distilled set with {base} and "
                                 f"{', '.join(horizons)} parts (distill --timeframes); it lacks {', '.join(missing)}")
        # a multi-horizon set: the part of the screened candles' interval (all of it for horizons)
        given = {k: v.part_for(base) if getattr(v, "part", None) is not None and not horizons else v
                 for k, v in given.items()}
        sets = {}
        for task in tasks:
            if task in given:
                sets[task] = given[task]
            elif task == "classification" and "regression" in given:
                sets[task] = given["regression"]  # model strategies read its returns as y > 0
            else:
                raise InputError(f"the distilled set is for {', '.join(map(str, given))}, but some model "
                                 f"strategies need a {task} set: distil one with --task {task}")
        return sets, 0.0
    started = time.perf_counter()
    sets = {}
    for task in tasks:
        try:
            sets[task] = distill(data, method=method, size=size or _default_size(method, data, per_regime),
                                 task=task, per_regime=per_regime, seed=seed, n_jobs=n_jobs, backend=backend,
                                 progress=progress)
        except InputError as error:
            if not per_regime:
                raise
            # Small regimes give noisy, strong per-regime signals (e.g. exact-linear soft labels
            # outside [0, 1]): distil the whole training period at once instead, and say so.
            sets[task] = distill(data, method=method, size=size or _default_size(method, data, False),
                                 task=task, per_regime=False, seed=seed, n_jobs=n_jobs, backend=backend,
                                 progress=progress)
            sets[task].meta["fallback"] = f"not per regime: {str(error).splitlines()[0]}"
        if horizons:
            sets[task] = _with_coarse_parts(sets[task], data.candles, horizons, train_stop, method=method,
                                            size=size, task=task, per_regime=per_regime, seed=seed,
                                            n_jobs=n_jobs, backend=backend)
    return sets, time.perf_counter() - started


def _with_coarse_parts(base_set, candles: Candles, horizons, train_stop: int, *, method, size, **options):
    """A multi-horizon set: ``base_set`` and, per horizon, the training period resampled and
    distilled on its own (features, scaler and labeller fitted on those candles only; the
    last 10% of them is left out as the split's validation and test, so nothing the coarse
    part learns from reaches the screening period)."""
    head = candles.rows(slice(0, train_stop))
    parts = {candles.timeframe: base_set}
    for tf in horizons:
        coarse = resample_candles(head, tf)
        try:
            data = prepare(coarse, fractions=(0.9, 0.05, 0.05))
            parts[tf] = distill(data, method=method, size=size or _default_size(method, data, options["per_regime"]),
                                **options)
        except InputError as error:
            raise InputError(f"horizon {tf}: {len(coarse)} candles in the training period: "
                             f"{str(error).splitlines()[0]}") from None
    return DistilledSet.combine_horizons(parts, meta={"timeframe": candles.timeframe})


def _trust(records, summaries, *, top, validate, validation_seconds, screen_seconds) -> dict:
    """Overfitting statistics always; fidelity against full backtests with --validate.

    ``summaries``: configuration name → :func:`~distillbt.stats.return_summary` of its screen
    equity (the per-bar moments for the Deflated Sharpe Ratio, block sums for PBO)."""
    out: dict = {}
    names = [r["name"] for r in records if r["name"] in summaries and summaries[r["name"]]["n_obs"] > 2]
    if names:
        sharpes = np.array([summaries[n]["sharpe"] for n in names])
        for record in records:
            if record["survivor"] and record["name"] in names:
                s = summaries[record["name"]]
                record["deflated_sharpe"] = float(deflated_sharpe_ratio(
                    s["sharpe"], sharpes, s["n_obs"], skew=s["skew"], kurtosis=s["kurtosis"]))
        length = min(len(summaries[n]["block_returns"]) for n in names)
        if len(names) >= 8 and length >= 64:
            blocks = np.column_stack([summaries[n]["block_returns"][:length] for n in names])
            out["pbo"] = float(probability_of_backtest_overfitting(blocks, n_splits=16)["pbo"])
    if validate:
        pairs = [(r["screen_score"], r["full_score"], r) for r in records
                 if r["path"] == "vectorised" and r.get("full_score") is not None and r["screen_score"] is not None]
        if len(pairs) >= 3:
            screen_scores, full_scores, recs = map(list, zip(*pairs))
            # Fidelity of the fast path only: plain strategies' screen scores *are* full backtests.
            out["spearman"] = float(spearmanr(screen_scores, full_scores).statistic)
            out["spearman_configurations"] = len(recs)
            ranked = [r for r in records if r.get("full_score") is not None]
            k = min(5, top, len(ranked))
            true_top = sorted(ranked, key=lambda r: -r["full_score"])[:k]
            out["topk"] = k
            out["topk_recall"] = sum(r["survivor"] for r in true_top) / k
            out["wrongly_eliminated"] = [r["name"] for r in true_top if not r["survivor"]]
            out["validation_full_seconds"] = validation_seconds
            out["speedup"] = validation_seconds / screen_seconds if screen_seconds > 0 else None
            diffs = [r["execution_rel_diff"] for r in recs if "execution_rel_diff" in r]
            if diffs:
                out["execution_max_rel_diff"] = float(max(diffs))
    return out
