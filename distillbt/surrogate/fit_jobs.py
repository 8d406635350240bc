"""Each configuration's surrogate fitted and judged where the executor's workers are.

A fit (:func:`~.trust.fit_and_trust`: the held-out folds, the final fit, the walk over the
screening period and its trust signals) is mostly Python: threads of one process share the
GIL, and two of them measured no faster than one (calibration set, 76 configurations, one-off
runs: 8.8 s in two threads, 7.9 s in one). So a batch's fits run on the executor's worker processes, as its
recordings do. Each fit gets the batch (:class:`FitBatch`: the candles from as far back as any
column of the screening period needs, the episodes, the options — sent with every job, its
large arrays memory-mapped once by loky, scattered once by Dask); a worker builds its
:class:`~.columns.ColumnCache` at its first fit of the batch and keeps it for the next ones
(bank columns are shared between configurations), and plans each configuration again (a plan
holds the strategy's built Backtrader graph, which does not travel). In this process (one
worker, the threading backend) the batch's own plans and cache serve.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from dataclasses import dataclass, field

import numpy as np

from ..distill.episodes import windows_as_episodes
from ..objectives import objective_score
from ..protective import priced_lines
from ..vectorised import simulate
from .columns import ColumnCache
from .order_log import fits, fits_entry
from .plan import plan_configuration
from .recorder import episode_windows, merged_flips, record_job
from .trade_state import held_runs
from .trust import failed_checks, fit_and_trust, spot_check

__all__ = ["FitBatch", "Fills", "fit_configuration", "spot_check_configuration", "hold_window_starts"]


class Fills:
    """``path → simulate(bars, path, **options)`` (with the walk's protective ``exits`` and
    ``entries`` by orders); asked again for the path it filled last (the one a walk settled
    on), it gives that result without simulating again."""

    def __init__(self, bars, **options):
        self.bars, self.options, self._last = bars, options, (None, None)

    def __call__(self, path) -> dict:
        if self._last[0] is not path:
            self._last = (path, simulate(self.bars, path, exits=getattr(path, "exits", None),
                                         entries=getattr(path, "entries", None), **self.options))
        return self._last[1]


@dataclass
class FitBatch:
    """What every fit of one batch reads (module docstring).

    ``frame``: the candles from ``lead`` bars before the screening period to its end, which is
    ``screen`` (positions in ``frame``); ``episodes``; ``options``: :func:`fit_and_trust`'s
    keywords shared by the batch (``max_depth``, ``seed``, ``commission``, ``thresholds``,
    ``screen_bars``, ``give_up``) and the fills' and score's (``cash``, ``slippage``,
    ``objective``, ``bars_per_year``), the recordings' (``timeframe``, ``fraction``: the
    sizer's share of equity they run with); ``own_lines`` as the plans were made.
    ``columns`` (this process's cache, when the batch's own) is not sent to workers."""

    frame: object
    screen: tuple[int, int]
    episodes: object
    options: dict
    own_lines: bool = True
    columns: ColumnCache | None = None
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __getstate__(self):
        return {**self.__dict__, "columns": None}

    @property
    def screen_bars(self) -> dict:
        start, stop = self.screen
        return {k: self.frame[k].to_numpy()[start:stop] for k in ("open", "high", "low", "close")}


#: One worker's column cache of the batch it fits for (by the batch's token).
_WORKER: dict = {"token": None, "columns": None}


@contextlib.contextmanager
def _columns_and_plan(configuration, batch: FitBatch, plan):
    """The batch's columns and the configuration's plan: the batch's own in this process; in
    a worker, its cache of the batch's columns and a plan made here, whose own-line columns
    are dropped after the job (a worker fits many configurations; a plan holds a built
    Backtrader graph: kept, they would only grow its memory)."""
    if batch.columns is not None:
        yield batch.columns, plan
        return
    if _WORKER["token"] != batch.token:
        # copies: the batch's large arrays arrive memory-mapped from joblib's temporary
        # folder, and this cache outlives the map: it must not keep those files in use
        episodes = dataclasses.replace(batch.episodes, time_ns=np.array(batch.episodes.time_ns),
                                       ohlcv=np.array(batch.episodes.ohlcv))
        _WORKER.update(token=batch.token, columns=ColumnCache(batch.frame.copy(deep=True), batch.screen, episodes))
    columns = _WORKER["columns"]
    plan = plan_configuration(configuration, own_lines=batch.own_lines)
    try:
        yield columns, plan
    finally:
        columns.forget(plan)


def fit_configuration(configuration, rec: dict, fraction: float, flips: str | None, *, batch: FitBatch,
                      plan=None) -> tuple:
    """Configuration's surrogate fitted on its recording ``rec`` and judged
    (:func:`~.trust.fit_and_trust`); ``(score, trust, found, spot)``: the score of its walk
    over the screening period (None when its episodes fail it), its trust, ``found`` —
    ``(model, equity, evidence, positions)`` (int8 positions of the walk), ``(model, None,
    evidence, None)`` for a model its episodes fail, or None — and its spot check. ``fraction``
    and ``flips``: how its positions are sized (``plan``: the batch's own, in this process).

    With ``batch.options["spot"]`` (nothing comes between the fits and the spot checks: no
    escalation), a surrogate its trust passes (``options["judge"]``: the thresholds) is spot
    checked in the same job — with the plan and columns it was fitted with, as soon as it is
    fitted — and ``spot`` is :func:`spot_check_configuration`'s dict; else None. ``spot``
    holds ``pool`` (the episodes of ``batch.episodes`` every spot check records), ``holds``,
    ``length``, ``warmup`` and ``lead``: windows of ``length`` scored bars (``warmup`` before
    each) starting ``lead`` bars before each of the ``holds`` longest positions the walk holds
    (:func:`hold_window_starts`)."""
    with _columns_and_plan(configuration, batch, plan) as (columns, plan):
        score, trust, found = _fit(rec, plan, columns, fraction, flips, batch)
        spot = batch.options.get("spot")
        if spot is None or found is None or failed_checks(trust, **batch.options["judge"]):
            return score, trust, found, None
        return score, trust, found, _spot_where_fitted(configuration, plan, columns, found[0], found[3], fraction,
                                                       flips, rec.get("units"), batch, spot)


def hold_window_starts(path, screen: tuple[int, int], *, holds: int, length: int, lead: int) -> list[int]:
    """Positions (those of ``screen``, the screening period's ``(start, stop)``) of windows that
    each start ``lead`` bars before one of the ``holds`` longest positions the walk ``path``
    (over the screening period) holds, ``length`` bars long, none overlapping another, all
    inside the period — where a surrogate extrapolates most in time."""
    if path is None or not holds:
        return []
    start, stop = screen
    runs = held_runs(path)
    starts = []
    for first, _ in runs[np.argsort(-runs[:, 1], kind="stable")][:holds]:
        at = min(int(start + max(0, int(first) - lead)), stop - length)
        if at >= start and all(abs(at - other) >= length for other in starts):
            starts.append(at)
    return starts


def _spot_where_fitted(configuration, plan, columns, model, path, fraction, flips, units, batch: FitBatch,
                       spot) -> dict:
    """The spot check of a surrogate just fitted (:func:`fit_configuration`): on the pool's
    episodes, whose columns the batch's cache holds, and on windows around its own walk's
    longest positions, whose columns a cache of their own holds (they are this
    configuration's: the batch's must not index them)."""
    starts = hold_window_starts(path, batch.screen, holds=spot["holds"], length=spot["length"], lead=spot["lead"])
    n = batch.episodes.n
    held = windows_as_episodes(batch.frame, starts, length=spot["length"], warmup=spot["warmup"],
                               regime_names=batch.episodes.regime_names) if starts else None
    which = list(spot["pool"]) + [n + j for j in range(len(starts))]
    if not which:
        return {}
    warmup = plan.warmup
    windows = episode_windows(batch.episodes, spot["pool"], warmup) + (
        episode_windows(held, range(len(starts)), warmup) if held is not None else [])
    own = ColumnCache(columns.frame, (columns.start, columns.stop), held) if held is not None else None

    def bank_of(e):
        return columns.episode_bank(e, plan) if e < n else own.episode_bank(e - n, plan)

    def trade_of(lines):
        here, there = columns.trade_of(plan, lines), own.trade_of(plan, lines) if own is not None else None
        return lambda e: here(e) if e < n else there(e - n)

    return _spot(configuration, which, windows, model, fraction, flips, units, batch, plan, bank_of, trade_of)


def _fit(rec, plan, columns, fraction, flips, batch: FitBatch) -> tuple:
    options = batch.options
    lines = priced_lines(rec.get("protection"), rec.get("entry"))
    fills = Fills(batch.screen_bars, cash=options["cash"], commission=options["commission"], start_index=0,
                  fraction=fraction, slippage=options["slippage"], reversal=flips or "value", reissue=True,
                  units=rec.get("units"))
    try:
        model, path, trust, evidence = fit_and_trust(
            rec, plan, columns.bank_of(plan), columns.screen_columns_of(plan),
            trade_of=columns.trade_of(plan, lines) if plan.trade or rec.get("protection") or rec.get("entry") else None,
            screen_trade=columns.screen_trade_of(plan, lines), max_depth=options["max_depth"], seed=options["seed"],
            commission=options["commission"], fraction=fraction, thresholds=options["thresholds"],
            screen_bars=options["screen_bars"], give_up=options["give_up"], fill=fills)
    except Exception as exc:  # noqa: BLE001 - e.g. a strategy that never trades in the episodes
        return None, {"trusted": False, "error": f"{type(exc).__name__}: {exc}", "episodes": len(rec["episodes"]),
                      "bars_fed": int(rec.get("bars_fed", 0))}, None
    if path is None:  # its episodes fail it (or it was given up on): its replay or full backtest scores it
        return None, trust, None if model is None else (model, None, evidence, None)
    equity = fills(path)["equity"]
    score = objective_score(options["objective"], equity, cash=options["cash"],
                            bars_per_year=options["bars_per_year"])
    return score, trust, (model, equity, evidence, np.asarray(path, dtype=np.int8))


def spot_check_configuration(configuration, which, warmup: int, model, fraction: float, flips: str | None,
                             units: float | None = None, *, batch: FitBatch, plan=None) -> dict:
    """A trusted surrogate judged on windows it was not fitted on: the strategy recorded on
    episodes ``which`` of ``batch.episodes`` (``warmup`` bars before each), and ``model``
    walked over them (:func:`~.trust.spot_check`) — or why the recording itself refuses it
    (an error, orders the fast path does not model, flips sized otherwise than in its
    episodes, protective or entry orders priced or timed otherwise: ``{"trusted": False,
    "reason"}``). Adds the Backtrader bars the recording fed (``bars_fed``). ``units``: the
    fixed units its positions hold, None when they take a share of equity."""
    with _columns_and_plan(configuration, batch, plan) as (columns, plan):
        return _spot(configuration, list(which), episode_windows(batch.episodes, which, warmup), model, fraction,
                     flips, units, batch, plan, columns.bank_of(plan), lambda lines: columns.trade_of(plan, lines))


def _spot(configuration, which, windows, model, fraction, flips, units, batch: FitBatch, plan, bank_of,
          trade_of) -> dict:
    options = batch.options
    rec = record_job(configuration, which, windows, options["cash"], options["commission"], options["timeframe"],
                     options["slippage"], options["fraction"], units)
    clash = merged_flips(flips, rec.get("flips"))[1]
    if not clash and units is None and rec.get("units") is not None:
        clash = f"positions of {rec['units']:g} units in the spot-check windows, a share of equity in its episodes"
    if not rec.get("error") and not fits(model.protection, rec.get("protective_trades", [])):
        clash = "its protective orders are priced otherwise in the spot-check windows"
    if not rec.get("error") and not fits_entry(model.entry, rec.get("entry_orders", [])):
        clash = "its entry orders are priced or timed otherwise in the spot-check windows"
    if rec.get("error") or rec.get("unmodelled") or clash:
        return {"trusted": False, "reason": rec.get("unmodelled") or rec.get("error") or f"{rec['name']}: {clash}"}
    found = spot_check(model, plan, rec, bank_of, screen_bars=batch.screen[1] - batch.screen[0],
                       trade_of=trade_of(priced_lines(model.protection, model.entry)) if model.needs_trade() else None,
                       commission=options["commission"], fraction=fraction)
    found["bars_fed"] = int(rec.get("bars_fed", 0))
    return found
