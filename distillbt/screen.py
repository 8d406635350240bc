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

The stages, in order: configurations → periods → distillation → model scores → plain scores →
ranking (everything up to here is the *screen*) → validation backtests → survivors' backtests
→ agreement of the two executions → summary.

Accounting (the summary's timings, in wall seconds)
----------------------------------------------------
- ``screen_seconds``: *all* the time before survivors — discovery, periods, distillation,
  model strategies, plain strategies (episodes, recording, escalation, full fallbacks) and
  ranking; its parts ``distill_seconds``, ``model_seconds`` (model strategies vectorised) and
  ``plain_seconds`` (plain strategies, fallbacks included);
- ``validation_full_seconds``: the wall time of the validation's full backtests (every
  scored configuration with ``validate``, the sample with ``validate_sample``; fallbacks are
  backtested again so the figure is the whole batch's), run with the screen's own jobs;
  with a sample, ``estimated_full_seconds`` scales it to every scored configuration;
- ``speedup`` = full time (measured, or estimated from the sample) / ``screen_seconds``;
  ``paths.model`` / ``paths.plain`` each divide their share of it (by the runs' own
  seconds) by their own part of the screen (model: distillation + model strategies) plus
  their share of what the paths share (discovery, periods, ranking: ``screen_seconds`` less
  the three parts, split by configurations), so the paths' times add up to
  ``screen_seconds`` and a folder of one kind gets the whole screen's speed-up;
- ``survivors_seconds``: the survivors' full backtests (screening where not validated,
  holdout); ``total_seconds``: everything.

With ``cache`` (:mod:`distillbt.result_cache`), configurations and full backtests found in the
cache are not run, so every timing above counts only what ran this time (a speed-up then
compares what little ran); ``cached_configurations`` and ``cached_backtests`` say how much
came from the cache, and a record's ``full_seconds`` stays what its backtest cost when it ran.

Every full backtest — validation, survivors, fallbacks — is :mod:`distillbt.baseline`'s
(bounded warm-up, ``validation_warmup_bars`` the longest; models fitted outside Backtrader),
and each record that had one carries ``full_seconds`` and ``full_warmup_bars``. Rank
agreement: ``spearman`` over every validated configuration (plain full fallbacks included:
their screen score *is* a full backtest), ``spearman_fast_path`` over the fast paths only
(vectorised and surrogate scores), each with a bootstrap 90 % interval (``…_ci90``).
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import bootstrap, spearmanr

from .backtest import SIZER_PERCENTS, check_fills
from .baseline import is_model
from .capture import captured, log_summary, strategy_output_api
from .data.candles import Candles
from .discovery import Configuration, Discovery, StrategyError, configuration_name, discover
from .distill.artifact import DistilledSet
from .distill.prepare import SCREEN_FRACTIONS, SCREEN_PERIODS, prepare
from .distilled_sets import (ROWS_METHOD, SHORT_TRAINING, TASK_OF_TARGET, check_sets_precede, distil_sets,
                             given_sets, needs_of)
from .errors import InputError
from .executor import current, parallel_api
from .features import feature_options_key
from .horizons import check_horizons
from .objectives import describe as describe_objective
from .objectives import resolve as resolve_objective
from ._vectorised_screen import screen_vectorised
from .records import FAST_PATHS, ScreenRecord
from .result_cache import ResultCache
from .scorers import ModelScorer, PlainScorer, ScreenRun
from .stats import deflated_sharpe_ratio, headline_stats, probability_of_backtest_overfitting

__all__ = ["screen", "screen_periods", "ScreenResult", "ScreenRecord", "DEFAULT_FRACTIONS", "TASK_OF_TARGET",
           "configurations_of", "rank_records", "rank_agreement", "check_options", "describe_period",
           "with_fraction", "validation_choice"]

#: The screen's training / screening / holdout fractions (one constant, in distill.prepare).
DEFAULT_FRACTIONS = SCREEN_FRACTIONS
log = logging.getLogger(__name__)


@dataclass
class ScreenResult:
    """One :class:`~distillbt.records.ScreenRecord` per configuration (ranked), a summary
    (periods, timings — module docstring, "Accounting" —, trust) and the problems met."""

    records: list[ScreenRecord] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)
    #: What the report's plots need (price, regimes, survivors' equity, distributions,
    #: episodes; see :mod:`distillbt.screen_series`); saved as ``"series"`` when present.
    series: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {"summary": self.summary, "records": [r.to_dict() for r in self.records], "problems": self.problems}
        if self.series:
            out["series"] = self.series
        return out

    def table(self, limit: int | None = None) -> str:
        head = ["rank", "survivor", "configuration", "path", "screen", "full", "holdout"]
        rows = []
        for r in self.records[:limit]:
            rows.append([
                str(r.screen_rank) if r.screen_rank else "-", "*" if r.survivor else "",
                r.name, r.path, _fmt(r.screen_score), _fmt(r.full_score), _fmt(r.holdout_score),
            ])
        widths = [max(len(x[i]) for x in [head] + rows) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [head] + rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def summary_lines(self) -> list[str]:
        """The summary as the CLI prints it: timings, overfitting, validation per path."""
        s = self.summary
        lines = [f"screen {s['screen_seconds']:.1f} s before survivors (distillation {s['distill_seconds']:.1f} s, "
                 f"model strategies {s['model_seconds']:.1f} s, plain strategies {s['plain_seconds']:.1f} s), "
                 f"survivors' full backtests {s['survivors_seconds']:.1f} s; screen/full/holdout scores "
                 f"({s.get('objective', 'return')}: {s.get('score', 'log(final value / initial cash)')}) from the "
                 f"screening/screening/holdout periods"]
        if "instruments" in s:
            lines.append(f"basket of {len(s['instruments'])} instruments ({', '.join(s['instruments'])}): "
                         f"{s['basket_score']} of their scores, models fitted {s['pool']}")
        if "pbo" in s:
            lines.append(f"probability of backtest overfitting: {s['pbo']:.2f}")
        if "validation" not in s:
            return lines
        warm = f"warm-up ≤ {s['validation_warmup_bars']:,} bars"
        if s["validation"] == "all":
            head = (f"validation: full backtests of all {s['validated_configurations']} configurations "
                    f"{s['validation_full_seconds']:.1f} s ({warm})")
        else:
            head = (f"validation: {s['validated_configurations']} configurations drawn at random, backtested in full "
                    f"in {s['validation_full_seconds']:.1f} s ({warm}); all {s['configurations']} estimated at "
                    f"{s['estimated_full_seconds']:.1f} s")
        lines.append(head + (f" = {s['speedup']:.1f}x the screen" if s.get("speedup") else ""))
        if "spearman" in s:
            lines.append(f"  Spearman {_rho(s, '')} over {s['spearman_configurations']} configurations"
                         + (f" ({_rho(s, '_fast_path')} over the {s['spearman_fast_path_configurations']} on fast "
                            "paths)" if "spearman_fast_path" in s else "")
                         + (f", top-{s['topk']} recall {s['topk_recall']:.2f}" if "topk" in s else ""))
        for path, label in (("model", "model strategies"), ("plain", "plain strategies")):
            p = s.get("paths", {}).get(path)
            if not p:
                continue
            speed = f" = {p['speedup']:.1f}x" if p.get("speedup") else ""
            fallbacks = f", {p['full_fallbacks']} full fallbacks" if p["full_fallbacks"] else ""
            rho = f"; Spearman {_rho(p, '')}" if "spearman" in p else ""
            if "spearman_fast_path" in p and p["full_fallbacks"]:
                rho += f" ({_rho(p, '_fast_path')} on the fast path)"
            lines.append(f"  {label}: {p['configurations']} validated{fallbacks}; screen {p['screen_seconds']:.1f} s, "
                         f"their full backtests {p['full_seconds']:.1f} s{speed}{rho}")
        for name, fidelity in s.get("instruments_fidelity", {}).items():
            if "spearman" in fidelity:
                lines.append(f"  {name}: Spearman {_rho(fidelity, '')} over {fidelity['configurations']} configurations")
        if "execution_max_rel_diff" in s:
            lines.append(f"  vectorised vs Backtrader executions: max relative difference in final value "
                         f"{s['execution_max_rel_diff']:.1e}")
        if s.get("wrongly_eliminated"):
            lines.append("  wrongly eliminated: " + "; ".join(s["wrongly_eliminated"]))
        return lines


def _rho(fields: dict, key: str) -> str:
    value = f"{fields[f'spearman{key}']:.3f}"
    interval = fields.get(f"spearman{key}_ci90")
    return value + (f" [90% {interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")


def _fmt(value) -> str:
    return "" if value is None else f"{value:+.4f}"


def screen_periods(candles: Candles, fractions=DEFAULT_FRACTIONS, *, boundaries=None) -> dict:
    """Candle positions ``[start, stop)`` of the screen's three periods (``training``,
    ``screening``, ``holdout``), from the usable rows' split (or the calendar ``boundaries``:
    the times screening and holdout start at); ``data``: the prepared data."""
    data = prepare(candles, fractions=fractions, boundaries=boundaries)
    index = candles.frame.index

    def bounds(part):
        rows = data.parts[part]
        return int(index.get_loc(data.times[rows.start])), int(index.get_loc(data.times[rows.stop - 1])) + 1

    periods = {name: bounds(part) for name, part in SCREEN_PERIODS.items()}
    return {"data": data, **periods}


def describe_period(candles: Candles, start: int, stop: int) -> dict:
    """First and last time and candle count of ``candles[start:stop]`` (the summary's periods)."""
    index = candles.frame.index
    return {"first": index[start].isoformat(), "last": index[stop - 1].isoformat(), "candles": stop - start}


@parallel_api
@strategy_output_api  # strategy_log=, show_strategy_output=: what strategies print (distillbt.capture)
def screen(
    folder,
    candles: Candles,
    *,
    distilled: DistilledSet | dict | None = None,
    method: str | None = None,
    size: int | None = None,
    per_regime: bool = True,
    short_training: int = SHORT_TRAINING,
    top: int = 10,
    min_score: float | None = None,
    validate: bool = False,
    validate_sample: int | None = None,
    n_jobs: int = 1,
    backend: str = "loky",
    commission: float = 0.001,
    cash: float = 10_000.0,
    fractions=DEFAULT_FRACTIONS,
    seed: int = 0,
    progress: bool = True,
    plain: str = "surrogate",
    min_speedup: float = 3.0,
    horizons=(),
    objective: str | None = None,
    slippage: float = 0.0,
    fraction: float | None = None,
    cache=False,
    strategy_log=None,
    show_strategy_output: bool = False,
) -> ScreenResult:
    """Screen every configuration of the strategies in ``folder`` on ``candles``.

    ``folder``: a path, a :class:`~distillbt.discovery.StrategyFolder` (the folder with grid
    overrides and ``sample_configs``, discovered here) or a
    :class:`~distillbt.discovery.Discovery`; each class's ``grid`` gives its configurations and
    its ``constraint`` drops some before anything runs (:mod:`distillbt.discovery`, "Choosing
    configurations"). The summary says what was chosen: ``constraint_dropped``,
    ``grid_overrides``, ``sample_configs``, ``configurations_before_sampling``,
    ``sampled_configurations``. A ``top`` larger than the configurations makes them all
    survivors, with a line in ``summary["notes"]``; below 1 it raises
    :class:`~distillbt.errors.InputError`.

    ``distilled``: a :class:`DistilledSet` (or a dict task → set) to fit model strategies on;
    by default sets are distilled on the fly from the training period, per regime, one per
    need of the batch (:mod:`distillbt.distilled_sets`): linear and logistic estimators get
    ``exact-linear`` sets (d + 1 points per regime reproducing the training period's second
    moments, so a ridge fitted on them equals its full-data fit and a logistic one comes very
    close), discriminant analysis and Gaussian naive Bayes ``class-moments`` sets (their fit
    exactly), path-dependent ones (SGD, networks) the training candles themselves, and every
    other estimator (trees, boosting, neighbours…) k-means clusters of the training rows, each
    a real member with its cluster's weight and mean label — each set with targets at its
    strategy's horizon; each record's
    ``distilled_by`` says which. ``method`` (and ``size``) overrides the choice for all. A
    training period of fewer than ``short_training`` rows (default
    :data:`~distillbt.distilled_sets.SHORT_TRAINING`) fits those other estimators on its rows
    instead, as their full backtests do (0: always distil). ``top`` survivors (or those with ``screen_score >= min_score``)
    get full backtests on the screening and holdout periods. Returns a
    :class:`ScreenResult`; see the module docstring for the periods.

    ``plain``: how plain (non-model) strategies are screened — ``"surrogate"`` (a learned
    surrogate of each configuration, escalated to more episodes and then to a full backtest
    when it cannot be trusted; :mod:`distillbt.surrogate`; the default) or ``"full"`` (a full
    backtest each). Each record's ``path`` says which score it got. ``min_speedup``: below
    this expected speed-up of the surrogates over full backtests (short histories) the plain
    strategies are backtested in full; 0 forces the surrogate.

    ``validate``: backtest *every* configuration in full on the screening period and report
    how far the screen agrees (Spearman, top-k recall, speed-up against those backtests).
    ``validate_sample``: backtest only that many configurations drawn at random (seeded by
    ``seed``) and report Spearman with a bootstrap 90 % interval, and the speed-up against
    the full backtests of all configurations estimated from the sample. Every full backtest
    is the baseline of :mod:`distillbt.baseline` (bounded warm-up, models fitted outside
    Backtrader). Timings (module docstring, "Accounting") are in the summary.

    ``horizons``: longer candle intervals (e.g. ``("1h", "4h")``) every model configuration
    also fits its model at, trading the mean prediction (the ``horizons`` param of
    :class:`~distillbt.strategy.ModelStrategy`; :mod:`distillbt.horizons`). Their points
    come from the parts of a multi-horizon ``distilled`` set (``distill --timeframes``), or
    are distilled now from the training period resampled to each interval.

    ``objective``: what every score measures — screen, full and holdout, on every path
    (``return``, ``sharpe``, ``sortino``, ``calmar``, ``max-drawdown``, ``profit-factor`` or
    ``MODULE:FUNCTION``; :mod:`distillbt.objectives`); fidelity is reported on it.
    ``slippage`` (fraction of the fill price, Backtrader's ``set_slippage_perc`` on the open)
    and ``fraction`` (share of equity per position; default 95 %, a model strategy's own
    ``fraction`` param otherwise) apply to every path alike: vectorised, surrogate and full.
    A plain strategy's own sizer (``self.setsizer`` in ``__init__``) is used in its full
    backtests, mirrored on the surrogate when it is a ``PercentSizer``, and otherwise sends the
    configuration to a full backtest with the reason in its trust.

    ``n_jobs``, ``backend`` (and ``scheduler``, ``executor``): one executor for every stage
    (:mod:`distillbt.executor`).

    ``cache``: resume from earlier screens (:mod:`distillbt.result_cache`) — ``True`` for the
    default cache directory, or a cache directory (its ``screens/`` folder); configurations
    (and full backtests) found there are not run again, and ``summary["cached_configurations"]``
    says how many. ``False`` (the default): nothing is reused or stored.

    ``strategy_log``: the file what the strategies print, write to stderr or log goes to —
    in every task, worker or not, and while their files are imported (:mod:`distillbt.capture`);
    None: a temporary file (or the log already active). It is always created, empty when
    nothing was written. ``show_strategy_output``: write that output to stderr instead (no
    file). ``summary["strategy_log"]`` (None when shown) and ``summary["strategy_output_lines"]``
    say where it went and how much there was.
    """
    check_options(plain=plain, validate_sample=validate_sample)
    resolve_objective(objective)
    check_fills(slippage=slippage, fraction=fraction)
    started = time.perf_counter()  # the screen's time from here (a start-up of workers it waits for included)
    horizons = check_horizons(candles.timeframe, horizons) if horizons else ()
    found, configs = _configurations(folder, horizons)
    executor = current()
    # plain strategies run Backtrader in worker processes: they start while this process
    # prepares the candles; model strategies run in threads here (their fits and runs release
    # the GIL), and the workers start when the survivors' full backtests need them
    if executor is not None and not all(is_model(c) for c in configs):
        executor.warm_up()
    if fraction is not None:
        configs = [with_fraction(c, fraction) if is_model(c) else c for c in configs]
    if top < 1:
        raise InputError(f"--top {top} must be at least 1")
    # more survivors asked for than there are configurations: all of them, said in the summary
    notes = [f"--top {top} > {len(configs)} configurations: all {len(configs)} are survivors"] \
        if min_score is None and top > len(configs) else []
    top = min(top, len(configs))
    periods = screen_periods(candles, fractions)
    data = periods.pop("data")
    run = ScreenRun(candles=candles, periods=periods, cash=cash, commission=commission, n_jobs=n_jobs,
                    backend=backend, progress=progress, seed=seed, objective=objective, slippage=slippage,
                    fraction=fraction)
    records = [ScreenRecord.of(c, path="vectorised" if is_model(c) else "full") for c in configs]

    needs = _needs(records, configs, method=method, size=size, training_rows=distilled is None,
                   n_training_rows=periods["training"][1] - periods["training"][0], short_training=short_training)
    # Resume (distillbt.result_cache): configurations screened before are restored, not scored
    # again, and need no distillation; full backtests run before are taken from the cache.
    run.cache = ResultCache.at(cache, candles, periods, distilled=distilled, options={
        "cash": cash, "commission": commission, "seed": seed, "fractions": list(fractions), "objective": objective,
        "slippage": slippage, "fraction": fraction,
        "model": {"method": method, "size": size, "per_regime": per_regime, "horizons": list(horizons),
                  "short_training": short_training},
        "plain": {"plain": plain, "min_speedup": min_speedup}})
    cached = run.cache.restore(run, records, configs, needs=needs) if run.cache is not None else set()
    needs = {name: need for name, need in needs.items() if name not in cached}
    sets, distill_seconds = _distil(distilled, data, needs, per_regime=per_regime, seed=seed, fractions=fractions,
                                    progress=progress, horizons=horizons, train_stop=periods["training"][1])
    check_sets_precede(sets, candles, periods["screening"][0])
    _note_sets(records, needs, sets)
    models = ModelScorer(sets, {name: need.key for name, need in needs.items()})
    scorers = (models, PlainScorer(plain=plain, min_speedup=min_speedup,
                                   episodes=_stored_episodes(distilled, candles, periods["screening"][0])))
    reports = {scorer.part: scorer.score(run, [(r, c) for r, c in zip(records, configs)
                                              if scorer.accepts(c) and r.error is None and r.name not in cached])
               for scorer in scorers}
    if run.cache is not None:  # before validation fills full backtests into the records
        run.cache.store(run, records)
    rank_records(records, top=top, min_score=min_score)
    screen_seconds = time.perf_counter() - started

    validation = _validate(run, records, configs, full=validate, sample=validate_sample)
    survivors_seconds = _backtest_survivors(run, records, configs)
    _check_executions(run, records, configs, models.feature_cache)

    timings = {"screen_seconds": screen_seconds, "distill_seconds": distill_seconds,
               **{f"{part}_seconds": report.seconds for part, report in reports.items()},
               "survivors_seconds": survivors_seconds}
    summary = _summary(run, records, sets, timings)
    summary.update(found.selection_summary(), notes=notes)  # constraints, --grid, --sample-configs
    summary.update(_overfitting(records, run.summaries))
    summary.update(_fidelity(records, validation, timings, top=top, seed=seed))
    if reports["plain"].summary is not None:
        summary["plain_surrogate"] = reports["plain"].summary
    summary.update(cached_configurations=len(cached), cached_backtests=run.cached_backtests,
                   result_cache=str(run.cache.root) if run.cache is not None else None)
    summary.update(log_summary())  # strategy_log, strategy_output_lines
    summary["total_seconds"] = time.perf_counter() - started
    records.sort(key=lambda r: (r.screen_rank is None, r.screen_rank or 0))
    return ScreenResult(records=records, summary=summary,
                        problems=[{"file": p.file, "message": p.message} for p in found.errors],
                        series=_series(run, data, sets, records))


#: Bootstrap resamples of the validation Spearman's 90 % interval.
_BOOTSTRAP_RESAMPLES = 1000


def _configurations(folder, horizons: tuple):
    """``(discovery, configurations)`` of ``folder`` — a path, a
    :class:`~distillbt.discovery.StrategyFolder` (grid overrides, ``sample_configs``) or a
    :class:`~distillbt.discovery.Discovery` — with the classes' constraints applied."""
    with captured("strategy files"):  # their module code runs here, and their constraints
        found: Discovery = folder if isinstance(folder, Discovery) else discover(folder)
        configs = found.configurations()
    if not configs:
        dropped = sum(found.select().constraint_dropped.values())
        why = f": the constraints dropped all {dropped}" if dropped else ""
        if found.errors:
            why += f" ({len(found.errors)} problem(s); first: {found.errors[0].file}: {found.errors[0].message})"
        raise StrategyError(f"no strategy configurations left in {folder}{why}")
    if horizons:
        configs = [_with_horizons(c, horizons) if is_model(c) else c for c in configs]
    return found, configs


def configurations_of(folder, horizons: tuple = ()):
    """``(discovery, configurations)`` of a folder (or a :class:`~distillbt.discovery.Discovery`)
    as the screen builds them; :class:`~distillbt.discovery.StrategyError` when there are none."""
    return _configurations(folder, horizons)


def check_options(*, plain, validate_sample) -> None:
    """One-line :class:`InputError` for an unknown plain path or a validation sample below 3."""
    if plain not in ("surrogate", "replay", "full"):
        raise InputError(f"plain must be 'surrogate', 'replay' or 'full', not {plain!r}")
    if validate_sample is not None and (isinstance(validate_sample, bool) or int(validate_sample) < 3):
        raise InputError(f"--validate-sample must be at least 3, not {validate_sample!r}")


def _note_sets(records, needs: dict, sets: dict) -> None:
    """Each model record's ``distilled_by``: the set its model is fitted on."""
    for record in records:
        need = needs.get(record.name)
        if need is not None and need.method == ROWS_METHOD:
            why = need.reason or f"{need.family} estimator"
            record.distilled_by = (f"{ROWS_METHOD}: the candles before the screening period, {need.task}, "
                                   f"{need.horizon}-candle target ({why}: fitted as in its full backtest)")
        elif need is not None:
            dset = sets[need.key]
            record.distilled_by = (f"{dset.meta.get('method', need.method)}: {dset.size} points, {need.task}, "
                                   f"{need.horizon}-candle target ({need.family} estimator)")


def _needs(records, configs, *, method, size, training_rows: bool = True, n_training_rows=None,
           short_training: int = SHORT_TRAINING) -> dict:
    """Each model configuration's distillation need; a configuration whose estimator cannot
    be used gets its one-line error, and when no configuration is left the screen stops
    with it (:class:`~distillbt.discovery.StrategyError`, exit 2 from the CLI)."""
    with captured("make_estimator"):  # the strategies' hooks run here
        needs, errors = needs_of(configs, method=method, size=size, training_rows=training_rows,
                                 n_training_rows=n_training_rows, short_training=short_training)
    for record in records:
        if record.name in errors:
            record.error = errors[record.name]
            log.warning("%s", errors[record.name])
    if errors and len(errors) == len(records):
        raise StrategyError(next(iter(errors.values())))
    return needs


@parallel_api
def _distil(distilled, data, needs, *, per_regime, seed, fractions, progress, horizons, train_stop):
    """``({key: set}, seconds)``: the caller's sets, or one distilled per need."""
    if distilled is not None:
        return given_sets(distilled, needs, base_timeframe=data.candles.timeframe, horizons=horizons), 0.0
    started = time.perf_counter()
    sets = distil_sets(data, needs, per_regime=per_regime, seed=seed, fractions=fractions, horizons=horizons,
                       train_stop=train_stop, progress=progress)
    return sets, time.perf_counter() - started


def rank_records(records, *, top, min_score) -> None:
    """Rank the scored records by screen score (1 = best) and mark the survivors: the ``top``
    or, with ``min_score``, those scoring at least that."""
    scored = sorted((r for r in records if r.scored and np.isfinite(r.screen_score)), key=lambda r: -r.screen_score)
    for rank, record in enumerate(scored, start=1):
        record.screen_rank = rank
        record.survivor = (record.screen_score >= min_score) if min_score is not None else rank <= top


def validation_choice(records, *, full: bool, sample: int | None, seed: int) -> tuple[list, list, str]:
    """Which records validation backtests in full: ``(scored, chosen, mode)`` — positions of
    the scored records, of those chosen (all of them, or ``sample`` drawn with ``seed``), and
    ``"all"`` or ``"sample"``."""
    scored = [i for i, r in enumerate(records) if r.scored]
    if full:
        return scored, scored, "all"
    rng = np.random.default_rng(np.random.SeedSequence([seed, 13]))
    return scored, sorted(rng.choice(scored, size=min(int(sample), len(scored)), replace=False).tolist()), "sample"


def _validate(run: ScreenRun, records, configs, *, full: bool, sample: int | None) -> dict | None:
    """Baseline full backtests of every scored configuration (``full``) or of ``sample`` drawn
    at random, on the screening period, timed together (wall). Fills each record's full
    backtest and returns ``{"mode", "names", "wall_seconds", "scored"}``."""
    if not full and not sample:
        return None
    scored, chosen, mode = validation_choice(records, full=full, sample=sample, seed=run.seed)
    jobs = run.jobs([configs[i] for i in chosen], "screening", record_equity={r.name for r in records if r.survivor})
    results, wall = run.backtest(jobs)
    for i, result in zip(chosen, results):
        record = records[i]
        if result.get("error"):
            record.error = record.error or result["error"]
            continue
        record.take_full(result)
        run.full_results[record.name] = result
        if record.survivor:
            run.screening_curves[record.name] = result["equity"]
    return {"mode": mode, "names": [records[i].name for i in chosen], "wall_seconds": wall, "scored": len(scored)}


def _backtest_survivors(run: ScreenRun, records, configs) -> float:
    """Baseline full backtests of the survivors: on the screening period where the screen
    estimated them (and validation did not already), and on the holdout period."""
    by_name = {c.name: c for c in configs}
    survivors = [r for r in records if r.survivor]
    screening = [r for r in survivors if r.path in FAST_PATHS and r.name not in run.full_results]
    jobs = run.jobs([by_name[r.name] for r in screening], "screening", record_equity=True) + \
        run.jobs([by_name[r.name] for r in survivors], "holdout", record_equity=True)
    results, wall = run.backtest(jobs)
    for record, result in zip(screening, results[: len(screening)]):
        if result.get("error"):
            record.error = result["error"]
            continue
        record.take_full(result)
        run.full_results[record.name] = result
        run.screening_curves[record.name] = result["equity"]
    for record, result in zip(survivors, results[len(screening):]):
        if result.get("error"):
            record.holdout_error = result["error"]
            continue
        record.holdout_score = float(result["score"])
        record.holdout_stats = headline_stats(result)
        record.holdout_seconds = float(result["seconds"])
        run.holdout_results[record.name] = result
        run.holdout_curves[record.name] = result["equity"]
    for record in survivors:  # screened by a full backtest: that run is the screening leg
        if record.path == "full" and record.name in run.curves:
            run.screening_curves.setdefault(record.name, run.curves[record.name])
    return wall


def _check_executions(run: ScreenRun, records, configs, feature_cache) -> None:
    """Model configurations backtested in full: the same real-fitted model run vectorised
    (``execution_rel_diff``): do the vectorised and the Backtrader executions agree?"""
    by_name = {c.name: c for c in configs}
    replayed = [r for r in records if r.path == "vectorised" and r.name in run.full_results]
    if not replayed:
        return
    s_start, s_stop = run.periods["screening"]
    replicas = screen_vectorised([by_name[r.name] for r in replayed], None, run.candles,
                                 cash=run.cash, commission=run.commission,
                                 start=s_start, stop=s_stop, feature_cache=feature_cache, slippage=run.slippage)
    for record, replica in zip(replayed, replicas):
        final = run.full_results[record.name]["final_value"]
        if replica["error"] is None:
            record.execution_rel_diff = abs(replica["final_value"] - final) / final


def _summary(run: ScreenRun, records, sets, timings) -> dict:
    candles = run.candles
    warm = [r.full_warmup_bars for r in records if r.full_warmup_bars is not None]
    n_model = sum(r.path == "vectorised" for r in records)
    return {
        "source": candles.source, "symbol": candles.symbol, "timeframe": candles.timeframe,
        "synthetic": candles.synthetic,
        "periods": {name: describe_period(candles, *bounds) for name, bounds in run.periods.items()},
        "objective": resolve_objective(run.objective).name, "score": describe_objective(run.objective),
        "cash": run.cash, "commission": run.commission, "slippage": run.slippage,
        "fraction": run.fraction if run.fraction is not None else SIZER_PERCENTS / 100.0,
        "configurations": len(records),
        "model_configurations": n_model, "plain_configurations": len(records) - n_model,
        "errors": sum(1 for r in records if r.error),
        "distilled": {task: {"method": d.meta.get("method"), "points": d.size, "per_regime": d.meta.get("per_regime"),
                             "compression_ratio": d.compression_ratio, "fallback": d.meta.get("fallback"),
                             "timeframes": d.timeframes, **_own_windows(d)}
                      for task, d in sets.items()},
        **timings,
        "validation_warmup_bars": max(warm) if warm else None,
        "survivors": [r.name for r in records if r.survivor],
    }


def _own_windows(dset) -> dict:
    """``{"feature_options": …}`` for a set whose points carry other windows than the defaults
    (a strategy's own ``feature_options``), else nothing."""
    options = dset.meta.get("feature_options")
    return {"feature_options": options} if options and feature_options_key(options) else {}


def _series(run: ScreenRun, data, sets, records) -> dict:
    """What the report's plots need (:mod:`distillbt.screen_series`: plain arrays, no
    plotting library)."""
    from .screen_series import collect_series

    return collect_series(run.candles, data=data, sets=sets, records=[r.to_dict() for r in records],
                          curves=run.curves, periods=run.periods, screening_curves=run.screening_curves,
                          holdout_curves=run.holdout_curves, cash=run.cash,
                          full_results=run.full_results, holdout_results=run.holdout_results)


def _overfitting(records, summaries) -> dict:
    """Deflated Sharpe ratios of the survivors and the probability of backtest overfitting,
    from each configuration's screen equity (:func:`~distillbt.stats.return_summary`)."""
    out: dict = {}
    names = [r.name for r in records if r.name in summaries and summaries[r.name]["n_obs"] > 2]
    if not names:
        return out
    sharpes = np.array([summaries[n]["sharpe"] for n in names])
    for record in records:
        if record.survivor and record.name in names:
            s = summaries[record.name]
            record.deflated_sharpe = float(deflated_sharpe_ratio(
                s["sharpe"], sharpes, s["n_obs"], skew=s["skew"], kurtosis=s["kurtosis"]))
    length = min(len(summaries[n]["block_returns"]) for n in names)
    if len(names) >= 8 and length >= 64:
        blocks = np.column_stack([summaries[n]["block_returns"][:length] for n in names])
        out["pbo"] = float(probability_of_backtest_overfitting(blocks, n_splits=16)["pbo"])
    return out


def _fidelity(records, validation, timings, *, top, seed) -> dict:
    """How far the screen can be trusted, from the validation backtests (module docstring,
    "Accounting"): speed-up, Spearman (all validated configurations, and the fast paths only),
    top-k recall (full validation), per path, and the executions' agreement."""
    if validation is None:
        return {}
    names = set(validation["names"])
    validated = [r for r in records if r.name in names and r.full_score is not None and r.scored]
    wall = validation["wall_seconds"]
    out: dict = {"validation": validation["mode"], "validated_configurations": len(validated),
                 "validation_full_seconds": wall}
    if validation["mode"] == "all":
        full_seconds = wall
    else:
        # the sample's wall time per configuration, times every scored configuration
        full_seconds = wall * validation["scored"] / max(len(validation["names"]), 1)
        out["estimated_full_seconds"] = full_seconds
    out["speedup"] = full_seconds / timings["screen_seconds"] if timings["screen_seconds"] > 0 else None
    out.update(rank_agreement(validated, seed=seed, key=""))
    fast = [r for r in validated if r.path in FAST_PATHS]
    out["fast_path_configurations"] = len(fast)
    out.update(rank_agreement(fast, seed=seed, key="_fast_path"))
    if validation["mode"] == "all" and validated:
        k = min(5, top, len(validated))
        true_top = sorted(validated, key=lambda r: -r.full_score)[:k]
        out["topk"] = k
        out["topk_recall"] = sum(r.survivor for r in true_top) / k
        out["wrongly_eliminated"] = [r.name for r in true_top if not r.survivor]
    # Each path against its own full backtests; their share of the validation wall time is
    # their share of the runs' summed seconds (the runs of both paths share the workers).
    total_run_seconds = sum(r.full_seconds for r in validated) or 1.0
    own = {"model": timings["distill_seconds"] + timings["model_seconds"], "plain": timings["plain_seconds"]}
    shared = max(0.0, timings["screen_seconds"] - sum(own.values()))  # discovery, periods, ranking
    n_model = sum(r.path == "vectorised" for r in records)
    share = {"model": n_model / max(len(records), 1), "plain": 1 - n_model / max(len(records), 1)}
    paths = {}
    for path, members in (("model", [r for r in validated if r.path == "vectorised"]),
                          ("plain", [r for r in validated if r.path != "vectorised"])):
        if not members:
            continue
        seconds = own[path] + shared * share[path]
        path_full = full_seconds * sum(r.full_seconds for r in members) / total_run_seconds
        entry = {"configurations": len(members), "screen_seconds": seconds, "full_seconds": path_full,
                 "speedup": path_full / seconds if seconds > 0 else None,
                 "full_fallbacks": sum(r.path == "full" for r in members)}
        entry.update(rank_agreement(members, seed=seed, key=""))
        entry.update(rank_agreement([r for r in members if r.path in FAST_PATHS], seed=seed, key="_fast_path"))
        paths[path] = entry
    out["paths"] = paths
    diffs = [r.execution_rel_diff for r in validated if r.execution_rel_diff is not None]
    if diffs:
        out["execution_max_rel_diff"] = float(max(diffs))
    return out


def rank_agreement(records, *, seed: int, key: str) -> dict:
    """``spearman{key}`` over the records' screen and full scores with a bootstrap 90 %
    interval (``spearman{key}_ci90``), and how many there were; {} for fewer than 3."""
    if len(records) < 3:
        return {}
    screen_scores = np.array([r.screen_score for r in records], dtype="float64")
    full_scores = np.array([r.full_score for r in records], dtype="float64")
    out = {f"spearman{key}": _spearman(screen_scores, full_scores), f"spearman{key}_configurations": len(records)}
    if np.ptp(screen_scores) > 0 and np.ptp(full_scores) > 0:
        with warnings.catch_warnings():
            # a resample of a few points can repeat one value: Spearman is undefined there (NaN)
            warnings.simplefilter("ignore")
            interval = bootstrap((screen_scores, full_scores), _spearman, paired=True, vectorized=False,
                                 n_resamples=_BOOTSTRAP_RESAMPLES, confidence_level=0.9, method="percentile",
                                 rng=np.random.default_rng(seed)).confidence_interval
        if np.isfinite([interval.low, interval.high]).all():
            out[f"spearman{key}_ci90"] = [float(interval.low), float(interval.high)]
    return out


def _spearman(a, b) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


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


def with_fraction(config: Configuration, fraction: float) -> Configuration:
    """A model configuration sizing its positions at ``fraction`` (its ``fraction`` param),
    under its own name."""
    return Configuration(config.strategy, {**config.params, "fraction": float(fraction)}, config.name)


def _with_horizons(config: Configuration, horizons: tuple) -> Configuration:
    params = {**config.params, "horizons": horizons}
    return Configuration(config.strategy, params, configuration_name(config.strategy.name, params))
