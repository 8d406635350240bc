"""One screened configuration: what the screen knows of it, in one typed record.

:class:`ScreenRecord` is written by the scorers (:mod:`distillbt.scorers`) and by the screen's
later stages (ranking, validation, survivors), read by the CLI and the report, and saved as a
plain dict (:meth:`ScreenRecord.to_dict`; the keys of ``screen --out``). Scores are
``log(final value / initial cash)``; seconds are wall seconds of one run.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from .discovery import Configuration

__all__ = ["ScreenRecord", "PATHS", "FAST_PATHS"]

#: Where a screen score comes from: a model strategy run vectorised, a plain strategy's
#: surrogate (escalated to more episodes or not), a replay of its own ``next()`` over
#: precomputed lines (:mod:`distillbt.surrogate.replay`), or a full Backtrader backtest.
PATHS = ("vectorised", "surrogate", "surrogate+escalated", "replay", "full")
#: The paths that are not Backtrader's own full run (a replay is exact by construction and by
#: test, yet its survivors are still backtested in Backtrader to measure it).
FAST_PATHS = PATHS[:4]

#: Always in the saved dict, even when None.
_ALWAYS = ("name", "strategy", "params", "file", "path", "screen_score", "screen_rank", "survivor", "error")


@dataclass
class ScreenRecord:
    """A configuration's screen score and, where they ran, its full backtests.

    Attributes
    ----------
    name, strategy, params, file
        The configuration (``SmaCross(fast=10, slow=50)``), its class, params and file.
    path
        One of :data:`PATHS`.
    screen_score, screen_rank, survivor
        The screen's estimate on the screening period, its rank (1 = best) and whether it
        survived to full backtests.
    error
        One line when the configuration failed (its scores are then None).
    notes
        What the fit wants said (a model fitted on another horizon, ...).
    distilled_by
        A model configuration's distilled set: method, points, task, target horizon and the
        estimator family that chose it (:mod:`distillbt.distilled_sets`).
    trust
        A plain strategy's surrogate trust signals (:mod:`distillbt.surrogate`).
    vectorised_seconds
        A model configuration's cost in the screen: its vectorised run and its share of its
        model's fit (the configurations sharing the fit pay equal shares), worker seconds —
        the distillation and the stages every configuration shares not included.
    full_score, full_stats, full_seconds, full_warmup_bars
        Its baseline full backtest on the screening period (:mod:`distillbt.baseline`).
    holdout_score, holdout_stats, holdout_seconds, holdout_error
        A survivor's full backtest on the holdout period.
    deflated_sharpe
        A survivor's Deflated Sharpe Ratio among every configuration tried.
    execution_rel_diff
        The vectorised and Backtrader executions of the same real-fitted model: relative
        difference of their final values.
    instruments
        A basket screen's scores per instrument: name → ``screen_score``, ``full_score``,
        ``holdout_score``, ``path`` (:mod:`distillbt.basket_screen`); the record's own scores
        are then the basket's.
    """

    name: str
    strategy: str
    params: dict
    file: str
    path: str
    screen_score: float | None = None
    screen_rank: int | None = None
    survivor: bool = False
    error: str | None = None
    notes: tuple | None = None
    distilled_by: str | None = None
    trust: dict | None = None
    vectorised_seconds: float | None = None
    full_score: float | None = None
    full_stats: dict | None = None
    full_seconds: float | None = None
    full_warmup_bars: int | None = None
    holdout_score: float | None = None
    holdout_stats: dict | None = None
    holdout_seconds: float | None = None
    holdout_error: str | None = None
    deflated_sharpe: float | None = None
    execution_rel_diff: float | None = None
    instruments: dict | None = None

    @classmethod
    def of(cls, configuration: Configuration, *, path: str) -> ScreenRecord:
        """A fresh record of ``configuration``, to be scored on ``path``."""
        return cls(name=configuration.name, strategy=configuration.strategy.name, params=configuration.params,
                   file=str(configuration.strategy.file), path=path)

    @property
    def scored(self) -> bool:
        return self.screen_score is not None

    def take_full(self, result: dict) -> None:
        """Keep a baseline full backtest of the screening period (a :func:`~distillbt.backtest.
        run_backtest` result)."""
        from .stats import headline_stats

        self.full_score = float(result["score"])
        self.full_stats = headline_stats(result)
        self.full_seconds = float(result["seconds"])
        self.full_warmup_bars = int(result["warmup_bars"])

    def to_dict(self) -> dict:
        """The saved form: the :data:`_ALWAYS` keys, and every other field that is set."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _ALWAYS or value is not None:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out
