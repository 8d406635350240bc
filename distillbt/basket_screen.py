"""The screen over a basket of instruments: one calendar, distilled per instrument × regime,
ranked on the basket.

A strategy that wins on one pair by luck cannot be told from one that works across the market
on one series. :func:`screen_basket` runs the screen's stages (:mod:`distillbt.screen`) on
every instrument of a basket and ranks configurations by a **basket score**::

    out = screen_basket("strategies/", {"BTC": btc, "ETH": eth, "SOL": sol}, top=5)
    out.records[0].instruments["ETH"]       # {"screen_score", "full_score", "holdout_score", "path"}

- **One calendar split**: training / screening / holdout start at the same times for every
  instrument (:func:`calendar_boundaries`, fractions of the basket's whole time span); an
  instrument with gaps or a shorter history uses what it has in each period, and one that
  has too few candles in a period is skipped with a one-line reason (``problems``).
- **Distillation per instrument × regime**: every instrument's training period is distilled
  for the batch's needs (:mod:`distillbt.distilled_sets`), regimes in parallel on the executor.
  ``pool="pooled"`` (default) fits each model strategy once on the points of every
  instrument pooled (each instrument's points mapped back to raw features and standardised
  with the pooled training statistics, weighted by the rows they stand for) and trades it on
  each instrument — its full backtests fit the same model on the pooled *real* training rows
  (:func:`~distillbt.fitting.fit_model_pooled`, fitted once in this process, its time
  counted in the full backtests'); ``pool="per-instrument"`` fits one model per instrument
  on its own points, and its full backtests on its own candles, as the single-instrument
  screen does.
- **Scores**: each configuration is scored on every instrument (model strategies vectorised,
  plain strategies through their surrogates, with full fallbacks), and the basket score is
  the ``basket_score`` of those — ``mean`` (default; of log returns with the default
  objective), ``median`` or ``worst``. Ranking, survivors and ``--min-score`` use it.
- **Survivors** are backtested in full on every instrument, on the screening (where their
  score was an estimate) and the holdout period; the basket's ``full_score`` and
  ``holdout_score`` aggregate those the same way.
- **Trust**: with ``validate``/``validate_sample`` every (or a sample of) configuration is
  backtested in full on every instrument: Spearman of basket scores, and per instrument
  (``summary["instruments_fidelity"]``). PBO is computed over the configurations' basket
  returns (each configuration's blocks averaged over the instruments), and the survivors'
  deflated Sharpe ratios count every configuration × instrument tried.

Accounting as the single-instrument screen's (:mod:`distillbt.screen`): ``screen_seconds`` is
everything before survivors (every instrument's distillation and scoring); the validation's
full backtests are timed together on the same executor.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .backtest import SIZER_PERCENTS, check_fills, run_many
from .baseline import baseline_job, is_model
from .data.basket import Basket
from .data.candles import Candles
from .discovery import StrategyError
from .distill.artifact import DistilledSet
from .distill.prepare import SCREEN_FRACTIONS
from .distilled_sets import distil_sets, needs_of
from .capture import captured, log_summary, strategy_output_api
from .errors import InputError, first_line
from .executor import current, parallel_api
from .fitting import fit_model_pooled
from .objectives import describe as describe_objective
from .objectives import resolve as resolve_objective
from .records import FAST_PATHS, PATHS, ScreenRecord
from .scorers import ModelScorer, PlainScorer, ScreenRun, take_plain_screen
from .screen import (ScreenResult, check_options, configurations_of, describe_period, rank_agreement, rank_records,
                     screen_periods, validation_choice, with_fraction)
from .stats import deflated_sharpe_ratio, probability_of_backtest_overfitting

__all__ = ["screen_basket", "calendar_boundaries", "pool_sets", "BASKET_SCORES", "POOLS"]

log = logging.getLogger(__name__)

#: How a configuration's scores on the instruments become its basket score.
BASKET_SCORES = {
    "mean": lambda scores: float(np.mean(scores)),
    "median": lambda scores: float(np.median(scores)),
    "worst": lambda scores: float(np.min(scores)),
}
#: Where model strategies learn: the basket's points together, or each instrument's own.
POOLS = ("pooled", "per-instrument")
#: The most expensive path an instrument took names the basket record's path.
_PATH_ORDER = {path: k for k, path in enumerate(PATHS)}


def calendar_boundaries(basket: Mapping[str, Candles], fractions=SCREEN_FRACTIONS) -> tuple:
    """The times screening and holdout start at for the whole basket: one split of the
    basket's calendar by time (:meth:`~distillbt.data.basket.Basket.calendar_split`)."""
    basket = basket if isinstance(basket, Basket) else Basket(basket)
    return tuple(basket.calendar_split(fractions).boundaries[1:-1])


def pool_sets(sets: Mapping[str, DistilledSet]) -> DistilledSet:
    """One distilled set from the same need's sets of several instruments (name → set).

    Each instrument's points are mapped back to raw features with its own training scaler,
    then standardised with the pooled training rows' mean and scale (combined from each
    instrument's moments and row count); regression labels are rescaled to the pooled return
    scale; weights become each instrument's share of the pooled rows times its own weights,
    and ``n_rows`` the pooled count — so penalties weigh the points as the pooled real rows."""
    parts = list(sets.values())
    n = np.array([float(s.meta.get("n_rows") or s.size) for s in parts])
    means = [np.asarray(s.meta["scaler"]["mean"], dtype="float64") for s in parts]
    scales = [np.asarray(s.meta["scaler"]["scale"], dtype="float64") for s in parts]
    total = n.sum()
    mean = sum(k * m for k, m in zip(n, means)) / total
    var = sum(k * (s**2 + (m - mean) ** 2) for k, m, s in zip(n, means, scales)) / total
    scale = np.sqrt(np.maximum(var, 1e-300))
    task = parts[0].meta.get("task")
    target_scales = np.array([float(s.meta.get("target_scale") or 1.0) for s in parts])
    target_scale = float(np.sqrt(np.sum(n * target_scales**2) / total))
    X = np.concatenate([((s.X * sc + m) - mean) / scale for s, m, sc in zip(parts, means, scales)])
    y = np.concatenate([s.y * (ts / target_scale if task == "regression" else 1.0)
                        for s, ts in zip(parts, target_scales)])
    weight = np.concatenate([s.weight / s.weight.sum() * k / total for s, k in zip(parts, n)])
    meta = {**parts[0].meta, "scaler": {"mean": mean.tolist(), "scale": scale.tolist()},
            "target_scale": target_scale, "n_rows": int(total), "pooled": list(sets),
            "n_source_candles": int(sum(int(s.meta.get("n_source_candles") or 0) for s in parts)),
            "regimes": sorted({str(r) for s in parts for r in s.regime})}
    regime = np.concatenate([np.asarray(s.regime, dtype=object) for s in parts])
    return DistilledSet(X=X, y=y, weight=weight, regime=regime, meta=meta)


@dataclass
class _Instrument:
    """One instrument of the basket inside the screen: its candles, periods, prepared data,
    run, records (one per configuration, same order as the batch) and sets."""

    name: str
    candles: Candles
    run: ScreenRun
    data: object
    records: list
    sets: dict | None = None


@parallel_api
@strategy_output_api  # strategy_log=, show_strategy_output=: what strategies print (distillbt.capture)
def screen_basket(
    folder,
    basket: Mapping[str, Candles],
    *,
    pool: str = "pooled",
    basket_score: str = "mean",
    method: str | None = None,
    size: int | None = None,
    per_regime: bool = True,
    top: int = 10,
    min_score: float | None = None,
    validate: bool = False,
    validate_sample: int | None = None,
    n_jobs: int = 1,
    backend: str = "loky",
    commission: float = 0.001,
    cash: float = 10_000.0,
    fractions=SCREEN_FRACTIONS,
    seed: int = 0,
    progress: bool = True,
    plain: str = "surrogate",
    min_speedup: float = 3.0,
    objective: str | None = None,
    slippage: float = 0.0,
    fraction: float | None = None,
    strategy_log=None,
    show_strategy_output: bool = False,
) -> ScreenResult:
    """Screen every configuration of the strategies in ``folder`` on every instrument of
    ``basket`` (name → :class:`~distillbt.data.candles.Candles`, one interval) and rank them on
    the basket (module docstring). Options as :func:`distillbt.screen.screen`'s, plus
    ``pool`` (:data:`POOLS`) and ``basket_score`` (:data:`BASKET_SCORES`).

    Returns a :class:`~distillbt.screen.ScreenResult` whose records carry the basket's scores
    and, per instrument, ``instruments[name] = {"screen_score", "full_score",
    "holdout_score", "path"}``; ``summary["instruments"]`` lists the instruments used and
    ``problems`` the ones skipped. What strategies print goes to ``strategy_log`` (as
    :func:`~distillbt.screen.screen`'s)."""
    if pool not in POOLS:
        raise InputError(f"pool must be one of {', '.join(POOLS)}, not {pool!r}")
    if basket_score not in BASKET_SCORES:
        raise InputError(f"basket score must be one of {', '.join(BASKET_SCORES)}, not {basket_score!r}")
    check_options(plain=plain, validate_sample=validate_sample)
    resolve_objective(objective)
    check_fills(slippage=slippage, fraction=fraction)
    _check_basket(basket)
    started = time.perf_counter()
    found, configs = configurations_of(folder, ())
    if fraction is not None:
        configs = [with_fraction(c, fraction) if is_model(c) else c for c in configs]
    if top < 1:
        raise InputError(f"--top {top} must be at least 1")

    boundaries = calendar_boundaries(basket, fractions)
    problems = [{"file": p.file, "message": p.message} for p in found.errors]
    problems += [{"instrument": p.name, "message": str(p)} for p in getattr(basket, "problems", ())]
    instruments = {}
    for name, candles in basket.items():
        try:
            periods = screen_periods(candles, fractions, boundaries=boundaries)
        except InputError as error:
            problems.append({"instrument": name, "message": f"{name}: skipped: {first_line(error)}"})
            log.warning("%s: skipped: %s", name, first_line(error))
            continue
        data = periods.pop("data")
        run = ScreenRun(candles=candles, periods=periods, cash=cash, commission=commission, n_jobs=n_jobs,
                        backend=backend, progress=progress, seed=seed, objective=objective, slippage=slippage,
                        fraction=fraction)
        records = [ScreenRecord.of(c, path="vectorised" if is_model(c) else "full") for c in configs]
        instruments[name] = _Instrument(name, candles, run, data, records)
    if not instruments:
        raise InputError("no instrument of the basket is usable: " + "; ".join(p["message"] for p in problems))
    if pool == "pooled" and len(instruments) > 1:
        for config in configs:
            if is_model(config) and config.strategy.cls.configure(config.params).p.horizons:
                raise InputError(f"{config.name}: horizons need --pool per-instrument")

    with captured("make_estimator"):  # the strategies' hooks run here
        # a pooled full backtest fits one model on every instrument's rows: no per-instrument fit
        needs, errors = needs_of(configs, method=method, size=size, training_rows=pool != "pooled")
    if errors and len(errors) == len(configs):
        raise StrategyError(next(iter(errors.values())))
    distill_started = time.perf_counter()
    for inst in instruments.values():
        inst.sets = distil_sets(inst.data, needs, per_regime=per_regime, seed=seed, fractions=inst.data.fractions,
                                train_stop=inst.run.periods["training"][1], progress=progress)
    pooled = ({key: pool_sets({n: i.sets[key] for n, i in instruments.items()}) for key in
               next(iter(instruments.values())).sets} if pool == "pooled" else None)
    distill_seconds = time.perf_counter() - distill_started

    set_of = {name: need.key for name, need in needs.items()}
    seconds = {"model": 0.0, "plain": 0.0}
    for inst in instruments.values():
        for record in inst.records:
            record.error = errors.get(record.name)
        scorer = ModelScorer(pooled if pooled is not None else inst.sets, set_of)
        seconds["model"] += scorer.score(inst.run, [(r, c) for r, c in zip(inst.records, configs)
                                                    if scorer.accepts(c) and r.error is None]).seconds
    seconds["plain"], plain_summaries = _score_plain(instruments, configs, plain=plain, min_speedup=min_speedup)

    aggregate = BASKET_SCORES[basket_score]
    records = [_basket_record(c, [inst.records[k] for inst in instruments.values()], list(instruments), aggregate)
               for k, c in enumerate(configs)]
    rank_records(records, top=min(top, max(1, sum(r.scored for r in records))), min_score=min_score)
    screen_seconds = time.perf_counter() - started

    pooled_models = _PooledModels(instruments, configs) if pooled is not None else None
    validation = _validate(instruments, records, configs, pooled_models, full=validate, sample=validate_sample,
                           seed=seed)
    survivors_seconds = _backtest_survivors(instruments, records, configs, pooled_models)
    for k, record in enumerate(records):
        _aggregate_full(record, [inst.records[k] for inst in instruments.values()], list(instruments), aggregate)

    summary = {
        "source": "basket", "instruments": list(instruments), "timeframe": next(iter(basket.values())).timeframe,
        "pool": pool, "basket_score": basket_score,
        "periods": _calendar_periods(instruments),
        "boundaries": [t.isoformat() for t in boundaries],
        "instrument_periods": {name: {period: describe_period(inst.candles, *bounds)
                                      for period, bounds in inst.run.periods.items()}
                               for name, inst in instruments.items()},
        "objective": resolve_objective(objective).name, "score": describe_objective(objective),
        "cash": cash, "commission": commission, "slippage": slippage,
        "fraction": fraction if fraction is not None else SIZER_PERCENTS / 100.0,
        "configurations": len(records), "instrument_configurations": len(records) * len(instruments),
        "model_configurations": sum(is_model(c) for c in configs),
        "plain_configurations": sum(not is_model(c) for c in configs),
        "errors": sum(1 for r in records if r.error),
        "distilled": {key: {"method": d.meta.get("method"), "points": d.size, "pooled": d.meta.get("pooled")}
                      for key, d in (pooled or next(iter(instruments.values())).sets).items()},
        "screen_seconds": screen_seconds, "distill_seconds": distill_seconds,
        "model_seconds": seconds["model"], "plain_seconds": seconds["plain"],
        "survivors_seconds": survivors_seconds,
        "survivors": [r.name for r in records if r.survivor],
    }
    summary["synthetic"] = any(getattr(c, "synthetic", False) for c in basket.values())
    summary.update(found.selection_summary())  # constraints, --grid, --sample-configs
    if pooled_models is not None:
        summary["pooled_fit_seconds"] = pooled_models.seconds
    if plain_summaries:
        summary["plain_surrogate"] = plain_summaries
    summary.update(_overfitting(instruments, records))
    summary.update(_fidelity(instruments, records, validation, summary, seed=seed))
    summary.update(log_summary())  # strategy_log, strategy_output_lines
    summary["total_seconds"] = time.perf_counter() - started
    records.sort(key=lambda r: (r.screen_rank is None, r.screen_rank or 0))
    return ScreenResult(records=records, summary=summary, problems=problems)


def _score_plain(instruments: dict, configs, *, plain: str, min_speedup: float) -> tuple[float, dict]:
    """Plain strategies on every instrument: with surrogates, one batch learned from the first
    instrument's episodes (a strategy's rule is the same on every market) and walked on each
    instrument's screening period, judged there again and backtested in full there when not
    trusted (:meth:`~distillbt.surrogate.api.PlainSurrogates.walk_on`); the short-history
    rule weighs the surrogates' cost against the full backtests of every instrument. Returns
    the seconds and each instrument's plain summary."""
    began = time.perf_counter()
    positions = [k for k, c in enumerate(configs) if not is_model(c)]
    if not positions:
        return 0.0, {}
    if plain == "full":
        for inst in instruments.values():
            PlainScorer(plain="full").score(inst.run, [(inst.records[k], configs[k]) for k in positions])
        return time.perf_counter() - began, {}
    from .surrogate.api import screen_plain

    lead, *others = instruments.values()
    run = lead.run
    out = screen_plain([configs[k] for k in positions], lead.candles, train=run.periods["training"],
                       screen=run.periods["screening"], seed=run.seed, n_jobs=run.n_jobs, backend=run.backend,
                       cash=run.cash, commission=run.commission, progress=run.progress,
                       min_speedup=min_speedup / len(instruments), objective=run.objective,
                       slippage=run.slippage, fraction=run.fraction, learn=plain == "surrogate",
                       walk_on=[(inst.candles, inst.run.periods["screening"]) for inst in others])
    summaries = {}
    for inst, screened in zip(instruments.values(), [out, *out.walked]):
        take_plain_screen(inst.run, [(inst.records[k], configs[k]) for k in positions], screened)
        summaries[inst.name] = {k: v for k, v in screened.summary.items() if k != "regimes"}
    return time.perf_counter() - began, summaries


def _check_basket(basket) -> None:
    if not isinstance(basket, Mapping) or not basket:
        raise InputError("a basket is a non-empty mapping of instrument names to candles")
    if not isinstance(basket, Basket):
        Basket(basket)  # one-line errors for what is not candles or mixes intervals


def _calendar_periods(instruments: dict) -> dict:
    """Each period over the basket: its first and last candle on any instrument, and the
    instruments' candles in it together."""
    out = {}
    for period in next(iter(instruments.values())).run.periods:
        spans = [describe_period(inst.candles, *inst.run.periods[period]) for inst in instruments.values()]
        out[period] = {"first": min(p["first"] for p in spans), "last": max(p["last"] for p in spans),
                       "candles": sum(p["candles"] for p in spans)}
    return out


def _basket_record(config, per_instrument: list, names: list, aggregate) -> ScreenRecord:
    """The basket's record of one configuration from its records on each instrument."""
    record = ScreenRecord.of(config, path="vectorised")
    failed = [r.error for r in per_instrument if r.error]
    if failed:  # one failing instrument fails the configuration: its basket score would mislead
        record.error = failed[0]
    record.path = max((r.path for r in per_instrument), key=lambda p: _PATH_ORDER.get(p, 0))
    record.distilled_by = next((r.distilled_by for r in per_instrument if r.distilled_by), None)
    record.instruments = {name: {"screen_score": r.screen_score, "full_score": None, "holdout_score": None,
                                 "path": r.path, **({"error": r.error} if r.error else {})}
                          for name, r in zip(names, per_instrument)}
    if not failed and all(r.scored for r in per_instrument):
        record.screen_score = aggregate([r.screen_score for r in per_instrument])
    return record


def _aggregate_full(record, per_instrument: list, names: list, aggregate) -> None:
    for name, r in zip(names, per_instrument):
        entry = record.instruments[name]
        entry["full_score"], entry["holdout_score"] = r.full_score, r.holdout_score
    fulls = [r.full_score for r in per_instrument]
    if all(x is not None for x in fulls):
        record.full_score = aggregate(fulls)
        record.full_seconds = float(sum(r.full_seconds or 0.0 for r in per_instrument))
    holdouts = [r.holdout_score for r in per_instrument]
    if record.survivor and all(x is not None for x in holdouts):
        record.holdout_score = aggregate(holdouts)


class _PooledModels:
    """Model strategies' models fitted on the pooled real training rows of every instrument,
    once per strategy and fit params, for their full backtests: fitted together in threads of
    this process (:meth:`fit`, which holds every instrument's candles), ``seconds`` the wall
    time it took — part of the full backtests' time."""

    def __init__(self, instruments: dict, configs):
        self.instruments = instruments
        self.models: dict = {}
        self.seconds = 0.0

    @staticmethod
    def _key(config):
        cls = config.strategy.cls
        return cls, repr(cls.fit_key(config.params))

    def fit(self, configs) -> None:
        todo = {}
        for config in configs:
            if is_model(config) and self._key(config) not in self.models:
                todo.setdefault(self._key(config), config)
        if not todo:
            return
        parts = [(inst.candles, 0, inst.run.periods["screening"][0]) for inst in self.instruments.values()]
        began = time.perf_counter()
        fitted = current().thread_map(self._fit_one, [(config, parts) for config in todo.values()])
        self.models.update(zip(todo, fitted))
        self.seconds += time.perf_counter() - began

    @staticmethod
    def _fit_one(config, parts):
        try:
            return fit_model_pooled(config.strategy.cls, parts, params=config.params)
        except Exception as error:  # noqa: BLE001 - the configuration's backtests report it
            return error

    def of(self, config):
        """The pooled model, or the exception its fit raised."""
        self.fit([config])
        return self.models[self._key(config)]


def _jobs(instruments: dict, configs, period: str, pooled, *, record_equity: bool = False):
    """``(instrument, position, job)`` for every configuration × instrument."""
    out = []
    for inst in instruments.values():
        start, stop = inst.run.periods[period]
        for k, config in configs:
            job = baseline_job(config, inst.candles, start=start, stop=stop, cash=inst.run.cash,
                               commission=inst.run.commission, record_equity=record_equity,
                               objective=inst.run.objective, slippage=inst.run.slippage, fraction=inst.run.fraction)
            if pooled is not None and is_model(config):
                model = pooled.of(config)
                if isinstance(model, Exception):
                    inst.records[k].error = f"{config.name}: pooled fit failed: {first_line(model, with_type=True)}"
                    continue
                job = replace(job, fitted=model, fit_until=None)
            out.append((inst, k, job))
    return out


def _run(instruments: dict, triples) -> tuple[list, float]:
    began = time.perf_counter()
    first = next(iter(instruments.values())).run
    results = run_many([job for _, _, job in triples], n_jobs=first.n_jobs, backend=first.backend,
                       progress=first.progress) if triples else []
    return results, time.perf_counter() - began


def _validate(instruments, records, configs, pooled, *, full: bool, sample: int | None, seed: int):
    if not full and not sample:
        return None
    scored, chosen, mode = validation_choice(records, full=full, sample=sample, seed=seed)
    fit_before = pooled.seconds if pooled is not None else 0.0
    if pooled is not None:
        pooled.fit([configs[k] for k in chosen])
    triples = _jobs(instruments, [(k, configs[k]) for k in chosen], "screening", pooled)
    results, wall = _run(instruments, triples)
    wall += (pooled.seconds - fit_before) if pooled is not None else 0.0
    for (inst, k, _), result in zip(triples, results):
        if result.get("error"):
            inst.records[k].error = inst.records[k].error or result["error"]
            continue
        inst.records[k].take_full(result)
    return {"mode": mode, "chosen": chosen, "wall_seconds": wall, "scored": len(scored)}


def _backtest_survivors(instruments, records, configs, pooled) -> float:
    survivors = [k for k, r in enumerate(records) if r.survivor]
    fit_before = pooled.seconds if pooled is not None else 0.0
    if pooled is not None:
        pooled.fit([configs[k] for k in survivors])
    screening = [(inst, k) for inst in instruments.values() for k in survivors
                 if inst.records[k].path in FAST_PATHS and inst.records[k].full_score is None]
    triples = []
    for inst, k in screening:
        triples += _jobs({inst.name: inst}, [(k, configs[k])], "screening", pooled)
    triples += _jobs(instruments, [(k, configs[k]) for k in survivors], "holdout", pooled)
    results, wall = _run(instruments, triples)
    wall += (pooled.seconds - fit_before) if pooled is not None else 0.0
    for (inst, k, job), result in zip(triples, results):
        record = inst.records[k]
        holdout = job.start == inst.candles.frame.index[inst.run.periods["holdout"][0]]
        if result.get("error"):
            if holdout:
                record.holdout_error = result["error"]
            else:
                record.error = result["error"]
            continue
        if holdout:
            record.holdout_score = float(result["score"])
            record.holdout_seconds = float(result["seconds"])
        else:
            record.take_full(result)
    for k in survivors:
        errors = [inst.records[k].holdout_error for inst in instruments.values() if inst.records[k].holdout_error]
        if errors:
            records[k].holdout_error = errors[0]
    return wall


def _overfitting(instruments, records) -> dict:
    """PBO over the configurations' basket returns (each configuration's return blocks
    averaged over the instruments) and the survivors' deflated Sharpe ratios, counting every
    configuration × instrument as a trial."""
    out: dict = {}
    names = [r.name for r in records if all(r.name in inst.run.summaries and inst.run.summaries[r.name]["n_obs"] > 2
                                            for inst in instruments.values())]
    if not names:
        return out
    trials = np.array([inst.run.summaries[n]["sharpe"] for inst in instruments.values() for n in names])
    for record in records:
        if record.survivor and record.name in names:
            summaries = [inst.run.summaries[record.name] for inst in instruments.values()]
            record.deflated_sharpe = float(deflated_sharpe_ratio(
                float(np.mean([s["sharpe"] for s in summaries])), trials, min(s["n_obs"] for s in summaries),
                skew=float(np.mean([s["skew"] for s in summaries])),
                kurtosis=float(np.mean([s["kurtosis"] for s in summaries]))))
    length = min(len(inst.run.summaries[n]["block_returns"]) for inst in instruments.values() for n in names)
    if len(names) >= 8 and length >= 64:
        blocks = np.column_stack([np.mean([np.asarray(inst.run.summaries[n]["block_returns"][:length], dtype="float64")
                                           for inst in instruments.values()], axis=0) for n in names])
        out["pbo"] = float(probability_of_backtest_overfitting(blocks, n_splits=16)["pbo"])
    return out


def _fidelity(instruments, records, validation, summary, *, seed: int) -> dict:
    if validation is None:
        return {}
    chosen = set(validation["chosen"])
    validated = [r for k, r in enumerate(records) if k in chosen and r.full_score is not None and r.scored]
    wall = validation["wall_seconds"]
    full_seconds = wall if validation["mode"] == "all" else wall * validation["scored"] / max(len(chosen), 1)
    warm = [r.full_warmup_bars for inst in instruments.values() for r in inst.records if r.full_warmup_bars]
    out = {"validation": validation["mode"], "validated_configurations": len(validated),
           "validation_full_seconds": wall, "validation_warmup_bars": max(warm) if warm else 0}
    if validation["mode"] != "all":
        out["estimated_full_seconds"] = full_seconds
    screen_seconds = summary["screen_seconds"]
    out["speedup"] = full_seconds / screen_seconds if screen_seconds > 0 else None
    out.update(rank_agreement(validated, seed=seed, key=""))
    fast = [r for r in validated if r.path in FAST_PATHS]
    out["fast_path_configurations"] = len(fast)
    out.update(rank_agreement(fast, seed=seed, key="_fast_path"))
    per = {}
    for name, inst in instruments.items():
        mine = [inst.records[k] for k in sorted(chosen) if inst.records[k].full_score is not None
                and inst.records[k].scored]
        per[name] = {"configurations": len(mine), **rank_agreement(mine, seed=seed, key="")}
    out["instruments_fidelity"] = per
    return out


def instruments_frame(result: ScreenResult, *, score: str = "screen_score") -> pd.DataFrame:
    """Configurations × instruments of one score (``screen_score``, ``full_score`` or
    ``holdout_score``), in the basket ranking's order: what the report's heatmap draws."""
    rows = {r.name: {name: entry.get(score) for name, entry in (r.instruments or {}).items()}
            for r in result.records}
    return pd.DataFrame.from_dict(rows, orient="index", dtype="float64")
