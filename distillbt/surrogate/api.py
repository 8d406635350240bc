"""Screen plain Backtrader strategies with learned surrogates; escalate what cannot be trusted.

::

    out = screen_plain(configurations, candles, train=(0, 250_000), screen=(250_000, 400_000),
                       seed=0, n_jobs=2)          # base_episodes=6, length=400: a fixed budget
    out.records[0]   # {"name", "score", "path": "surrogate" | "surrogate+escalated" | "full",
                     #  "trust": {...}, "error"}
    out.summary      # seconds of each phase, episode budget, counts per path

Per configuration (docs/design.md §6 has the measurements this follows; the modules beside
this one hold the parts: :mod:`.plan`, :mod:`.columns`, :mod:`.trust`, :mod:`.escalation`,
:mod:`.halving`):

1. the windows its indicators use are read from its parameters (int parameters not named like
   levels) and from ``period=N`` literals in the strategy's source; the indicator bank columns
   at those periods (their moving-average pairs, lagged and crossover columns) are its
   features; its warm-up is its longest window + 10 bars;
2. the real strategy runs in Backtrader on a **fixed** budget of base episodes (default 6 ×
   400 scored bars, regime-balanced; the same episodes for every configuration: common
   random numbers) — the cost does not grow with history;
3. a :class:`~.model.PositionSurrogate` is fitted on the recorded decisions — first three
   times, each time without one of the last three quarters of every episode, to measure
   **agreement** and the **P&L gap** on the quarters left out (walked from the state the
   strategy really held there), then on all of it;
4. the surrogate walks the whole screening period (only the bank columns its tree splits on
   are computed there, once, shared), and :func:`distillbt.vectorised.simulate` turns its
   positions into the score the screen uses, ``log(final value / cash)``, with Backtrader's
   fills, commission and sizing — unless the episodes' agreement or P&L gap already fail it
   and its replay or full backtest follows (``full_fallback``): that one scores it, and
   the walk of a strategy that trades every other bar would cost seconds for nothing (its
   record then has no ``surrogate_score``, and its trust no walk signals: ``walked`` False);
5. **trust**: ``coverage`` — the fewest transitions seen out of any state the walk holds and
   into any state it enters; ``agreement`` on held-out quarters (the last three of every
   episode, each walked by a tree fitted on the rest); ``rate_ratio`` — how often the walk leaves a
   state compared with the episodes (a surrogate that never exits shows up here);
   ``pnl_gap`` — what the held-out walks' mistakes cost or earned against the real positions,
   scaled to the screening period's length, ``threshold_gap`` — how much the screen's score
   moves when each split the data cannot place exactly goes to either end of the gap its
   training values leave, and ``rule_gap`` — how much it moves under the other trees that
   decide every recorded bar alike but read other columns (all in log-return units:
   estimates of the score's error). Every move between two positions the walk makes (a
   reversal) must have been seen in the episodes too (``coverage``).
   Below ``min_transitions``, below ``min_agreement``, with a rate ratio outside
   ``[1/rate_band, rate_band]`` or a gap above ``max_pnl_gap``: the configuration is not
   trusted;
6. **spot check**: a trusted surrogate is walked over windows it was not fitted on — the
   pool's next ``spot_episodes`` episodes and windows of the screening period around the
   ``spot_holds`` longest positions its walk holds — where the strategy's real decisions are
   recorded; they must pass the same thresholds (:func:`~.trust.spot_check`);
7. what is not trusted, and what the surrogate does not model (OCO entries, StopLimit
   entries, entry or protective orders priced or timed by no rule the recording shows,
   other sizes), is
   **replayed** over the screening period (:mod:`.replay`: the strategy's own
   ``next()`` with Backtrader's broker, the full backtest's result; Backtrader's own run when
   the replay refuses the strategy), counted in the time — all of them in one map on the
   workers, the dearest first (what their recordings cost a bar). With ``replay=False`` (or
   ``escalate=True``) it is first **escalated** — new windows of the training period, longer
   each round, chosen where its own surrogate predicts the transitions it saw too rarely (or
   where its columns leave the range its episodes showed), recorded and refitted — and if it
   still falls short after ``escalation_rounds``, it gets its replay or full backtest. When
   the batch's base episodes would cost more than ``1 / min_speedup`` of its full backtests
   (short histories), all of it is replayed (or backtested in full).

The default thresholds (``min_transitions=3, min_agreement=0.998, rate_band=3,
max_pnl_gap=0.1``) are the cheapest of a grid that kept the share of trusted configurations
more than 0.05 (log return) from their full backtest at ≤ 5 % on strategies written for the
purpose (``benchmarks/bench_trust.py --calibrate``; 41 configurations, sample market 300k
candles, seeds 0–2, 4/6/12 base episodes: 49 % trusted, 2.8 % of them off by more). The
held-out agreement and gaps carry the decision (a proxy rule — a WMA cross learnt on SMA
columns — agrees on ≈ 0.9 of held-out bars; a split placed loosely agrees on 0.997–0.999 and
only the gap sees it); coverage and the rate band cost nothing there and are kept as a net.
``--check`` measures the thresholds on a second, different set. The spot check came later
(issue 15): on the held-out plain set it left 0 of 18 trusted scores more than 0.05 off.

Every record says which path its score came from.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import backtrader as bt
import numpy as np

from ..backtest import SIZER_PERCENTS, BacktestJob, run_many
from ..distill.episodes import DEFAULT_EPISODE_WARMUP, Episodes, select_episodes, windows_as_episodes
from ..errors import InputError, first_line
from ..executor import current, parallel_api
from ..indicators import KINDS
from ..objectives import bars_per_year, objective_score
from ..protective import FEED_PRICES, priced_lines
from ..records import PATHS
from .columns import ColumnCache
from .escalation import SourceColumns, escalation_windows, merged_recording
from .fit_jobs import FitBatch, Fills, fit_configuration, hold_window_starts, spot_check_configuration
from .plan import ConfigPlan, full_warmup, plan_configuration
from .recorder import record_many
from .replay import ReplayCerebro
from .trust import failed_checks, walk_and_trust

__all__ = ["screen_plain", "PlainScreen", "PlainSurrogates"]

log = logging.getLogger(__name__)


@dataclass
class PlainScreen:
    """What :func:`screen_plain` returns: one record per configuration (in order), the
    summary, the episodes used, the screening-period equity of every scored configuration and
    the full-backtest results of those that got one."""

    records: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    episodes: Episodes | None = None
    curves: dict = field(default_factory=dict)  # name -> equity over the screening period
    full_results: dict = field(default_factory=dict)  # name -> run_many result of full backtests
    #: With ``screen_plain(walk_on=…)``: the same surrogates on each other instrument, in order.
    walked: list = field(default_factory=list)


@parallel_api  # one executor for the whole call (takes scheduler=, executor=)
def screen_plain(
    configurations,
    candles,
    *,
    train: tuple[int, int],
    screen: tuple[int, int],
    seed: int = 0,
    n_jobs: int = 1,
    backend: str = "loky",
    cash: float = 10_000.0,
    commission: float = 0.001,
    base_episodes: int = 6,
    length: int | None = None,
    pool_episodes: int | None = None,
    escalation_rounds: int = 3,
    escalation_episodes: int = 4,
    source_bars: int | None = 120_000,
    max_depth: int = 8,
    min_transitions: int = 3,
    min_agreement: float = 0.998,
    rate_band: float = 3.0,
    max_pnl_gap: float = 0.1,
    min_speedup: float = 3.0,
    escalate: bool | None = None,
    full_fallback: bool = True,
    episodes: tuple[Episodes, int] | None = None,
    progress: bool = True,
    objective: str | None = None,
    slippage: float = 0.0,
    fraction: float | None = None,
    walk_on=(),
    own_lines: bool = True,
    replay: bool = True,
    spot_episodes: int = 4,
    spot_holds: int = 3,
    learn: bool = True,
    all_signals: bool = False,
) -> PlainScreen:
    """Score plain configurations on ``candles[screen[0]:screen[1]]`` (see the module).

    ``train`` and ``screen`` are ``(start, stop)`` candle positions; episodes come from the
    last ``source_bars`` candles of ``train`` (None: all of it). The episode budget is fixed,
    not a share of history: ``base_episodes`` windows of ``length`` scored bars (default 400)
    for every configuration (the same ones: common random numbers), each with the warm-up its
    configuration needs (its longest window + 10 bars), in a chosen pool of ``pool_episodes``
    (at least the base ones; ``PlainScreen.episodes`` holds them, e.g. for
    :func:`~.halving.successive_halving`). Escalation chooses its own windows: up to
    ``escalation_rounds`` rounds of ``escalation_episodes`` windows (fewer and longer each
    round), where the configuration's own surrogate predicts the transitions it has seen too
    rarely. When the batch's base episodes would cost more than ``1 / min_speedup`` of its
    full backtests (short histories), every configuration gets the full backtest directly
    (``min_speedup=0``: always try the surrogate).
    ``episodes``: a ``(Episodes, n_base)`` pair made earlier (e.g. stored with a distilled set,
    ``distill --episodes``); chosen here all the same when their warm-up is shorter than the
    configurations need (``summary["episodes_from"]`` says which).

    ``objective`` (:mod:`distillbt.objectives`), ``slippage`` and ``fraction`` (share of
    equity per position, default 95 %): as the full backtest's, on every path. A strategy that
    sets its own sizer in ``__init__`` is mirrored when it is a ``PercentSizer`` (or
    ``AllInSizer``) and backtested in full otherwise, the reason in its trust.

    ``walk_on``: ``(candles, (start, stop))`` of other instruments (a basket): the surrogates
    learned here are walked over each one's screening period too (:meth:`PlainSurrogates.
    walk_on`), in ``PlainScreen.walked``.

    ``own_lines``: the surrogates also read the columns of each strategy's own lines
    (:mod:`.own_features`); False: the indicator bank's only.

    ``replay``: what the surrogate cannot score is scored by replaying the strategy's own
    ``next()`` over its precomputed lines with Backtrader's broker (:mod:`.replay`: the full
    backtest's result, several times faster; ``path="replay"``), by Backtrader's own loop
    when the replay refuses the strategy; False: by Backtrader's own loop (``path="full"``).
    ``escalate`` (default: only without the replay, which cost less than escalation rounds on
    the calibration set) sends untrusted configurations through escalation first.

    ``spot_episodes``, ``spot_holds``: a trusted surrogate is also walked over windows it was
    not fitted on, where the strategy's real decisions are recorded after the fit: this many
    further episodes of the pool, and windows of the screening period around the
    ``spot_holds`` longest positions its own walk there holds — where it extrapolates most in
    time: a time exit or a stop the episodes never saw act would close those positions
    sooner. Their agreement and P&L gap (``spot_agreement``, ``spot_gap``) must pass the same
    thresholds, or the configuration is not trusted. (These windows check the estimate only;
    nothing is chosen on them.) 0 and 0: no spot check.

    ``all_signals``: every trust signal of every configuration, also the threshold and rule
    gaps of one its episodes already leave untrusted (walks of the screening period each;
    :func:`~.trust.walk_and_trust`), e.g. to choose the thresholds
    (``benchmarks/bench_trust.py``). False: those are not walked.

    ``learn=False``: no surrogate at all; every configuration is replayed (``replay=True``) or
    backtested in full — exact, and at screening periods of ~100,000 bars about as fast as
    learning (``benchmarks/bench_replay.py``).
    """
    options = {k: v for k, v in locals().items() if k not in ("configurations", "candles", "episodes", "walk_on")}
    batch = PlainSurrogates(configurations, candles, **options)
    out = batch.run(episodes)
    out.walked = [batch.walk_on(other, screen_) for other, screen_ in walk_on]
    return out


#: A plain configuration's score comes from its surrogate (escalated or not), a replay of its
#: own ``next()`` (exact, :mod:`.replay`) or Backtrader's full run: every path but the model
#: strategies' ``vectorised``.
PLAIN_PATHS = tuple(p for p in PATHS if p != "vectorised")

#: Bars before a held position's entry where its spot-check window starts: the strategy's own
#: entry is part of the window.
HOLD_LEAD = 20


def _fit_cost(recording: dict) -> float:
    """What fitting a recording costs, roughly, to order the fits dearest first: the
    positions it changes (each a transition the folds, the column search and the walks
    handle), three times over when its orders are filled in the walk (trade by trade, with
    the trade columns searched). Calibration set, one-off run: Spearman 0.68 with the fits'
    seconds; the weights were chosen there too — the order changes no result, only how
    evenly the workers finish."""
    changes = sum(int(np.count_nonzero(np.diff(np.asarray(state, dtype=np.float64)))) for state in recording["state"])
    orders = recording.get("protection") is not None or recording.get("entry") is not None
    return (changes + 10) * (3 if orders else 1)


def _judge(trust: dict, thresholds: dict) -> None:
    """``trust["trusted"]`` and, when it is not, ``trust["failed"]``: the checks it fails."""
    failed = failed_checks(trust, **thresholds)
    trust["trusted"] = not failed
    if failed:
        trust["failed"] = failed
    else:
        trust.pop("failed", None)


def _take_exact(record: dict, result: dict, curves: dict, full_results: dict) -> None:
    """A replay's or full backtest's result into a configuration's record."""
    if result.get("error"):
        record["error"] = result["error"]
        return
    curves[record["name"]] = result["equity"]
    path = "replay" if result.get("engine") == "replay" else "full"
    if path == "full":  # a Backtrader run: the screen's baseline need not run it again
        full_results[record["name"]] = result
    if record["trust"] is not None and result.get("engine_fallback"):
        record["trust"]["replay_refused"] = result["engine_fallback"]
    record.update(score=float(result["score"]), path=path, surrogate_score=record["score"])


class PlainSurrogates:
    """One batch of :func:`screen_plain`: what its stages share (plans, records, episodes,
    column caches, fitted surrogates, curves, timings) and the stages themselves, in the order
    :meth:`run` calls them: plan → episodes → record and fit (base episodes) → escalate → full
    backtests → summary. Arguments as :func:`screen_plain`'s."""

    def __init__(self, configurations, candles, *, train, screen, seed, n_jobs, backend, cash, commission,
                 base_episodes, length, pool_episodes, escalation_rounds, escalation_episodes, source_bars,
                 max_depth, min_transitions, min_agreement, rate_band, max_pnl_gap, min_speedup, escalate,
                 full_fallback, progress, objective=None, slippage=0.0, fraction=None, own_lines=True,
                 replay=True, spot_episodes=4, spot_holds=3, learn=True, all_signals=False):
        self.began = time.perf_counter()
        self.configurations = list(configurations)
        self.candles = candles
        self.frame = candles.frame
        self.s_start, self.s_stop = (int(x) for x in screen)
        self.t_start, self.t_stop = (int(x) for x in train)
        if not (0 <= self.t_start < self.t_stop <= self.s_start < self.s_stop <= len(self.frame)):
            raise InputError(f"periods must be ordered inside the candles: train {train}, screen {screen}")
        self.seed, self.n_jobs, self.backend, self.progress = seed, n_jobs, backend, progress
        self.cash, self.commission = cash, commission
        self.objective, self.slippage = objective, slippage
        self.fraction = SIZER_PERCENTS / 100.0 if fraction is None else float(fraction)
        self.fractions: dict = {}  # i -> a mirrored own PercentSizer's share of equity
        self.flips: dict = {}  # i -> how its flips are sized ("units" or "value", recorder.merged_flips)
        self.units: dict = {}  # i -> the fixed units its positions hold (recorder._unmodelled)
        self.base_episodes, self.length, self.pool_episodes = base_episodes, length, pool_episodes
        self.escalation_rounds, self.escalation_episodes = escalation_rounds, escalation_episodes
        self.max_depth, self.min_speedup = max_depth, min_speedup
        self.escalate = (not replay) if escalate is None else bool(escalate)
        self.full_fallback, self.own_lines = full_fallback, own_lines
        self.cerebro = ReplayCerebro if replay else bt.Cerebro
        self.spot_episodes, self.spot_holds = max(0, int(spot_episodes)), max(0, int(spot_holds))
        self.learn = bool(learn)
        self.all_signals = bool(all_signals)
        self.paths: dict = {}  # i -> the surrogate's positions over the screening period
        self.spot_checked: set = set()  # spot-checked where they were fitted
        self.pool = None  # the episodes before the spot check's windows
        self.thresholds = dict(min_transitions=min_transitions, min_agreement=min_agreement, rate_band=rate_band,
                               max_pnl_gap=max_pnl_gap)
        self.src_start = self.t_start if source_bars is None else max(self.t_start, self.t_stop - int(source_bars))
        self.timings: dict = {}
        self.records: list[dict] = []
        self.plans: list[ConfigPlan | None] = []
        self.models: dict = {}   # i -> fitted surrogate
        self.evidence: dict = {}  # i -> what it learned from its episodes (trust.Evidence)
        self.curves: dict = {}   # name -> screening equity
        self.full_results: dict = {}
        self.escalations = 0
        self.direct_full: list[int] = []
        self.seconds_per_bar: dict = {}  # i -> what its recording cost per Backtrader bar fed

    # -- the stages -------------------------------------------------------------------------
    def run(self, episodes=None) -> PlainScreen:
        executor = current()
        if executor is not None:  # its workers import the fits' modules while this process plans
            executor.warm_up()
        self.plan()
        self.choose_episodes(episodes)
        recordings = self.record_base()
        recordings = self.escalate_untrusted(recordings)
        self.pool = self.eps  # what the surrogates learned from (the spot windows only judge them)
        self.spot_check_trusted()
        self.backtest_in_full()
        return PlainScreen(records=self.records, summary=self.summary(), episodes=self.pool, curves=self.curves,
                           full_results=self.full_results)

    def plan(self) -> None:
        """Each configuration's plan (an error is its record's); the batch's warm-ups and
        episode length; the configurations backtested in full at once (short histories)."""
        t0 = time.perf_counter()
        for config in self.configurations:
            record = {"name": config.name, "strategy": config.strategy.name, "params": dict(config.params),
                      "score": None, "path": None, "trust": None, "error": None}
            self.records.append(record)
            try:
                self.plans.append(plan_configuration(config, own_lines=self.own_lines))
            except Exception as exc:  # noqa: BLE001 - reported per configuration
                record["error"] = f"{config.name}: {first_line(exc, with_type=True)}"
                self.plans.append(None)
        self.live = [i for i, p in enumerate(self.plans) if p is not None]
        warm_needed = max([self.plans[i].warmup for i in self.live] or [10])
        self.episode_warmup = min(warm_needed, DEFAULT_EPISODE_WARMUP)
        self.ep_len = int(self.length or 400)
        self.n_base_wanted = max(1, int(self.base_episodes))
        self.n_pool = max(self.n_base_wanted + self.spot_episodes, int(self.pool_episodes or 0))
        full_warm = full_warmup([self.plans[i] for i in self.live], self.s_start) if self.live else 0
        self.full_bars = (self.s_stop - self.s_start) + full_warm
        self.timings["plan_seconds"] = time.perf_counter() - t0
        # Short histories: when the base episodes of the batch would cost more than
        # ``1 / min_speedup`` of its full backtests, every configuration gets the full backtest
        # (exact, and cheaper than a surrogate that would save less than that).
        if self.min_speedup and self.min_speedup > 0 and self.live:
            cost = sum(self.n_base_wanted * (self.ep_len + min(self.plans[i].warmup, self.episode_warmup))
                       for i in self.live)
            if self.full_bars * len(self.live) < self.min_speedup * cost:
                self.direct_full = list(self.live)
                for i in self.live:
                    self.records[i]["trust"] = {
                        "trusted": False, "reason": f"short history: full backtests ({self.full_bars * len(self.live)} "
                        f"bars) cost less than {self.min_speedup:g}x the base episodes ({cost} bars)"}
        if not self.learn:
            self.direct_full = list(self.live)
            engine = "replayed" if self.cerebro is ReplayCerebro else "backtested in full"
            for i in self.live:
                self.records[i]["trust"] = {"trusted": False, "reason": f"{engine} as asked (no surrogate)"}
        self.surrogate_live = [i for i in self.live if i not in self.direct_full]

    def choose_episodes(self, given=None) -> None:
        """The episodes: ``given`` ``(Episodes, n_base)`` when their warm-up suffices, else
        regime-balanced windows of the training period's last ``source_bars`` candles."""
        t0 = time.perf_counter()
        self.episodes_from = "selected"
        if given is None and not self.surrogate_live:
            self.eps, self.n_base = windows_as_episodes(self.candles, [], length=self.ep_len, warmup=0), 0
        elif given is None:
            self.eps, self.n_base = self._select_episodes()
        else:
            self.eps, self.n_base = given
            self.episodes_from = "given"
            if self.eps.n and int(self.eps.warmup.max()) < self.episode_warmup and self.surrogate_live:
                # too little warm-up for these configurations' indicators: choose them here
                self.episodes_from = (f"selected (the given episodes have {int(self.eps.warmup.max())} warm-up "
                                      f"bars, the configurations need {self.episode_warmup})")
                self.eps, self.n_base = self._select_episodes()
        self.columns = ColumnCache(self.frame, (self.s_start, self.s_stop), self.eps)
        self.timings["episodes_seconds"] = time.perf_counter() - t0

    def _select_episodes(self):
        # window summaries at the batch's shortest, median and longest periods
        all_periods = sorted({p for i in self.live for p in self.plans[i].periods})
        picks = sorted({all_periods[0], all_periods[len(all_periods) // 2], all_periods[-1]}) if all_periods else [20]
        summary_names = ["ret:1", "macd_hist"] + [f"{k}:{p}" for k in KINDS for p in picks]
        return select_episodes(self.candles, start=self.src_start, stop=self.t_stop, length=self.ep_len,
                               warmup=self.episode_warmup, budget_bars=self.n_base_wanted * self.ep_len,
                               pool_factor=self.n_pool / self.n_base_wanted, summary_names=summary_names,
                               seed=self.seed)

    def record_base(self) -> dict:
        """1. Every surrogate configuration on the same base episodes (common random numbers)."""
        base = list(range(self.n_base))
        if self.surrogate_live:
            recs, self.timings["record_seconds"], self.timings["fit_eval_seconds"] = self.record_and_fit(
                [(i, base) for i in self.surrogate_live], "episodes")
        else:
            recs, self.timings["record_seconds"], self.timings["fit_eval_seconds"] = {}, 0.0, 0.0
        self.ok = []
        for i in self.surrogate_live:
            if recs[i].get("error"):
                self.records[i]["error"] = recs[i]["error"]
            else:
                self.ok.append(i)
                self.records[i]["path"] = "surrogate"
        return recs

    def escalate_untrusted(self, recs: dict) -> dict:
        """2. More episodes for what is not trusted yet, chosen over the episode source period
        where the configuration's own surrogate predicts the transitions it has seen too
        rarely (:mod:`.escalation`); refit after each round."""
        t0 = time.perf_counter()
        source = SourceColumns(self.frame, self.src_start, self.t_stop)
        spent = {}  # Backtrader bars each configuration's escalation rounds fed so far
        for round_ in range(self.escalation_rounds if self.escalate else 0):
            # a configuration the fast path cannot model (its reason in trust) gains nothing from more episodes
            pending = [i for i in self.ok if not self.records[i]["trust"].get("trusted")
                       and "reason" not in self.records[i]["trust"]]
            if not pending:
                break
            source.ensure(n for i in pending for n in self.plans[i].bank_features)
            m = len(source)
            # Longer windows each round (holds that outlast a base episode end inside them),
            # about the same bars per round: 2 x length x escalation_episodes.
            L = min(self.ep_len * 2 ** (round_ + 1), max(2, m - self.episode_warmup))
            k_eps = max(1, self.escalation_episodes // 2 ** round_)
            first = min(self.episode_warmup, m - L) if m > L else 0
            w_starts = np.arange(first, m - L + 1, L)  # positions in the source columns
            if not len(w_starts):
                break
            chosen_by = {i: escalation_windows(plan=self.plans[i], model=self.models.get(i),
                                               trust=self.records[i]["trust"], recording=recs[i],
                                               bank_of=self.columns.bank_of(self.plans[i]), episodes=self.eps,
                                               source=source, window_starts=w_starts, length=L, count=k_eps,
                                               min_transitions=self.thresholds["min_transitions"])
                         for i in pending}
            for i in pending:  # escalation never costs more than the full backtest it would spare
                fed = spent.get(i, 0) + len(chosen_by[i]) * (L + self.episode_warmup)
                if chosen_by[i] and fed > self.full_bars:
                    chosen_by[i] = []
                    self.records[i]["trust"]["reason"] = (
                        f"escalation stopped: {fed} Backtrader bars would exceed a full backtest's "
                        f"{self.full_bars}")
                elif chosen_by[i]:
                    spent[i] = fed
            starts_new = sorted({s_ for v in chosen_by.values() for s_ in v})
            if not starts_new:
                break
            at = self.eps.n
            self.eps = self.eps.extended(windows_as_episodes(self.candles, starts_new, length=L,
                                                             warmup=self.episode_warmup,
                                                             regime_names=self.eps.regime_names))
            self.columns.episodes = self.eps
            index_of = {s_: at + k for k, s_ in enumerate(starts_new)}
            jobs = [(i, [index_of[s_] for s_ in chosen_by[i]]) for i in pending if chosen_by[i]]
            log.info("escalation round %d: %d configuration(s) not trusted yet, %d new window(s) of %d bars",
                     round_ + 1, len(pending), len(starts_new), L)
            more, _, _ = self.record_and_fit(jobs, f"escalation {round_ + 1}",
                                             merge=lambda i, rec: merged_recording(recs[i], rec))
            for i, rec in more.items():
                if rec.get("error"):
                    self.records[i]["error"] = rec["error"]
                    continue
                if rec.get("unmodelled"):  # its reason is in its trust: the full backtest follows
                    continue
                recs[i] = rec
                self.records[i]["path"] = "surrogate+escalated"
                self.records[i]["trust"]["escalation_rounds"] = round_ + 1
                self.escalations += 1
        self.ok = [i for i in self.ok if self.records[i]["error"] is None]
        self.timings["escalation_seconds"] = time.perf_counter() - t0
        return recs

    def spot_check_trusted(self) -> None:
        """4. Each trusted surrogate on windows it was not fitted on (``spot_episodes``,
        ``spot_holds``; :func:`~.trust.spot_check`); it stays trusted only if they agree.
        Without escalation each was spot-checked in its fit's job already (where it was
        fitted, as soon as it was: :func:`~.fit_jobs.fit_configuration`); this is for those
        escalation refitted."""
        t0 = time.perf_counter()
        pool = self._spot_pool()
        todo = [i for i in self.ok if self.records[i]["trust"].get("trusted") and i in self.models
                and i not in self.spot_checked]
        jobs = []
        for i in todo:
            starts = self._hold_windows(i)
            at = self.eps.n
            if starts:
                self.eps = self.eps.extended(windows_as_episodes(
                    self.candles, starts, length=self._spot_length(), warmup=self.episode_warmup,
                    regime_names=self.eps.regime_names))
            jobs.append((i, pool + list(range(at, self.eps.n))))
        self.columns.episodes = self.eps
        jobs = [(i, which) for i, which in jobs if which]
        jobs = [(i, dict(jobs)[i]) for i in self._dearest_first([i for i, _ in jobs])]  # their recordings cost most
        if jobs:
            for (i, _), found in zip(jobs, self._on_workers(
                    spot_check_configuration, [(self.plans[i].configuration, which, self.plans[i].warmup,
                                                self.models[i], self.fractions.get(i, self.fraction),
                                                self.flips.get(i), self.units.get(i)) for i, which in jobs],
                    [i for i, _ in jobs], "spot check")):
                self._take_spot_check(self.records[i]["trust"], found)
        self.timings["spot_check_seconds"] = time.perf_counter() - t0

    def _take_spot_check(self, trust: dict, found: dict) -> None:
        """A spot check's signals (:func:`~.fit_jobs.spot_check_configuration`) into a trust,
        judged again (or its reason, when the recording refused the surrogate)."""
        found["bars_fed"] = int(trust.get("bars_fed", 0)) + int(found.get("bars_fed", 0))
        trust.update(found)
        if "reason" not in found:
            _judge(trust, self.thresholds)

    def _spot_pool(self) -> list[int]:
        """The episodes after the base ones that every spot check records (``spot_episodes``)."""
        return list(range(self.n_base, min(self.n_base + self.spot_episodes, self.eps.n)))

    def _spot_length(self) -> int:
        return 2 * self.ep_len

    def _hold_windows(self, i) -> list[int]:
        """Candle positions of windows of the screening period that each start a few bars
        before one of the ``spot_holds`` longest positions configuration ``i``'s walk holds."""
        return hold_window_starts(self.paths.get(i), (self.s_start, self.s_stop), holds=self.spot_holds,
                                  length=self._spot_length(), lead=HOLD_LEAD)

    def _spot_options(self) -> dict | None:
        """What a fit job needs to spot-check its surrogate where it is fitted
        (:func:`~.fit_jobs.fit_configuration`): when nothing comes between the fits and the
        spot checks (no escalation) and there is a spot check; None otherwise."""
        if self.escalate or not (self.spot_episodes or self.spot_holds):
            return None
        return dict(pool=self._spot_pool(), holds=self.spot_holds, length=self._spot_length(), warmup=self.episode_warmup,
                    lead=HOLD_LEAD)

    def backtest_in_full(self) -> None:
        """3. Full backtests: the last resort for what the surrogate could not earn trust on
        (and every configuration of a short history)."""
        still = [i for i in self.ok if not self.records[i]["trust"].get("trusted")] + self.direct_full
        t0 = time.perf_counter()
        if still and (self.full_fallback or self.direct_full):
            todo = still if self.full_fallback else self.direct_full
            order = self._dearest_first(todo)
            log.info("%d configuration(s) get a full backtest (%d short history, %d not trusted after escalation)",
                     len(todo), len(self.direct_full), len(todo) - len(self.direct_full))
            results = dict(zip(order, run_many([self._exact_job(i) for i in order], n_jobs=self.n_jobs,
                                               backend=self.backend, progress=self.progress)))
            for i in todo:
                _take_exact(self.records[i], results[i], self.curves, self.full_results)
        self.timings["full_seconds"] = time.perf_counter() - t0

    def _exact_job(self, i) -> BacktestJob:
        """Configuration ``i``'s exact run over the screening period: the screen's one baseline,
        with a bounded warm-up (:mod:`distillbt.baseline`), replayed or in Backtrader's loop."""
        return BacktestJob(self.plans[i].configuration, self.candles, cash=self.cash, commission=self.commission,
                           start=self.frame.index[self.s_start], end=self.frame.index[self.s_stop - 1],
                           warmup_bars=full_warmup([self.plans[i]], self.s_start), record_equity=True,
                           objective=self.objective, slippage=self.slippage, fraction=self.fraction,
                           cerebro=self.cerebro)

    def _dearest_first(self, todo) -> list:
        """``todo`` by what its recording cost a Backtrader bar, dearest first: the workers then
        finish together, not with one long run started last while the others wait."""
        return sorted(todo, key=lambda i: -self.seconds_per_bar.get(i, 0.0))

    def _record_many(self, jobs_, desc) -> list:
        """``record_many`` of ``(i, episodes)`` jobs on the executor's workers."""
        return record_many([(self.plans[i].configuration, which, self.plans[i].warmup) for i, which in jobs_],
                           self.eps, cash=self.cash, commission=self.commission, timeframe=self.candles.timeframe,
                           n_jobs=self.n_jobs, backend=self.backend, progress=self.progress, desc=desc,
                           slippage=self.slippage, fraction=self.fraction)

    # -- recording and fitting --------------------------------------------------------------
    def record_and_fit(self, jobs_, desc, merge=None):
        """Record ``(i, episodes)`` jobs on the executor's workers, then fit and evaluate each
        configuration there too (:mod:`.fit_jobs`: the fits are mostly Python, which threads of
        this process would run one at a time), or in this process with one worker or the
        threading backend. ``merge(i, recording)`` combines a new recording with what ``i``
        had. Writes scores, trust and curves; returns ``{i: recording}`` and the seconds of
        both steps."""
        t0 = time.perf_counter()
        out = self._record_many([(i, which) for i, which in jobs_], desc)
        arrived = {i: rec if rec.get("error") or merge is None else merge(i, rec) for (i, _), rec in zip(jobs_, out)}
        for (i, _), rec in zip(jobs_, out):
            if not rec.get("error") and rec.get("bars_fed"):
                self.seconds_per_bar[i] = float(rec["seconds"]) / int(rec["bars_fed"])
        for i, rec in arrived.items():
            own = self.plans[i].own
            unread = [n for n in priced_lines(rec.get("protection"), rec.get("entry"))
                      if n not in FEED_PRICES and (own is None or n not in own.line_names)]
            if unread and not rec.get("unmodelled"):
                rec["unmodelled"] = (f"{self.plans[i].configuration.name}: orders priced from "
                                     f"{', '.join(unread)}, a line the fast path does not compute")
            if rec.get("unmodelled"):  # orders no rule prices…: its replay or full backtest scores it
                self.records[i].update(score=None, trust={"trusted": False, "reason": rec["unmodelled"]})
                self.models.pop(i, None)
        t1 = time.perf_counter()
        todo = [(i, rec) for i, rec in arrived.items()
                if not rec.get("error") and not rec.get("unmodelled") and self._sizing_mirrored(i, rec)]
        self.flips.update((i, rec.get("flips")) for i, rec in todo)
        for i, rec in todo:
            if rec.get("units") is not None:  # filled in its units; the P&L gaps weigh a position at its median share
                self.units[i], self.fractions[i] = rec["units"], rec["entry_share"]
        fitted = self._fit_many(todo)
        for i, score, trust, extra, spot in fitted:
            _judge(trust, self.thresholds)
            for rule in ("protection", "entry"):  # what its fills were priced by, for the reader
                if arrived[i].get(rule) is not None:
                    trust[rule] = arrived[i][rule].describe()
            if arrived[i].get("units") is not None:  # and sized by
                trust["units"] = arrived[i]["units"]
            if spot is not None:  # spot-checked where it was fitted (fit_jobs.fit_configuration)
                self._take_spot_check(trust, spot)
                self.spot_checked.add(i)
            self.records[i].update(score=score, trust=trust)
            if extra is not None:
                self.models[i], self.evidence[i], self.paths[i] = extra[0], extra[2], extra[3]
                if extra[1] is not None:
                    self.curves[self.plans[i].configuration.name] = extra[1]
                else:
                    self.curves.pop(self.plans[i].configuration.name, None)
            else:
                self.models.pop(i, None)
        return arrived, t1 - t0, time.perf_counter() - t1

    def _sizing_mirrored(self, i, rec) -> bool:
        """Whether the surrogate can size like the strategy: the shared sizer, its own
        ``PercentSizer``/``AllInSizer`` (mirrored as its share of equity), or positions of one
        fixed number of units whatever sizes them (a ``FixedSize`` sizer). Any other sizer of
        its own sends the configuration to a full backtest, the reason in its trust."""
        own = rec.get("own_sizer")
        if own is None or rec.get("units") is not None:  # (a rounding sizer's are no fixed units: recorder.fixed_units)
            return True
        percents = {"PercentSizer": own["params"].get("percents"), "AllInSizer": own["params"].get("percents", 100)}
        share = percents.get(own["class"])
        if share is not None and own["params"].get("retint") in (None, False) and 0 < float(share) <= 100:
            self.fractions[i] = float(share) / 100.0
            return True
        self.records[i].update(score=None, trust={
            "trusted": False, "reason": f"own sizer {own['class']}({own['params']}) is not modelled on the fast path",
            "episodes": len(rec["episodes"]), "bars_fed": int(rec.get("bars_fed", 0))})
        self.models.pop(i, None)
        return False

    def _fit_many(self, todo) -> list:
        """``(i, score, trust, found, spot)`` of each ``(i, recording)`` in ``todo``
        (:func:`~.fit_jobs.fit_configuration`), in ``todo``'s order (they run dearest first)."""
        order = sorted(todo, key=lambda job: -_fit_cost(job[1]))  # dearest first: see _dearest_first
        jobs = [(self.plans[i].configuration, rec, self.fractions.get(i, self.fraction), self.flips.get(i))
                for i, rec in order]
        out = dict(zip((i for i, _ in order), self._on_workers(fit_configuration, jobs, [i for i, _ in order], "fits")))
        return [(i, *out[i]) for i, _ in todo]

    def _on_workers(self, function, jobs, configurations, desc) -> list:
        """``function(*job, batch=…)`` (:mod:`.fit_jobs`) for each job, configuration
        ``configurations[k]``'s: on the executor's worker processes (loky or Dask, more than
        one), else in this process with the batch's own plans and columns."""
        executor = current()  # the executor parallel_api entered
        batch = self._fit_batch()
        if len(jobs) > 1 and executor.backend in ("loky", "dask") and executor.workers > 1:
            return executor.map(function, jobs, kwargs={"batch": batch}, desc=desc, unit="configuration",
                                progress=self.progress, leave=False)
        batch.columns = self.columns
        return executor.thread_map(lambda job, i: function(*job, batch=batch, plan=self.plans[i]),
                                   list(zip(jobs, configurations)))

    def _fit_batch(self) -> FitBatch:
        """What every fit reads (:class:`~.fit_jobs.FitBatch`): the candles from as far back as
        the screening period's columns need, the episodes so far and the options."""
        spot = self._spot_options()
        lead = full_warmup([self.plans[i] for i in self.live], self.s_start) if self.live else 0
        if spot is not None:  # the spot windows' warm-up too (columns start from the same bar either way)
            lead = min(self.s_start, max(lead, self.episode_warmup))
        frame = self.frame.iloc[self.s_start - lead:self.s_stop]
        options = dict(max_depth=self.max_depth, seed=self.seed, commission=self.commission, cash=self.cash,
                       slippage=self.slippage, objective=self.objective,
                       thresholds=None if self.all_signals else self.thresholds, screen_bars=self._unwalked_bars(),
                       give_up=self.full_fallback and not self.escalate,
                       bars_per_year=bars_per_year(self.candles.timeframe, self.frame.index),
                       timeframe=self.candles.timeframe, fraction=self.fraction, judge=self.thresholds, spot=spot)
        return FitBatch(frame, (lead, lead + self.s_stop - self.s_start), self.eps, options, own_lines=self.own_lines)

    def _fills(self, i, bars) -> Fills:
        """Configuration ``i``'s orders filled over ``bars`` as its strategy's are: sized as
        its sizer sizes them, its flips as recorded, and after an opening dropped for cash the
        target ordered again from flat (:func:`~.trust.settled_walk` settles the walk on them)."""
        return Fills(bars, cash=self.cash, commission=self.commission, start_index=0,
                      fraction=self.fractions.get(i, self.fraction), slippage=self.slippage,
                      reversal=self.flips.get(i) or "value", reissue=True, units=self.units.get(i))

    def _unwalked_bars(self) -> int | None:
        """The screening period's length when a configuration its episodes fail need not be
        walked over it (:func:`~.trust.walk_and_trust`): its full backtest or replay follows
        (``full_fallback``) and its score is that one's. None: walk every configuration."""
        return self.s_stop - self.s_start if self.full_fallback else None

    # -- another instrument ------------------------------------------------------------------
    def walk_on(self, candles, screen: tuple[int, int]) -> PlainScreen:
        """The batch's surrogates, learned on this instrument's episodes, walked over another
        instrument's screening period ``candles[screen[0]:screen[1]]`` (a basket: the strategy's
        rule is the same whatever the market). Each configuration is judged again there — the
        transitions its walk relies on, its exit rates and threshold gap on that walk, its
        episodes' agreement and P&L gap (:func:`~.trust.walk_and_trust`) — and backtested in
        full on that instrument when it is not trusted there, or was not here. Call after
        :meth:`run`."""
        began = time.perf_counter()
        frame = candles.frame
        s_start, s_stop = (int(x) for x in screen)
        columns = ColumnCache(frame, (s_start, s_stop), self.eps)
        bars = {k: frame[k].to_numpy()[s_start:s_stop] for k in ("open", "high", "low", "close")}
        per_year = bars_per_year(candles.timeframe, frame.index)
        records = [{**r, "score": None, "trust": None} for r in self.records]
        walkable = [i for i in self.ok if self.records[i]["error"] is None and self.records[i]["trust"].get("trusted")
                    and i in self.models and i in self.evidence]

        def walk(i):
            fills = self._fills(i, bars)
            try:
                path, trust = walk_and_trust(self.models[i], self.plans[i], self.evidence[i],
                                             columns.screen_columns_of(self.plans[i]),
                                             screen_trade=columns.screen_trade_of(
                                                 self.plans[i], priced_lines(self.models[i].protection,
                                                                             self.models[i].entry)),
                                             commission=self.commission, fraction=self.fractions.get(i, self.fraction),
                                             thresholds=None if self.all_signals else self.thresholds,
                                             screen_bars=s_stop - s_start, fill=fills)
            except Exception as exc:  # noqa: BLE001 - this instrument's full backtest decides
                return i, None, {"trusted": False, "error": f"{type(exc).__name__}: {exc}"}, None
            _judge(trust, self.thresholds)
            if path is None:  # its episodes fail it here: this instrument's full backtest scores it
                return i, None, trust, None
            equity = fills(path)["equity"]
            return i, objective_score(self.objective, equity, cash=self.cash, bars_per_year=per_year), trust, equity

        curves, full_results = {}, {}
        for i, score, trust, equity in current().thread_map(walk, [(i,) for i in walkable]):
            # what its fills were priced and sized by, as here
            carried = {k: v for k, v in self.records[i]["trust"].items() if k in ("protection", "entry", "units")}
            records[i].update(score=score, trust={**trust, **carried, "walked_from": self.candles.symbol})
            if trust.get("trusted"):
                records[i]["path"] = self.records[i]["path"]
                curves[records[i]["name"]] = equity
        walk_seconds = time.perf_counter() - began
        todo = [i for i in self.live if records[i]["error"] is None and records[i]["name"] not in curves]
        if todo:
            jobs = [BacktestJob(self.plans[i].configuration, candles, cash=self.cash, commission=self.commission,
                                start=frame.index[s_start], end=frame.index[s_stop - 1],
                                warmup_bars=full_warmup([self.plans[i]], s_start), record_equity=True,
                                objective=self.objective, slippage=self.slippage, fraction=self.fraction,
                                cerebro=self.cerebro)
                    for i in todo]
            for i, res in zip(todo, run_many(jobs, n_jobs=self.n_jobs, backend=self.backend, progress=self.progress)):
                _take_exact(records[i], res, curves, full_results)
        paths = [r["path"] for r in records if r["error"] is None]
        summary = {"walked_from": self.candles.symbol, "walk_seconds": walk_seconds,
                   "full_seconds": time.perf_counter() - began - walk_seconds,
                   "paths": {p: paths.count(p) for p in PLAIN_PATHS}}
        return PlainScreen(records=records, summary=summary, episodes=self.pool, curves=curves,
                           full_results=full_results)

    # -- the summary ------------------------------------------------------------------------
    def summary(self) -> dict:
        records, eps, n_base = self.records, self.eps if self.pool is None else self.pool, self.n_base
        paths = [r["path"] for r in records if r["error"] is None]
        agreements = [r["trust"]["agreement"] for r in records
                      if r["trust"] and r["trust"].get("agreement") is not None]
        coverages = [r["trust"]["coverage"] for r in records if r["trust"] and r["trust"].get("coverage") is not None]
        fed = sum(int((r["trust"] or {}).get("bars_fed", 0)) for r in records)
        return {
            "episodes": eps.n, "base_episodes": n_base, "episodes_from": self.episodes_from,
            "episode_length": int(eps.length[0]) if eps.n else 0,
            "episode_warmup": self.episode_warmup, "base_bars": int(eps.length[:n_base].sum()),
            "base_share": float(eps.length[:n_base].sum() / len(self.frame)),
            "screen_columns": self.columns.screen_size, "episode_source": [int(self.src_start), int(self.t_stop)],
            "paths": {p: paths.count(p) for p in PLAIN_PATHS},
            "direct_full": len(self.direct_full), "escalations": self.escalations, "bars_fed": int(fed),
            "full_bars_per_configuration": int(self.full_bars),
            "errors": sum(1 for r in records if r["error"]),
            "agreement": ({"min": float(np.min(agreements)), "q10": float(np.quantile(agreements, 0.1)),
                           "q25": float(np.quantile(agreements, 0.25)), "median": float(np.median(agreements)),
                           "max": float(np.max(agreements)), "n": len(agreements)} if agreements else None),
            "coverage": ({"min": int(np.min(coverages)), "median": float(np.median(coverages)),
                          "max": int(np.max(coverages))} if coverages else None),
            # the phases one after the other
            "surrogate_seconds": sum(v for k, v in self.timings.items() if k != "full_seconds"),
            **self.timings, "total_seconds": time.perf_counter() - self.began,
            "regimes": list(eps.regime_names),
        }
