"""Walk-forward screening: the screen repeated on K anchored folds whose holdouts tile the end
of the history, so every survivor is judged on several out-of-sample windows, not one.

::

    result = walk_forward(folder, candles, folds=4, top=3)
    print(result.table())                      # ranking by folds survived, then mean holdout score
    result.summary["survivors"][0]             # holdout/screen scores per fold, mean, worst
    result.folds[0]                            # fold 1's ordinary ScreenResult

Folds (anchored)
----------------
The split works on the *usable* candles of the whole history — the rows
:func:`distillbt.distill.prepare.prepare` keeps after the feature and regime warm-ups, whose
target (the next close) exists — exactly as one screen does. With ``n`` usable rows, ``K``
folds and a first training share ``f`` (default the screen's 50 %):

- every window is ``w = floor((n - 2) / (K + 1 + 2f / (1 - f)))`` usable rows;
- fold 1 trains on the first ``T₁ = n - 2 - (K + 1)·w`` rows (≈ ``f`` of its span: the
  remainder of the division goes to it), and fold ``k`` on ``T_k = T₁ + (k - 1)·w`` — training
  always starts at the first usable candle and grows by one window a fold;
- fold ``k``: training rows ``[0, T_k)``, one embargo row, screening ``[T_k + 1, T_k + 1 + w)``,
  one embargo row, holdout ``[T_k + w + 2, T_k + 2w + 2)`` — the screen's own split with its
  one-row embargo between periods (the last target of a period uses the next candle's close);
- so the screening windows are consecutive, the holdout windows are consecutive (fold ``k +
  1``'s holdout starts where fold ``k``'s ends) and the last fold's holdout ends at the last
  usable candle (the candle before the last one: the last candle has no next close).

Each fold is an ordinary :func:`distillbt.screen.screen` on the candles cut to the end of its
holdout (plus the one candle its last target needs), with ``fractions = (T_k, w, w) / (T_k +
2w)``: distillation, model fits, surrogate episodes come from fold ``k``'s training rows, every
configuration is scored on its screening window, the top survivors are chosen there and
backtested on its holdout window. Nothing is selected on the data it is scored on. The periods
each fold actually used (read back from its summary, candle positions ``start``/``stop`` in the
whole history) are in ``summary["folds"]``. Windows shorter than :data:`MIN_WINDOW_CANDLES`, or
a first training period the regime labeller cannot be fitted on, are refused
(:class:`~distillbt.errors.InputError`, one line naming the minimum).

Summary
-------
- ``survivors``: every configuration that survived in at least one fold, ranked by
  ``folds_survived`` (most first: chosen again on every new training period is the evidence a
  walk-forward gives; one lucky fold's holdout must not outrank it), then by ``mean_holdout``
  (best first): ``holdout_scores`` and
  ``screen_scores`` per fold (``holdout_scores[k]`` is None where it was not a survivor of
  fold ``k + 1`` or its holdout backtest failed), ``mean_holdout`` and ``worst_holdout`` over
  the folds that have a holdout score, ``folds_survived``; ``ranking``: their names in order.
- ``pbo``: the probability of backtest overfitting over the folds (:func:`fold_pbo`): a
  CSCV-style estimate whose blocks are the folds and whose performance matrix is every
  configuration's screen score per fold (configurations scored in every fold). Omitted, with
  the reason in ``pbo_omitted``, for fewer than 4 folds (a split of 1 fold against 1–2 folds
  says nothing) or fewer than 2 configurations.
- ``deflated_sharpe``: the Deflated Sharpe Ratio (:func:`distillbt.stats.deflated_sharpe_ratio`'s
  formula) of the per-fold holdout scores of the best-ranked configuration that has at least 2
  of them (``configuration``, its ``rank``; a Sharpe ratio needs 2 returns) — log returns over
  one window each under the default objective ``return``: its Sharpe ratio per window ``mean /
  std (ddof=1)`` over the ``n`` folds it has a holdout score, with the skewness and Pearson
  kurtosis of those ``n`` values, against the expected maximum Sharpe ratio of ``N`` = *every*
  configuration tried (scored in any fold), with the variance of the per-window Sharpe ratios
  of the configurations' screen scores per fold (those with 2 or more that vary: the one return
  every configuration has on every fold, on windows of the same length). Omitted, with the
  reason in ``deflated_sharpe_omitted``, under another objective (its scores are not
  returns), when no configuration has 2 holdout scores, or its scores do not vary.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np

from .capture import log_summary, strategy_output_api
from .data.candles import Candles
from .distill.prepare import prepare
from .errors import InputError, first_line
from .executor import parallel_api
from .screen import DEFAULT_FRACTIONS, ScreenResult, screen
from .stats import expected_max_sharpe, probabilistic_sharpe_ratio

__all__ = ["walk_forward", "walk_forward_folds", "fold_pbo", "WalkForwardResult", "MIN_WINDOW_CANDLES"]

#: The shortest screening / holdout window a fold may have (usable candles): shorter windows
#: leave the full backtests too few bars to rank anything, and with the default first training
#: share fold 1 then trains on 800 usable candles or more — about what the default regime
#: labeller needs to fit (a 960-candle warm-up, then 100); :func:`walk_forward_folds` checks that too.
MIN_WINDOW_CANDLES = 400
#: Folds from which the probability of backtest overfitting is estimated.
MIN_PBO_FOLDS = 4
log = logging.getLogger(__name__)


@dataclass
class WalkForwardResult:
    """The K folds' :class:`~distillbt.screen.ScreenResult` s (``folds[k]`` is fold ``k + 1``)
    and the summary over them (module docstring, "Summary")."""

    folds: list[ScreenResult] = field(default_factory=list)
    summary: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-able: the summary and each fold's own results (``ScreenResult.to_dict``)."""
        return {"summary": self.summary, "folds": [f.to_dict() for f in self.folds]}

    def table(self, limit: int | None = None) -> str:
        """The ranking by folds survived and mean holdout score: survived folds, mean, worst, then each fold's
        holdout score (blank where the configuration was not a survivor)."""
        k = len(self.summary["folds"])
        head = ["rank", "configuration", "survived", "mean holdout", "worst holdout",
                *(f"fold {i}" for i in range(1, k + 1))]
        rows = []
        for rank, entry in enumerate(self.summary["survivors"][:limit], start=1):
            rows.append([str(rank), entry["name"], f"{entry['folds_survived']}/{k}", _fmt(entry["mean_holdout"]),
                         _fmt(entry["worst_holdout"]), *(_fmt(x) for x in entry["holdout_scores"])])
        widths = [max(len(x[i]) for x in [head] + rows) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [head] + rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def fold_lines(self) -> list[str]:
        """One line per fold: its three periods and its survivors."""
        lines = []
        for fold in self.summary["folds"]:
            p = fold["periods"]
            parts = ", ".join(f"{name} {p[name]['first']} → {p[name]['last']} ({p[name]['candles']:,})"
                              for name in ("training", "screening", "holdout"))
            lines.append(f"fold {fold['fold']}: {parts}; survivors: {', '.join(fold['survivors']) or 'none'}")
        return lines

    def summary_lines(self) -> list[str]:
        """The summary as the CLI prints it: windows, PBO over the folds, deflated Sharpe."""
        s = self.summary
        lines = [f"walk-forward: {len(s['folds'])} anchored folds, windows of {s['window_candles']:,} usable candles, "
                 f"{s['configurations']} configurations; holdout scores ({s['objective']}) from each fold's holdout, "
                 f"survivors chosen on its screening window; {s['seconds']:.1f} s"]
        if s.get("pbo") is not None:
            lines.append(f"probability of backtest overfitting over the folds: {s['pbo']:.2f} "
                         f"({s['pbo_combinations']} splits of the folds, {s['pbo_configurations']} configurations)")
        else:
            lines.append(f"probability of backtest overfitting over the folds: omitted ({s['pbo_omitted']})")
        d = s.get("deflated_sharpe")
        if d is not None:
            lines.append(f"deflated Sharpe ratio of {d['configuration']} (rank {d['rank']}, the best with 2 or more "
                         f"holdouts): {d['value']:.2f} (Sharpe {d['sharpe']:.2f} per window over {d['n_obs']} "
                         f"holdouts, best of {d['trials']} configurations)")
        else:
            lines.append(f"deflated Sharpe ratio: omitted ({s['deflated_sharpe_omitted']})")
        return lines


def _fmt(value) -> str:
    return "" if value is None else f"{value:+.4f}"


def walk_forward_folds(candles: Candles, folds: int, *, first_training: float = DEFAULT_FRACTIONS[0]) -> dict:
    """The plan of ``folds`` anchored folds over ``candles`` (module docstring, "Folds"):
    ``window`` (usable rows per screening / holdout window), ``usable`` (usable rows) and
    ``folds``: per fold ``stop`` (the candles it is cut to, ``[0, stop)``), ``fractions`` (its
    screen's training / screening / holdout shares) and ``periods`` (planned candle positions
    ``[start, stop)`` of each period). :class:`~distillbt.errors.InputError` for fewer than 2
    folds, a share outside (0, 1), or windows shorter than :data:`MIN_WINDOW_CANDLES`."""
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
        raise InputError(f"--folds must be an integer >= 2, not {folds!r}")
    if not 0.0 < float(first_training) < 1.0:
        raise InputError(f"the first fold's training share must be between 0 and 1, not {first_training!r}")
    folds = int(folds)
    ratio = 2.0 * first_training / (1.0 - first_training)  # first training rows per window
    minimum = (f"walk-forward with {folds} folds needs at least {MIN_WINDOW_CANDLES} usable candles per screening "
               "and holdout window")
    try:  # the usable rows, as every fold's screen will find them (the split itself is not used)
        data = prepare(candles, fractions=(0.9, 0.05, 0.05))
    except InputError as error:
        raise InputError(f"{minimum}; these {len(candles):,} candles are too few: {first_line(error)}") from None
    rows = candles.frame.index.get_indexer(data.times)
    n = len(rows)
    window = int((n - 2) // (folds + 1 + ratio))
    if window < MIN_WINDOW_CANDLES:
        need = int(rows[0]) + 2 + math.ceil(MIN_WINDOW_CANDLES * (folds + 1 + ratio)) + 1
        raise InputError(f"{minimum}, about {need:,} candles in all; these {len(candles):,} give windows of "
                         f"{window}: use more candles or fewer folds")
    first = n - 2 - (folds + 1) * window
    plan = []
    for k in range(folds):
        train = first + k * window
        last_row = train + 2 * window + 1  # the holdout's last usable row
        stop = int(rows[last_row]) + 2  # its target needs the next candle
        # candle positions of each period, as the fold's screen will split them
        bounds = {"training": (0, train), "screening": (train + 1, train + 1 + window),
                  "holdout": (train + window + 2, train + 2 * window + 2)}
        periods = {name: (int(rows[a]), int(rows[b - 1]) + 1) for name, (a, b) in bounds.items()}
        total = train + 2 * window
        plan.append({"fold": k + 1, "stop": stop, "fractions": (train / total, window / total, window / total),
                     "periods": periods})
    try:  # fold 1 has the shortest training period: can its screen fit the regime labeller there?
        prepare(candles.rows(slice(0, plan[0]["stop"])), fractions=plan[0]["fractions"])
    except InputError as error:
        raise InputError(f"walk-forward fold 1 of {folds} trains on {first:,} usable candles, too few: "
                         f"{first_line(error)}; use more candles, fewer folds or a larger first training share") \
            from None
    return {"window": window, "usable": n, "first_training": float(first_training), "folds": plan}


@parallel_api  # one executor (one Dask cluster) for every fold
@strategy_output_api  # every fold's strategy output in one log
def walk_forward(folder, candles: Candles, *, folds: int, first_training: float = DEFAULT_FRACTIONS[0],
                 top: int = 10, n_jobs: int = 1, backend: str = "loky", progress: bool = True,
                 strategy_log=None, show_strategy_output: bool = False, **screen_options) -> WalkForwardResult:
    """Screen ``folder`` on ``folds`` anchored folds of ``candles`` (module docstring): fold
    ``k`` is :func:`distillbt.screen.screen` on the candles up to the end of its holdout with
    its own training / screening / holdout fractions, its ``top`` survivors chosen on its
    screening window and backtested on its holdout window.

    ``first_training``: the training share of the first fold's span (default the screen's).
    ``screen_options``: any other keyword of :func:`~distillbt.screen.screen` (``validate``,
    ``objective``, ``n_jobs``, ``cache``, …), the same for every fold; ``fractions`` (set per
    fold) and ``distilled`` (each fold distils from its own training period) are refused.
    ``n_jobs``, ``backend`` (and ``scheduler``, ``executor``): one executor for every fold
    (:mod:`distillbt.executor`). ``strategy_log`` / ``show_strategy_output``: one strategy log
    for every fold (:mod:`distillbt.capture`; ``summary["strategy_log"]``).
    ``progress``: a bar over the folds (and the screens' own bars).
    """
    for refused, why in (("fractions", "each fold sets its own"),
                         ("distilled", "each fold distils from its own training period")):
        if screen_options.get(refused) is not None:
            raise InputError(f"walk-forward does not take {refused}: {why}")
    from tqdm.auto import tqdm

    started = time.perf_counter()
    plan = walk_forward_folds(candles, folds, first_training=first_training)
    results = []
    for fold in tqdm(plan["folds"], desc="walk-forward folds", unit="fold", disable=not progress):
        cut = candles.rows(slice(0, fold["stop"]))
        log.info("fold %d of %d: %d candles, fractions %s", fold["fold"], len(plan["folds"]), len(cut),
                 ", ".join(f"{x:.3f}" for x in fold["fractions"]))
        results.append(screen(folder, cut, fractions=fold["fractions"], top=top, n_jobs=n_jobs, backend=backend,
                              progress=progress, **screen_options))
    summary = _summary(candles, plan, results)
    summary.update(log_summary())  # strategy_log, strategy_output_lines: all the folds'
    summary["seconds"] = time.perf_counter() - started
    return WalkForwardResult(folds=results, summary=summary)


def _summary(candles: Candles, plan: dict, results: list[ScreenResult]) -> dict:
    index = candles.frame.index
    k = len(results)
    fold_entries = []
    for fold, result in zip(plan["folds"], results):
        periods = {}
        for name, period in result.summary["periods"].items():
            start, stop = index.get_loc(period["first"]), index.get_loc(period["last"]) + 1
            periods[name] = {**period, "start": int(start), "stop": int(stop)}
            if (start, stop) != fold["periods"][name]:  # the plan and the screen's split disagree
                log.warning("fold %d: %s period is [%d, %d), planned [%d, %d)", fold["fold"], name, start, stop,
                            *fold["periods"][name])
        entry = {"fold": fold["fold"], "candles": fold["stop"], "fractions": list(fold["fractions"]),
                 "periods": periods, "survivors": [r.name for r in result.records if r.survivor]}
        if "pbo" in result.summary:
            entry["pbo"] = result.summary["pbo"]
        fold_entries.append(entry)

    names: dict[str, dict] = {}  # every configuration tried, in first-seen order
    for i, result in enumerate(results):
        for record in result.records:
            item = names.setdefault(record.name, {"name": record.name, "strategy": record.strategy,
                                                  "params": record.params, "screen_scores": [None] * k,
                                                  "holdout_scores": [None] * k, "survived": [False] * k})
            item["screen_scores"][i] = record.screen_score
            item["survived"][i] = bool(record.survivor)
            if record.survivor:
                item["holdout_scores"][i] = record.holdout_score
    survivors = []
    for item in names.values():
        if not any(item["survived"]):
            continue
        held = [x for x in item["holdout_scores"] if x is not None]
        survivors.append({"name": item["name"], "strategy": item["strategy"], "params": item["params"],
                          "folds_survived": sum(item["survived"]),
                          "holdout_scores": item["holdout_scores"], "screen_scores": item["screen_scores"],
                          "mean_holdout": float(np.mean(held)) if held else None,
                          "worst_holdout": float(min(held)) if held else None})
    survivors.sort(key=lambda e: (-e["folds_survived"], e["mean_holdout"] is None, -(e["mean_holdout"] or 0.0)))

    first = results[0].summary
    summary = {
        "source": candles.source, "symbol": candles.symbol, "timeframe": candles.timeframe,
        "synthetic": candles.synthetic, "anchored": True, "first_training": plan["first_training"],
        "window_candles": plan["window"], "usable_candles": plan["usable"],
        "objective": first.get("objective"), "score": first.get("score"),
        "configurations": sum(any(s is not None for s in item["screen_scores"]) for item in names.values()),
        "folds": fold_entries, "survivors": survivors, "ranking": [e["name"] for e in survivors],
    }
    summary.update(_pbo(names, k))
    summary.update(_deflated(names, survivors, summary))
    return summary


def _pbo(names: dict, k: int) -> dict:
    if k < MIN_PBO_FOLDS:
        return {"pbo": None, "pbo_omitted": f"needs at least {MIN_PBO_FOLDS} folds, not {k}"}
    full = [item["screen_scores"] for item in names.values()
            if all(s is not None and np.isfinite(s) for s in item["screen_scores"])]
    if len(full) < 2:
        return {"pbo": None, "pbo_omitted": "fewer than 2 configurations were scored in every fold"}
    out = fold_pbo(np.array(full, dtype="float64").T)
    return {"pbo": out["pbo"], "pbo_combinations": out["n_combinations"], "pbo_configurations": len(full)}


def fold_pbo(scores) -> dict:
    """Probability of backtest overfitting with the folds as CSCV's blocks.

    ``scores``: a ``K × N`` matrix, configuration ``j``'s performance on fold ``i`` (K ≥ 2,
    N ≥ 2, finite). For every way of choosing ``⌊K/2⌋`` folds as in-sample — and, for odd K,
    also every ``⌈K/2⌉`` folds, so each split and its complement both count — the
    configuration with the best mean in-sample score is ranked among all N by their mean
    out-of-sample score (1 = worst; ties share their average rank), ``ω = rank / (N + 1)``,
    ``λ = ln(ω / (1 - ω))``; ``pbo`` is the share of splits with ``λ ≤ 0`` (the in-sample
    winner no better than the median out of sample). Returns ``pbo``, ``logits`` and
    ``n_combinations``. Like :func:`distillbt.stats.probability_of_backtest_overfitting`
    (Bailey et al. 2017), with fold means instead of Sharpe ratios of bar returns: the folds
    are few, and a fold's score is already one number per configuration.
    """
    matrix = np.asarray(scores, dtype="float64")
    if matrix.ndim != 2 or matrix.shape[0] < 2 or matrix.shape[1] < 2:
        raise InputError(f"scores must be K x N with K >= 2 folds and N >= 2 configurations, not {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise InputError("scores must be finite")
    k, n = matrix.shape
    sizes = sorted({k // 2, k - k // 2})
    logits = []
    for size in sizes:
        for chosen in itertools.combinations(range(k), size):
            inside = np.zeros(k, dtype=bool)
            inside[list(chosen)] = True
            best = int(np.argmax(matrix[inside].mean(axis=0)))
            out = matrix[~inside].mean(axis=0)
            rank = (out < out[best]).sum() + ((out == out[best]).sum() + 1) / 2
            omega = rank / (n + 1)
            logits.append(math.log(omega / (1.0 - omega)))
    logits = np.array(logits)
    return {"pbo": float(np.mean(logits <= 0)), "logits": logits, "n_combinations": len(logits)}


def _deflated(names: dict, survivors: list, summary: dict) -> dict:
    def omitted(reason):
        return {"deflated_sharpe": None, "deflated_sharpe_omitted": reason}

    if summary["objective"] != "return":
        return omitted(f"the scores are {summary['objective']}, not returns (objective 'return' only)")
    # a Sharpe ratio needs 2 returns: the best-ranked configuration that has 2 holdout scores
    best = next((e for e in survivors if sum(x is not None for x in e["holdout_scores"]) >= 2), None)
    if best is None:
        return omitted("no configuration has 2 or more holdout scores (survived 2 folds)")
    held = np.array([x for x in best["holdout_scores"] if x is not None], dtype="float64")
    if not np.isfinite(held).all() or held.std(ddof=1) == 0:
        return omitted(f"the best-ranked with 2 or more holdouts, {best['name']}, has holdout scores that are not "
                       "finite or do not vary")
    sharpe = float(held.mean() / held.std(ddof=1))
    z = (held - held.mean()) / held.std()
    skew, kurtosis = float(np.mean(z ** 3)), float(np.mean(z ** 4))
    trials = []
    for item in names.values():
        s = np.array([x for x in item["screen_scores"] if x is not None], dtype="float64")
        s = s[np.isfinite(s)]
        if len(s) >= 2 and s.std(ddof=1) > 0:
            trials.append(s.mean() / s.std(ddof=1))
    n_trials = summary["configurations"]
    variance = float(np.var(trials, ddof=1)) if len(trials) > 1 else 0.0
    benchmark = expected_max_sharpe(variance, max(n_trials, 1))
    value = probabilistic_sharpe_ratio(sharpe, benchmark, len(held), skew, kurtosis)
    return {"deflated_sharpe": {"configuration": best["name"], "rank": survivors.index(best) + 1,
                                "value": float(value), "sharpe": sharpe,
                                "n_obs": len(held), "skew": skew, "kurtosis": kurtosis, "trials": n_trials,
                                "trials_sharpe_variance": variance, "benchmark_sharpe": benchmark}}
