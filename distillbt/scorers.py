"""How the screen scores configurations: one :class:`Scorer` per kind of strategy.

A scorer takes the configurations it accepts and fills their :class:`~distillbt.records.
ScreenRecord` (``path``, ``screen_score``, ``error``, …) for the screening period of a
:class:`ScreenRun`. The screen asks each scorer in turn (:func:`distillbt.screen.screen`); a
new kind of scoring (estimator-aware distillation, baskets of instruments) is one more class
with the same two methods, and the others do not change::

    run = ScreenRun(candles, periods, cash=10_000.0, commission=0.001)
    for scorer in (ModelScorer(sets), PlainScorer()):
        mine = [(r, c) for r, c in zip(records, configs) if scorer.accepts(c)]
        report = scorer.score(run, mine)         # ScorerReport: seconds, summary

- :class:`ModelScorer`: model strategies fitted on distilled points and run vectorised
  (:mod:`distillbt._vectorised_screen`);
- :class:`PlainScorer`: plain Backtrader strategies through learned surrogates
  (:mod:`distillbt.surrogate`: episodes, recording, escalation, full fallbacks), or a
  baseline full backtest each.

Every full backtest goes through :meth:`ScreenRun.backtest` with :mod:`distillbt.baseline`'s
jobs, so the screen's fallbacks, validation and survivors share one baseline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from tqdm.auto import tqdm

from ._vectorised_screen import screen_vectorised
from .backtest import run_many
from .baseline import baseline_job, is_model
from .data.candles import Candles
from .discovery import Configuration
from .executor import current
from .records import ScreenRecord
from .stats import return_summary

__all__ = ["Scorer", "ScorerReport", "ScreenRun", "ModelScorer", "PlainScorer", "take_plain_screen"]


@dataclass
class ScreenRun:
    """What the screen's stages share: the market and its periods (name → candle positions
    ``(start, stop)``), the run's options, and what the stages collect for the report and
    the overfitting statistics (equity curves, return summaries, full results)."""

    candles: Candles
    periods: dict
    cash: float = 10_000.0
    commission: float = 0.001
    n_jobs: int = 1
    backend: str = "loky"
    progress: bool = True
    seed: int = 0
    objective: str | None = None    # what every score measures (distillbt.objectives)
    slippage: float = 0.0           # fills this fraction of the price worse, on every path
    fraction: float | None = None   # share of equity per position (None: 95 %)
    summaries: dict = field(default_factory=dict)         # name -> return summary of its screen equity
    curves: dict = field(default_factory=dict)            # name -> screen equity of full-path configurations
    screening_curves: dict = field(default_factory=dict)  # survivors' full backtests, screening
    holdout_curves: dict = field(default_factory=dict)    # survivors' full backtests, holdout
    full_results: dict = field(default_factory=dict)      # name -> screening-period full result
    holdout_results: dict = field(default_factory=dict)   # name -> holdout-period full result (survivors)
    #: Full backtests run before are taken from here (a :class:`~distillbt.result_cache.ResultCache`;
    #: None: every job runs); ``cached_backtests`` counts them.
    cache: object = None
    cached_backtests: int = 0

    def jobs(self, configs, period: str, *, record_equity=frozenset()) -> list:
        """Baseline full backtests of ``configs`` on ``period``; equity curves are kept for the
        configurations named in ``record_equity`` (or all, with ``True``)."""
        start, stop = self.periods[period]
        return [baseline_job(c, self.candles, start=start, stop=stop, cash=self.cash, commission=self.commission,
                             record_equity=record_equity is True or c.name in record_equity,
                             objective=self.objective, slippage=self.slippage, fraction=self.fraction)
                for c in configs]

    def backtest(self, jobs) -> tuple[list, float]:
        """Results of ``jobs`` (in order) and the wall time the ones that ran took together,
        timed on started workers (:meth:`~distillbt.executor.Executor.ready`: the baseline is
        Backtrader at its fastest; a screen that waits for the start still counts it on its own
        clock); with a :attr:`cache`, only the jobs it does not hold run (and their results are
        kept)."""
        jobs = list(jobs)
        results = self.cache.lookup_backtests(jobs) if self.cache is not None else [None] * len(jobs)
        todo = [i for i, result in enumerate(results) if result is None]
        executor = current()
        if executor is not None and len(todo) > 1:
            executor.ready()
        began = time.perf_counter()
        self.cached_backtests += len(jobs) - len(todo)
        ran = run_many([jobs[i] for i in todo], n_jobs=self.n_jobs, backend=self.backend,
                       progress=self.progress) if todo else []
        for i, result in zip(todo, ran):
            results[i] = result
        if self.cache is not None and todo:
            self.cache.store_backtests([jobs[i] for i in todo], ran)
        return results, time.perf_counter() - began


@dataclass
class ScorerReport:
    """What one scorer spent (wall seconds) and has to say (its summary, or None)."""

    seconds: float
    summary: dict | None = None


class Scorer(Protocol):
    """Scores the configurations it accepts on a run's screening period."""

    #: The key of its part of the screen's time in the summary (``model`` → ``model_seconds``).
    part: str

    def accepts(self, configuration: Configuration) -> bool:
        ...

    def score(self, run: ScreenRun, jobs: list[tuple[ScreenRecord, Configuration]]) -> ScorerReport:
        ...


class ModelScorer:
    """Model strategies: each fitted on the distilled set its estimator, task and horizon
    need (``sets``: key → set; ``set_of``: configuration name → key;
    :mod:`distillbt.distilled_sets`) and run vectorised over the screening period. Keeps the
    screening run's features (:attr:`feature_cache`) for the replicas that check the two
    executions."""

    part = "model"

    def __init__(self, sets: dict, set_of: dict):
        self.sets = sets
        self.set_of = set_of
        self.feature_cache: dict = {}

    def accepts(self, configuration: Configuration) -> bool:
        return is_model(configuration)

    def score(self, run: ScreenRun, jobs) -> ScorerReport:
        began = time.perf_counter()
        s_start, s_stop = run.periods["screening"]
        with tqdm(total=len(jobs), desc="screen", unit="config", disable=not run.progress or not jobs,
                  leave=False) as bar:
            outcomes = screen_vectorised([c for _, c in jobs], self.sets, run.candles,
                                         set_of=self.set_of, cash=run.cash, commission=run.commission,
                                         start=s_start, stop=s_stop, n_jobs=run.n_jobs, backend=run.backend,
                                         progress=bar, feature_cache=self.feature_cache, objective=run.objective,
                                         slippage=run.slippage) if jobs else []
        for (record, config), outcome in zip(jobs, outcomes):
            record.path = "vectorised"
            record.vectorised_seconds = outcome.get("seconds")
            if outcome["error"]:
                record.error = outcome["error"]
                continue
            record.screen_score = outcome["score"]
            record.notes = tuple(outcome["notes"]) if outcome["notes"] else None
            run.summaries[config.name] = outcome["returns"]
        return ScorerReport(time.perf_counter() - began)


class PlainScorer:
    """Plain Backtrader strategies: a learned surrogate each, escalated and at last backtested
    in full where it cannot be trusted (``plain="surrogate"``; :func:`distillbt.surrogate.
    screen_plain`, whose :class:`~distillbt.surrogate.api.PlainSurrogates` holds the batch's
    plans, episodes, column caches and surrogates; with ``min_speedup`` and stored
    ``episodes``), a replay each (``plain="replay"``: exact, :mod:`distillbt.surrogate.replay`),
    or a baseline full backtest each (``plain="full"``)."""

    part = "plain"

    def __init__(self, *, plain: str = "surrogate", min_speedup: float = 3.0, episodes=None):
        self.plain = plain
        self.min_speedup = min_speedup
        self.episodes = episodes

    def accepts(self, configuration: Configuration) -> bool:
        return not is_model(configuration)

    def score(self, run: ScreenRun, jobs) -> ScorerReport:
        began = time.perf_counter()
        if not jobs:
            return ScorerReport(0.0)
        if self.plain in ("surrogate", "replay"):
            summary = self._surrogates(run, jobs)
        else:
            summary = None
            self._full(run, jobs, run.backtest(run.jobs([c for _, c in jobs], "screening", record_equity=True))[0])
        return ScorerReport(time.perf_counter() - began, summary)

    def _surrogates(self, run: ScreenRun, jobs) -> dict:
        from .surrogate.api import screen_plain

        out = screen_plain([c for _, c in jobs], run.candles, train=run.periods["training"],
                           screen=run.periods["screening"], seed=run.seed, n_jobs=run.n_jobs, backend=run.backend,
                           cash=run.cash, commission=run.commission, progress=run.progress,
                           min_speedup=self.min_speedup, episodes=self.episodes, objective=run.objective,
                           slippage=run.slippage, fraction=run.fraction, learn=self.plain == "surrogate")
        take_plain_screen(run, jobs, out)
        return {k: v for k, v in out.summary.items() if k != "regimes"}

    def _full(self, run: ScreenRun, jobs, results) -> None:
        for (record, config), result in zip(jobs, results):
            record.path = "full"
            if result.get("error"):
                record.error = result["error"]
                continue
            record.screen_score = float(result["score"])
            record.take_full(result)
            run.full_results[config.name] = result
            run.curves[config.name] = np.asarray(result["equity"], dtype="float64")
            run.summaries[config.name] = return_summary(run.curves[config.name])


def take_plain_screen(run: ScreenRun, jobs, out) -> None:
    """Fill the ``jobs``' records (``(record, configuration)``, in the order of ``out.records``)
    from a :class:`~distillbt.surrogate.api.PlainScreen`: path, score, trust, a fallback's full
    backtest, and each configuration's return summary in ``run``."""
    for (record, config), res in zip(jobs, out.records):
        if res["error"]:
            record.error = res["error"]
            continue
        record.path = res["path"]
        record.screen_score = res["score"]
        record.trust = res["trust"]
        if res["path"] == "full" and res["name"] in out.full_results:
            record.take_full(out.full_results[res["name"]])
            # a full backtest is the screening leg itself: its trades and equity for the report
            run.full_results[res["name"]] = out.full_results[res["name"]]
            run.curves[res["name"]] = np.asarray(out.curves[res["name"]], dtype="float64")
    for name, curve in out.curves.items():
        run.summaries[name] = return_summary(np.asarray(curve, dtype="float64"))
