"""Screen plain Backtrader strategies with learned surrogates; escalate what cannot be trusted.

::

    out = screen_plain(configurations, candles, train=(0, 250_000), screen=(250_000, 400_000),
                       seed=0, n_jobs=2)          # base_episodes=6, length=400: a fixed budget
    out.records[0]   # {"name", "score", "path": "surrogate" | "surrogate+escalated" | "full",
                     #  "trust": {...}, "error"}
    out.summary      # seconds of each phase, episode budget, counts per path

Per configuration (docs/design.md §6 has the measurements this follows):

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
   fills, commission and sizing;
5. **trust**: ``coverage`` — the fewest transitions seen out of any state the walk holds and
   into any state it enters; ``agreement`` on held-out quarters (the last three of every
   episode, each walked by a tree fitted on the rest); ``rate_ratio`` — how often the walk leaves a
   state compared with the episodes (a surrogate that never exits shows up here);
   ``pnl_gap`` — what the held-out walks' mistakes cost or earned against the real positions,
   scaled to the screening period's length, and ``threshold_gap`` — how much the screen's
   score moves when each split the data cannot place exactly goes to either end of the gap
   its training values leave (both in log-return units: estimates of the score's error).
   Below ``min_transitions``, below ``min_agreement``, with a rate ratio outside
   ``[1/rate_band, rate_band]`` or a gap above ``max_pnl_gap``: the configuration is
   **escalated** — new windows of the training period, longer each round,
   chosen where its own surrogate predicts the transitions it saw too rarely (or where its
   columns leave the range its episodes showed), recorded and refitted — and if it still
   falls short after ``escalation_rounds``, it gets a **full backtest** of the screening
   period (counted in the time). When the batch's base episodes would cost more than
   ``1 / min_speedup`` of its full backtests (short histories), all of it is backtested in full.

The default thresholds (``min_transitions=3, min_agreement=0.998, rate_band=3,
max_pnl_gap=0.1``) are the cheapest of a grid that kept the share of trusted configurations
more than 0.05 (log return) from their full backtest at ≤ 5 % on strategies written for the
purpose (``benchmarks/bench_trust.py --calibrate``; 41 configurations, sample market 300k
candles, seeds 0–2, 4/6/12 base episodes: 49 % trusted, 2.8 % of them off by more). The
held-out agreement and gaps carry the decision (a proxy rule — a WMA cross learnt on SMA
columns — agrees on ≈ 0.9 of held-out bars; a split placed loosely agrees on 0.997–0.999 and
only the gap sees it); coverage and the rate band cost nothing there and are kept as a net.
``--check`` measures the thresholds on a second, different set.

Every record says which path its score came from.
"""

from __future__ import annotations

import copy
import inspect
import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..backtest import BacktestJob, run_many
from ..errors import InputError, first_line
from ..executor import current, parallel_api
from ..vectorised import simulate
from ..distill.episodes import DEFAULT_EPISODE_WARMUP, Episodes, select_episodes, windows_as_episodes
from ..indicators import (KINDS, ZERO_CENTRED, IndicatorBank, bank_warmup, feature_names_for, periods_of,
                         thresholds_of)
from .model import PositionSurrogate
from .recorder import NO_LABEL, record_many

__all__ = ["screen_plain", "PlainScreen", "ConfigPlan", "plan_configuration", "successive_halving",
           "DEFAULT_PERIODS", "full_warmup"]

DEFAULT_PERIODS = (5, 10, 14, 20, 50, 100, 200)

log = logging.getLogger(__name__)


@dataclass
class ConfigPlan:
    """What the surrogate of one configuration needs: periods, bank columns, warm-up."""

    configuration: object
    periods: list
    features: list
    thresholds: list
    warmup: int


@dataclass
class PlainScreen:
    records: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    episodes: Episodes | None = None
    curves: dict = field(default_factory=dict)  # name -> equity over the screening period
    full_results: dict = field(default_factory=dict)  # name -> run_many result of full backtests


def _all_params(cls, params) -> dict:
    merged = dict(cls.params._getitems()) if hasattr(cls.params, "_getitems") else {}
    merged.update(params)
    return merged


def plan_configuration(configuration) -> ConfigPlan:
    """Periods (parameters + source literals), bank columns and warm-up of one configuration."""
    cls = configuration.strategy.cls
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        source = None
    params = _all_params(cls, configuration.params)
    periods = periods_of(params, source) or list(DEFAULT_PERIODS)
    # The longest window + 10 bars: every indicator is defined at the first scored bar. EMA-type
    # ones (RSI, EMA) are still converging there, but the episode's bank columns are computed
    # from the same first bar as the strategy's feed, so what it saw is what the tree learns
    # from; the thresholds transfer to the converged columns of the screening period.
    warmup = max(periods) + 10
    return ConfigPlan(configuration, periods, feature_names_for(periods), thresholds_of(params), warmup)


def full_warmup(plans, start: int) -> int:
    """Warm-up bars for full backtests: every column converged (10x the longest window, at
    least 200), never more than exist. The screen's default feeds the whole training period;
    the result is the same once indicators have converged, and this is the faster baseline."""
    names = [n for p in plans for n in p.features]
    return min(start, bank_warmup(names))


def _snap_candidates(names, thresholds) -> dict:
    out = {}
    levels = sorted(set(thresholds) | set(float(x) for x in range(5, 100, 5)))
    for j, name in enumerate(names):
        base = name[5:-1] if name.startswith("lag1(") else name[6:-1] if name.startswith("cross(") else name
        kind = base.split(":")[0]
        if kind in ZERO_CENTRED:
            cands = [0.0]
            if kind == "bb_z":
                cands += [v for t in thresholds if 0 < abs(t) <= 5 for v in (t, -t)]
            out[j] = cands
        elif kind == "rsi":
            out[j] = [v for v in levels if 0 < v < 100]
    return out


def _training_rows(rec, episode_bank, columns, which, part=slice(None)):
    """Stack (features, state) → target over the episodes ``which`` of one recording, over
    the bars ``part`` (a slice, or a function of the episode length giving one)."""
    X, y = [], []
    pos = {e: k for k, e in enumerate(rec["episodes"])}
    for e in which:
        k = pos[e]
        sl = part(len(rec["state"][k])) if callable(part) else part
        st, tg = rec["state"][k][sl], rec["target"][k][sl]
        F = episode_bank[e][sl][:, columns]
        ok = (tg != NO_LABEL) & ~np.isnan(F).any(axis=1)
        X.append(np.column_stack([F[ok], st[ok].astype(np.float32)]))
        y.append(tg[ok])
    return np.concatenate(X), np.concatenate(y)


def _transitions(state, target, states):
    out = {}
    for s in states:
        out[float(s)] = {"out": int(np.sum((state == s) & (target != s))),
                         "into": int(np.sum((state != s) & (target == s))),
                         "bars": int(np.sum(state == s))}
    return out


def _used_columns(model) -> list[int]:
    """Bank columns (not the state) the fitted tree splits on."""
    t = model.tree_.tree_
    f = t.feature[t.children_left >= 0]
    return sorted(set(int(j) for j in f if j != model.n_features_in_ - 1))


def _fit_and_trust(rec, plan, bank_of, screen_columns, *, max_depth, seed, commission=0.001, fraction=0.95,
                   folds=3):
    """Fit on held-in bars, agreement and P&L gap on held-out ones, refit on all; coverage
    and rates.

    ``bank_of(e)`` is episode ``e``'s bank (this configuration's columns, computed from the
    bar its own feed started at); ``screen_columns(names)`` the screening period's columns.
    Held out: the last three quarters of every episode are cut in ``folds`` blocks; fold ``k``
    fits on everything but block ``k`` and walks block ``k`` of every episode from the state
    the strategy really held there. The first quarter is always fitted on: an episode starts
    flat with its indicators already set (an event strategy waits for the next cross), a
    situation the screening period shows once and a tree never shown it would fail on. ``agreement`` is the share of held-out bars whose position the walks got
    right; ``pnl_gap`` what the walks' mistakes would have cost or earned — per held-out bar
    ``fraction × (walk − real) × next bar's return``, minus the commission of the trades only
    one of them made — summed per block and scaled to the screening period's length as a
    random walk (``sqrt(Σ block² × screen bars / held-out bars)``, log-return units: the
    error the screen's score would carry); ``pnl_bias`` the same sum scaled linearly (a
    systematic gap)."""
    cands = _snap_candidates(plan.features, plan.thresholds)
    model_kw = dict(max_depth=max_depth, snap_candidates=cands, random_state=seed)
    recorded = list(rec["episodes"])
    banks = {e: bank_of(e) for e in recorded}
    cols = list(range(len(plan.features)))
    ret_col = plan.features.index("ret:1") if "ret:1" in plan.features else None
    lengths = [len(rec["state"][k]) for k in range(len(recorded))]

    def block(n, k):
        edges = np.linspace(n // 4, n, folds + 1).round().astype(int)
        return slice(int(edges[k]), int(edges[k + 1]))

    agreement, hits, seen_bars, sums, n_held = None, 0, 0, [], 0
    for k in range(folds):
        X, y = [], []
        for e_i, e in enumerate(recorded):
            n = lengths[e_i]
            out_ = block(n, k)
            keep = np.ones(n, dtype=bool)
            keep[out_] = False
            Xe, ye = _training_rows(rec, banks, cols, [e], lambda _n, keep=keep: keep)
            X.append(Xe)
            y.append(ye)
        X, y = np.concatenate(X), np.concatenate(y)
        if len(y) == 0 or len(np.unique(y)) < 2:
            continue
        m = PositionSurrogate(**model_kw).fit(X, y)
        sls = [block(n, k) for n in lengths]
        F = np.concatenate([banks[e][sl] for e, sl in zip(recorded, sls)])
        starts = np.cumsum([0] + [sl.stop - sl.start for sl in sls[:-1]])
        first_states = [float(rec["state"][j][sl][0]) if sl.stop > sl.start else 0.0 for j, sl in enumerate(sls)]
        walk = m.walk(F, restarts=dict(zip(starts.tolist(), first_states)))
        at = 0
        for j, (e, sl) in enumerate(zip(recorded, sls)):
            w = walk[at:at + sl.stop - sl.start]
            at += sl.stop - sl.start
            if not len(w):
                continue
            tg = rec["target"][j][sl].astype(np.float64)
            st = rec["state"][j][sl].astype(np.float64)
            ok = tg != NO_LABEL
            hits += int(np.sum(w[ok] == tg[ok]))
            seen_bars += int(ok.sum())
            if ret_col is None:
                continue
            r_all = banks[e][:, ret_col].astype(np.float64)
            r_next = np.concatenate((r_all[1:], [0.0]))[sl]
            r_next = np.nan_to_num(r_next)
            tg_ok = np.where(ok, tg, w)
            w_prev = np.concatenate(([st[0]], w[:-1]))
            d = fraction * (w - tg_ok) * r_next
            d -= commission * fraction * (np.abs(w - w_prev) - np.abs(tg_ok - st))
            sums.append(float(d.sum()))
            n_held += len(w)
    if seen_bars:
        agreement = hits / seen_bars
    X, y = _training_rows(rec, banks, cols, recorded)
    model = PositionSurrogate(**model_kw).fit(X, y)
    used = _used_columns(model)
    F = screen_columns([plan.features[j] for j in used], len(plan.features), used)
    path = model.walk(F, start_state=0.0)
    n_screen = len(path)
    if sums and n_held:
        sums_ = np.asarray(sums)
        pnl_gap = float(math.sqrt(float(np.sum(sums_ ** 2)) * n_screen / n_held))
        pnl_bias = float(abs(sums_.sum()) * n_screen / n_held)
    else:
        pnl_gap = pnl_bias = None
    threshold_gap = _threshold_gap(model, X, cands, F, path, screen_columns, commission=commission,
                                   fraction=fraction) if ret_col is not None else None
    seen = _transitions(X[:, -1], y, model.states_)
    prev = np.concatenate(([0.0], path[:-1]))
    walked = _transitions(prev, path, model.states_)
    relied = sorted(set(np.unique(path).tolist()) | {0.0})
    # The transitions the walk relies on: out of every state it holds (it must know how to
    # leave, even if it never does: "never exits"), into every state it enters. Flat before
    # the first entry is not entered (an always-in strategy never returns to it).
    needed = [seen[s]["out"] for s in relied] + [seen[s]["into"] for s in relied if walked[s]["into"]]
    coverage = min(needed) if len(relied) > 1 else \
        min(seen[0.0]["out"], seen[0.0]["into"]) if seen[0.0]["out"] else 0
    ratios = []
    for s in relied:
        ep_rate = seen[s]["out"] / seen[s]["bars"] if seen[s]["bars"] else 0.0
        walk_rate = walked[s]["out"] / walked[s]["bars"] if walked[s]["bars"] else 0.0
        if ep_rate > 0:
            ratios.append(walk_rate / ep_rate)
    trust = {"coverage": int(coverage), "agreement": agreement,
             "rate_ratio": min(ratios) if ratios else None,
             "rate_ratio_max": max(ratios) if ratios else None,
             "pnl_gap": pnl_gap, "pnl_bias": pnl_bias, "threshold_gap": threshold_gap,
             "heldout_bars": int(n_held),
             "exposure_episodes": float(np.mean(y != 0)) if len(y) else None,
             "exposure_walk": float(np.mean(path != 0)) if n_screen else None,
             "episodes": len(recorded), "training_bars": int(len(y)), "bars_fed": int(rec.get("bars_fed", 0)),
             "transitions": {str(int(s)): v for s, v in seen.items()},
             "depth": int(model.tree_.get_depth()), "leaves": int(model.tree_.get_n_leaves()),
             "snapped": int(model.snapped_), "features_used": [plan.features[j] for j in used]}
    return model, path, trust


def _pnl_difference(a, b, r_next, *, commission, fraction) -> float:
    """What holding ``a`` instead of ``b`` (targets per bar) earns, approximately, in log
    return: ``fraction × (a − b) × next bar's return`` minus the extra commission."""
    da = np.abs(np.diff(a, prepend=0.0))
    db = np.abs(np.diff(b, prepend=0.0))
    return float(np.sum(fraction * (a - b) * r_next) - commission * fraction * np.sum(da - db))


def _threshold_gap(model, X, cands, F, path, screen_columns, *, commission, fraction):
    """How much the screen's score depends on where, inside the gap its training values
    leave open, each split threshold lies. A split the data cannot place exactly (no natural
    boundary was snapped to) is moved to either end of its gap — the training predictions
    are the same — and the screen walked again: the largest difference in (approximate) P&L,
    log-return units. 0 when every split is snapped or the walks agree."""
    t = model.tree_.tree_
    state_col = X.shape[1] - 1
    internal = np.flatnonzero(t.children_left >= 0)
    nodes = []
    Xf = np.nan_to_num(X, nan=0.0).astype(np.float32)
    reach = None
    for node in internal:
        f = int(t.feature[node])
        if f == state_col:
            continue
        thr = float(t.threshold[node])
        if any(abs(thr - c) < 1e-12 for c in cands.get(f, ())):
            continue  # snapped to the column's natural boundary
        if reach is None:
            reach = model.tree_.decision_path(Xf).tocsc()
        rows = reach.indices[reach.indptr[node]:reach.indptr[node + 1]]
        vals = Xf[rows, f]
        left, right = vals[vals <= thr], vals[vals > thr]
        if not len(left) or not len(right):
            continue
        nodes.append((node, float(left.max()), float(np.nextafter(np.float32(right.min()), np.float32(-np.inf)))))
    if not nodes:
        return 0.0
    r = screen_columns(["ret:1"], 1, [0])[:, 0].astype(np.float64)
    r_next = np.nan_to_num(np.concatenate((r[1:], [0.0])))
    gap = 0.0
    for end in (1, 2):
        alt = copy.deepcopy(model)
        for node, lo, hi in nodes:
            alt.walk_tree_.threshold[node] = (lo, hi)[end - 1]
        other = alt.walk(F, start_state=0.0)
        if not np.array_equal(other, path):
            gap = max(gap, abs(_pnl_difference(other, path, r_next, commission=commission, fraction=fraction)))
    return gap


def _trusted(trust, *, min_transitions, min_agreement, rate_band, max_pnl_gap=math.inf) -> bool:
    if trust["coverage"] < min_transitions:
        return False
    if trust["agreement"] is not None and trust["agreement"] < min_agreement:
        return False
    lo, hi = trust["rate_ratio"], trust["rate_ratio_max"]
    if lo is not None and (lo < 1.0 / rate_band or hi > rate_band):
        return False
    gaps = [g for g in (trust.get("pnl_gap"), trust.get("threshold_gap")) if g is not None]
    if gaps and max(gaps) > max_pnl_gap:
        return False
    return True


def _deficits(trust, min_transitions) -> list[tuple[float, str]]:
    """(state, "out" | "into") pairs seen fewer than ``min_transitions`` times (all of them
    when none is short: the configuration failed on agreement or rates)."""
    tr = trust.get("transitions") or {}
    short = [(float(s), k) for s, v in tr.items() for k in ("out", "into") if v[k] < min_transitions]
    if not short:
        short = [(float(s), k) for s in tr for k in ("out", "into")]
    return short or [(0.0, "out"), (0.0, "into")]


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
    escalate: bool = True,
    full_fallback: bool = True,
    episodes: tuple[Episodes, int] | None = None,
    progress: bool = True,
) -> PlainScreen:
    """Score plain configurations on ``candles[screen[0]:screen[1]]`` (see the module).

    ``train`` and ``screen`` are ``(start, stop)`` candle positions; episodes come from the
    last ``source_bars`` candles of ``train`` (None: all of it). The episode budget is fixed,
    not a share of history: ``base_episodes`` windows of ``length`` scored bars (default 400)
    for every configuration (the same ones: common random numbers), each with the warm-up its
    configuration needs (its longest window + 10 bars), in a chosen pool of ``pool_episodes``
    (at least the base ones; ``PlainScreen.episodes`` holds them, e.g. for
    :func:`successive_halving`). Escalation chooses its own windows: up to
    ``escalation_rounds`` rounds of ``escalation_episodes`` windows (fewer and longer each
    round), where the configuration's own surrogate predicts the transitions it has seen too
    rarely. When the batch's base episodes would cost more than ``1 / min_speedup`` of its
    full backtests (short histories), every configuration gets the full backtest directly
    (``min_speedup=0``: always try the surrogate).
    ``episodes``: a ``(Episodes, n_base)`` pair made earlier (e.g. stored with a distilled set,
    ``distill --episodes``); chosen here all the same when their warm-up is shorter than the
    configurations need (``summary["episodes_from"]`` says which).
    """
    began = time.perf_counter()
    configurations = list(configurations)
    frame = candles.frame
    s_start, s_stop = (int(x) for x in screen)
    t_start, t_stop = (int(x) for x in train)
    if not (0 <= t_start < t_stop <= s_start < s_stop <= len(frame)):
        raise InputError(f"periods must be ordered inside the candles: train {train}, screen {screen}")
    timings = {}

    t0 = time.perf_counter()
    plans, records = [], []
    for config in configurations:
        record = {"name": config.name, "strategy": config.strategy.name, "params": dict(config.params),
                  "score": None, "path": None, "trust": None, "error": None}
        records.append(record)
        try:
            plans.append(plan_configuration(config))
        except Exception as exc:  # noqa: BLE001 - reported per configuration
            record["error"] = f"{config.name}: {first_line(exc, with_type=True)}"
            plans.append(None)
    live = [i for i, p in enumerate(plans) if p is not None]
    warm_needed = max([plans[i].warmup for i in live] or [10])
    episode_warmup = min(warm_needed, DEFAULT_EPISODE_WARMUP)
    ep_len = int(length or 400)
    n_base_wanted = max(1, int(base_episodes))
    n_pool = max(n_base_wanted, int(pool_episodes or 0))
    full_warm = full_warmup([plans[i] for i in live], s_start) if live else 0
    full_bars = (s_stop - s_start) + full_warm

    # Screening-period columns, computed on demand (only those some tree splits on) and shared.
    screen_cache: dict = {}
    n_screen = s_stop - s_start

    def screen_columns(names_used, width, positions):
        F = np.zeros((n_screen, width), dtype=np.float32, order="F")
        for name, j in zip(names_used, positions):
            if name not in screen_cache:
                lead = min(s_start, bank_warmup([name]))
                screen_cache[name] = IndicatorBank([name]).transform(
                    {k: frame[k].to_numpy()[s_start - lead:s_stop] for k in ("high", "low", "close")})[lead:, 0]
            F[:, j] = screen_cache[name]
        return F
    timings["plan_seconds"] = time.perf_counter() - t0

    # Short histories: when the base episodes of the batch would cost more than
    # ``1 / min_speedup`` of its full backtests, every configuration gets the full backtest
    # (exact, and cheaper than a surrogate that would save less than that).
    direct_full = []
    if min_speedup and min_speedup > 0 and live:
        cost = sum(n_base_wanted * (ep_len + min(plans[i].warmup, episode_warmup)) for i in live)
        if full_bars * len(live) < min_speedup * cost:
            direct_full = list(live)
            for i in live:
                records[i]["trust"] = {"trusted": False, "reason": f"short history: full backtests "
                                       f"({full_bars * len(live)} bars) cost less than {min_speedup:g}x the "
                                       f"base episodes ({cost} bars)"}
    surrogate_live = [i for i in live if i not in direct_full]

    # Episodes from the training period (its last ``source_bars`` candles).
    t0 = time.perf_counter()
    src_start = t_start if source_bars is None else max(t_start, t_stop - int(source_bars))

    def choose_episodes():
        # window summaries at the batch's shortest, median and longest periods
        all_periods = sorted({p for i in live for p in plans[i].periods})
        picks = sorted({all_periods[0], all_periods[len(all_periods) // 2], all_periods[-1]}) if all_periods else [20]
        summary_names = ["ret:1", "macd_hist"] + [f"{k}:{p}" for k in KINDS for p in picks]
        return select_episodes(candles, start=src_start, stop=t_stop, length=ep_len, warmup=episode_warmup,
                               budget_bars=n_base_wanted * ep_len, pool_factor=n_pool / n_base_wanted,
                               summary_names=summary_names, seed=seed)

    episodes_from = "selected"
    if episodes is None and not surrogate_live:
        eps, n_base = windows_as_episodes(candles, [], length=ep_len, warmup=0), 0
    elif episodes is None:
        eps, n_base = choose_episodes()
    else:
        eps, n_base = episodes
        episodes_from = "given"
        if eps.n and int(eps.warmup.max()) < episode_warmup and surrogate_live:
            # too little warm-up for these configurations' indicators: choose them here
            episodes_from = (f"selected (the given episodes have {int(eps.warmup.max())} warm-up bars, "
                             f"the configurations need {episode_warmup})")
            eps, n_base = choose_episodes()
    timings["episodes_seconds"] = time.perf_counter() - t0

    bank_cache: dict = {}

    def episode_bank(e, warmup, features):
        """Episode ``e``'s columns ``features``, computed from the first bar a configuration
        with ``warmup`` bars was fed, so they are what its indicators saw. Columns are cached
        per (episode, warm-up) and computed on first request only."""
        columns = bank_cache.setdefault((e, int(warmup)), {})
        missing = [n for n in features if n not in columns]
        if missing:
            r = eps.rows(e)
            sw = int(eps.warmup[e])
            w = min(int(warmup), sw)
            ohlcv = eps.ohlcv[r.start + sw - w:r.stop]
            values = IndicatorBank(missing).transform({"high": ohlcv[:, 1], "low": ohlcv[:, 2], "close": ohlcv[:, 3]})
            columns.update((n, values[w:, j]) for j, n in enumerate(missing))
        return np.column_stack([columns[n] for n in features])

    def bank_fn(i):
        return lambda e: episode_bank(e, plans[i].warmup, plans[i].features)

    base = list(range(n_base))

    curves = {}
    o = frame["open"].to_numpy()[s_start:s_stop]
    c = frame["close"].to_numpy()[s_start:s_stop]
    models = {}

    def fit_eval(i, rec):
        try:
            model, path, trust = _fit_and_trust(rec, plans[i], bank_fn(i), screen_columns,
                                                max_depth=max_depth, seed=seed)
        except Exception as exc:  # noqa: BLE001 - e.g. a strategy that never trades in the episodes
            return i, None, {"trusted": False, "error": f"{type(exc).__name__}: {exc}",
                             "episodes": len(rec["episodes"]), "bars_fed": int(rec.get("bars_fed", 0))}, None
        result = simulate((o, c), path, cash=cash, commission=commission, start_index=0)
        trust["trusted"] = _trusted(trust, min_transitions=min_transitions, min_agreement=min_agreement,
                                    rate_band=rate_band, max_pnl_gap=max_pnl_gap)
        return i, float(result["score"]), trust, (model, result["equity"])

    def record_and_fit(jobs_, desc, merge=lambda i, rec: rec):
        """Record ``(i, episodes)`` jobs on the executor's workers, then fit and evaluate each
        configuration in up to ``n_jobs`` threads of this process whatever the backend: the
        fits share this process's column caches (``screen_columns``, ``episode_bank``) and
        the episodes, which workers would each recompute or receive; numpy and the trees
        release the GIL for most of it (fitting in threads while the workers still recorded
        measured slower on two cores).
        ``merge(i, record)`` combines a new recording with what ``i`` had. Writes scores,
        trust and curves; returns ``{i: recording}`` and the seconds of both steps."""
        t0 = time.perf_counter()
        jobs = [(plans[i].configuration, which, plans[i].warmup) for i, which in jobs_]
        out = record_many(jobs, eps, cash=cash, commission=commission, timeframe=candles.timeframe, n_jobs=n_jobs,
                          backend=backend, progress=progress, desc=desc)
        arrived = {i: rec if rec.get("error") else merge(i, rec) for (i, _), rec in zip(jobs_, out)}
        t1 = time.perf_counter()
        todo = [(i, rec) for i, rec in arrived.items() if not rec.get("error")]
        fitted = current().thread_map(fit_eval, todo)  # the executor parallel_api entered
        for i, score, trust, extra_ in fitted:
            records[i].update(score=score, trust=trust)
            if extra_ is not None:
                models[i] = extra_[0]
                curves[plans[i].configuration.name] = extra_[1]
            else:
                models.pop(i, None)
        return arrived, t1 - t0, time.perf_counter() - t1

    # 1. Base episodes, every configuration on the same ones (common random numbers).
    recs, timings["record_seconds"], timings["fit_eval_seconds"] = (
        record_and_fit([(i, base) for i in surrogate_live], "episodes") if surrogate_live else ({}, 0.0, 0.0))
    ok = []
    for i in surrogate_live:
        if recs[i].get("error"):
            records[i]["error"] = recs[i]["error"]
        else:
            ok.append(i)
            records[i]["path"] = "surrogate"

    # 2. Escalation: more episodes, chosen over the whole episode source period where this
    #    configuration's own surrogate predicts the transitions it has seen too rarely (and
    #    where its columns leave the range the episodes showed); refit after each round.
    t0 = time.perf_counter()
    escalations = 0
    source_bank, source_col = None, {}
    for round_ in range(escalation_rounds if escalate else 0):
        pending = [i for i in ok if not records[i]["trust"].get("trusted")]
        if not pending:
            break
        names = list(dict.fromkeys(n for i in pending for n in plans[i].features))
        if source_bank is None or any(n not in source_col for n in names):
            lead = min(src_start, bank_warmup(names))
            source_bank = IndicatorBank(names).transform(
                {k: frame[k].to_numpy()[src_start - lead:t_stop] for k in ("high", "low", "close")})[lead:]
            source_col = {n: j for j, n in enumerate(names)}
        m = len(source_bank)
        # Longer windows each round (holds that outlast a base episode end inside them), about
        # the same bars per round: 2 x length x escalation_episodes.
        L = min(ep_len * 2 ** (round_ + 1), max(2, m - episode_warmup))
        k_eps = max(1, escalation_episodes // 2 ** round_)
        first = min(episode_warmup, m - L) if m > L else 0
        w_starts = np.arange(first, m - L + 1, L)  # positions in the source bank
        if not len(w_starts):
            break
        chosen_by = {}
        for i in pending:
            wanted = _deficits(records[i]["trust"], min_transitions)
            F = source_bank[:, [source_col[n] for n in plans[i].features]]
            score = np.zeros(m)
            model = models.get(i)
            if model is not None:
                path = model.walk(F, start_state=0.0)
                prev = np.concatenate(([0.0], path[:-1]))
                for st, kind in wanted:
                    moved = ((prev == st) & (path != st)) if kind == "out" else ((prev != st) & (path == st))
                    score += 1000.0 * moved
                rely = _used_columns(model)
            else:
                rely = []
            if not rely:  # nothing learned yet: the configuration's own-period columns
                own = {str(p) for p in plans[i].periods}
                rely = [j for j, n in enumerate(plans[i].features)
                        if "(" not in n and set(n.split(":")[1:]) & own]
            if rely:
                X = np.concatenate([bank_fn(i)(e) for e in recs[i]["episodes"]])[:, rely]
                lo, hi = np.nanmin(X, axis=0), np.nanmax(X, axis=0)
                Fr = F[:, rely]
                score += np.sum((Fr < lo) | (Fr > hi), axis=1)
            per_window = np.add.reduceat(score, w_starts)[:len(w_starts)]
            if w_starts[-1] + L < m:
                per_window[-1] -= score[w_starts[-1] + L:].sum()
            covered = np.zeros(m, dtype=bool)
            for e in recs[i]["episodes"]:
                a_ = int(eps.source_start[e]) - src_start
                covered[max(0, a_):max(0, a_ + int(eps.length[e]))] = True
            fresh = np.add.reduceat(covered, w_starts)[:len(w_starts)] < L // 2
            order = [int(k) for k in np.argsort(-per_window, kind="stable") if per_window[k] > 0 and fresh[k]]
            if not order:  # no signal: windows spread over the period, away from those recorded
                order = [k for k in range(len(w_starts)) if fresh[k]]
                step = max(1, len(order) // k_eps)
                order = order[::step]
            chosen_by[i] = [src_start + int(w_starts[k]) for k in order[:k_eps]]
        starts_new = sorted({s_ for v in chosen_by.values() for s_ in v})
        if not starts_new:
            break
        at = eps.n
        eps = eps.extended(windows_as_episodes(candles, starts_new, length=L, warmup=episode_warmup,
                                               regime_names=eps.regime_names))
        index_of = {s_: at + k for k, s_ in enumerate(starts_new)}
        jobs = [(i, [index_of[s_] for s_ in chosen_by[i]]) for i in pending if chosen_by[i]]

        def merged(i, rec):
            first_rec = recs[i]
            return {"episodes": first_rec["episodes"] + rec["episodes"], "state": first_rec["state"] + rec["state"],
                    "target": first_rec["target"] + rec["target"],
                    "bars_fed": int(first_rec.get("bars_fed", 0)) + int(rec.get("bars_fed", 0))}

        log.info("escalation round %d: %d configuration(s) not trusted yet, %d new window(s) of %d bars",
                 round_ + 1, len(pending), len(starts_new), L)
        more, _, _ = record_and_fit(jobs, f"escalation {round_ + 1}", merge=merged)
        for i, rec in more.items():
            if rec.get("error"):
                records[i]["error"] = rec["error"]
                continue
            recs[i] = rec
            records[i]["path"] = "surrogate+escalated"
            records[i]["trust"]["escalation_rounds"] = round_ + 1
            escalations += 1
    ok = [i for i in ok if records[i]["error"] is None]
    still = [i for i in ok if not records[i]["trust"].get("trusted")] + direct_full
    timings["escalation_seconds"] = time.perf_counter() - t0

    full_results = {}
    # 3. Full backtests: the last resort for what the surrogate could not earn trust on.
    t0 = time.perf_counter()
    if still and (full_fallback or direct_full):
        todo = still if full_fallback else direct_full
        log.info("%d configuration(s) get a full backtest (%d short history, %d not trusted after escalation)",
                 len(todo), len(direct_full), len(todo) - len(direct_full))
        # the screen's one baseline: bounded warm-up per configuration (distillbt.baseline)
        jobs = [BacktestJob(plans[i].configuration, candles, cash=cash, commission=commission,
                            start=frame.index[s_start], end=frame.index[s_stop - 1],
                            warmup_bars=full_warmup([plans[i]], s_start), record_equity=True) for i in todo]
        for i, res in zip(todo, run_many(jobs, n_jobs=n_jobs, backend=backend, progress=progress)):
            if res.get("error"):
                records[i]["error"] = res["error"]
                continue
            curves[records[i]["name"]] = res["equity"]
            full_results[records[i]["name"]] = res
            records[i].update(score=float(res["score"]), path="full", surrogate_score=records[i]["score"])
    timings["full_seconds"] = time.perf_counter() - t0

    paths = [r["path"] for r in records if r["error"] is None]
    agreements = [r["trust"]["agreement"] for r in records
                  if r["trust"] and r["trust"].get("agreement") is not None]
    coverages = [r["trust"]["coverage"] for r in records if r["trust"] and "coverage" in r["trust"]]
    fed = sum(int((r["trust"] or {}).get("bars_fed", 0)) for r in records)
    summary = {
        "episodes": eps.n, "base_episodes": n_base, "episodes_from": episodes_from, "episode_length": int(eps.length[0]) if eps.n else 0,
        "episode_warmup": episode_warmup, "base_bars": int(eps.length[:n_base].sum()),
        "base_share": float(eps.length[:n_base].sum() / len(frame)),
        "screen_columns": len(screen_cache), "episode_source": [int(src_start), int(t_stop)],
        "paths": {p: paths.count(p) for p in ("surrogate", "surrogate+escalated", "full")},
        "direct_full": len(direct_full), "escalations": escalations, "bars_fed": int(fed),
        "full_bars_per_configuration": int(full_bars),
        "errors": sum(1 for r in records if r["error"]),
        "agreement": ({"min": float(np.min(agreements)), "q10": float(np.quantile(agreements, 0.1)),
                       "q25": float(np.quantile(agreements, 0.25)), "median": float(np.median(agreements)),
                       "max": float(np.max(agreements)), "n": len(agreements)} if agreements else None),
        "coverage": ({"min": int(np.min(coverages)), "median": float(np.median(coverages)),
                      "max": int(np.max(coverages))} if coverages else None),
        "surrogate_seconds": sum(v for k, v in timings.items() if k != "full_seconds"),
        **timings, "total_seconds": time.perf_counter() - began,
        "regimes": list(eps.regime_names),
    }
    return PlainScreen(records=records, summary=summary, episodes=eps, curves=curves, full_results=full_results)


@parallel_api
def successive_halving(configurations, episodes: Episodes, *, rungs=(4, 8, 16), eta: int = 2,
                       warmups=None, cash=10_000.0, commission=0.001, timeframe=None, n_jobs=1,
                       backend="loky", progress=True) -> dict:
    """Multi-fidelity baseline: estimate each configuration's score from its P&L on episodes.

    Every configuration runs on the first ``rungs[0]`` episodes (the same ones for all: common
    random numbers), the best ``1/eta`` go on to ``rungs[1]`` episodes, and so on; each rung
    adds only the new episodes. The estimate is the weighted mean per-episode log return
    (``Episodes.weights``). Configurations eliminated earlier rank below those that went on.
    Returns ``{"scores": {name: estimate}, "rank_key": {name: (rung, estimate)},
    "seconds", "bars"}``.
    """
    began = time.perf_counter()
    configs = list(configurations)
    plans = [plan_configuration(c) for c in configs]
    warm = warmups or [p.warmup for p in plans]
    alive = list(range(len(configs)))
    returns = {i: {} for i in alive}
    reached = {i: 0 for i in alive}
    done = 0
    bars = 0
    estimate = {}
    for r, n in enumerate(rungs):
        n = min(int(n), episodes.n)
        which = list(range(done, n))
        if which:
            jobs = [(configs[i], which, warm[i]) for i in alive]
            out = record_many(jobs, episodes, cash=cash, commission=commission, timeframe=timeframe,
                              n_jobs=n_jobs, backend=backend, progress=progress, desc=f"halving rung {r}")
            for i, rec in zip(alive, out):
                if rec.get("error"):
                    returns[i] = None
                    continue
                bars += rec["bars_fed"]
                for e, v in zip(rec["episodes"], rec["log_return"]):
                    returns[i][e] = v
        w = episodes.weights(n)
        for i in alive:
            reached[i] = r
            if returns[i] is None:
                estimate[i] = -math.inf
                continue
            vals = np.array([returns[i].get(e, 0.0) for e in range(n)])
            estimate[i] = float(np.sum(w * np.nan_to_num(vals, neginf=-10.0)))
        done = n
        if r < len(rungs) - 1:
            keep = max(1, int(math.ceil(len(alive) / eta)))
            alive = sorted(alive, key=lambda i: -estimate[i])[:keep]
    return {"scores": {configs[i].name: estimate[i] for i in estimate},
            "rank_key": {configs[i].name: (reached[i], estimate[i]) for i in estimate},
            "seconds": time.perf_counter() - began, "bars": bars}
