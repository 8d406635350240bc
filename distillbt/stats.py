"""Performance statistics of an equity curve, and how far to trust the best of many.

::

    stats = performance_stats(equity, times, positions=positions, trade_pnls=pnls)
    stats["sharpe"], stats["max_drawdown_pct"], stats["win_rate_pct"]

    # the best of N configurations, deflated for having tried N (per-bar Sharpe ratios)
    per_bar = [r["sharpe"] / math.sqrt(r["bars_per_year"]) for r in results]
    best = results[int(np.nanargmax(per_bar))]
    dsr = deflated_sharpe_ratio(max(per_bar), per_bar, best["bars"] - 1,
                                best["skew"], best["kurtosis"])

    # how often the in-sample winner is below median out of sample (same bars for all runs)
    returns_matrix = np.column_stack([bar_returns(r["equity"]) for r in results])
    pbo = probability_of_backtest_overfitting(returns_matrix)["pbo"]

Everything is computed here from the equity curve rather than with Backtrader's analyzers:
its ``SharpeRatio`` returns None on minute data with the default timeframe and mis-converts
the risk-free rate (docs/design.md §9).

Performance statistics (:func:`performance_stats`)
--------------------------------------------------
With equity ``V_0 … V_n`` at the close of each bar and per-bar simple returns
``r_t = V_t / V_{t-1} - 1``:

==================== =========================================================================
``total_return_pct`` ``100 · (V_n / V_0 - 1)``
``cagr_pct``         ``100 · ((V_n / V_0) ^ (1 / years) - 1)``, ``years`` = time from the first
                     to the last bar / 365.25 days
``sharpe``           ``mean(r) / std(r) · sqrt(P)`` (sample std, ``ddof=1``; risk-free rate 0)
``sortino``          ``mean(r) / sqrt(mean(min(r, 0)²)) · sqrt(P)`` (downside deviation below 0)
``max_drawdown_pct`` ``100 · max_t (1 - V_t / max_{s≤t} V_s)``: a positive number, the deepest
                     fall from a running peak
``n_trades``         closed trades
``win_rate_pct``     ``100 ·`` share of closed trades with a positive net P&L
``profit_factor``    gross profit / gross loss of closed trades (``inf`` with no losing trade)
``exposure_pct``     ``100 ·`` share of bars that end with a non-zero position
``bars_per_year``    ``P`` = 365.25 days / the median bar spacing (markets that trade around
                     the clock, like crypto: a daily series counts 365.25 bars a year, not 252)
``skew``             skewness of ``r`` (moment estimator ``m₃ / m₂^1.5``)
``kurtosis``         kurtosis of ``r`` (``m₄ / m₂²``, Pearson: 3 for a normal distribution)
==================== =========================================================================

A statistic that is undefined (a flat curve has no Sharpe ratio, no trades have no win rate)
is NaN. ``sharpe / sqrt(bars_per_year)``, ``skew``, ``kurtosis`` and ``bars - 1`` are the
inputs of :func:`deflated_sharpe_ratio`.

Overfitting statistics
----------------------
- :func:`deflated_sharpe_ratio` — Bailey, D. H. and López de Prado, M. (2014), "The Deflated
  Sharpe Ratio: Correcting for Selection Bias, Backtest Overfitting and Non-Normality",
  *Journal of Portfolio Management* 40 (5), 94–107.
- :func:`probability_of_backtest_overfitting` — Bailey, D. H., Borwein, J., López de Prado, M.
  and Zhu, Q. J. (2017), "The Probability of Backtest Overfitting", *Journal of Computational
  Finance* 20 (4), 39–69 (SSRN 2326253, 2015): combinatorially symmetric cross-validation.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
import pandas as pd

from .errors import InputError

__all__ = [
    "performance_stats",
    "STAT_KEYS",
    "headline_stats",
    "bar_returns",
    "return_summary",
    "probabilistic_sharpe_ratio",
    "expected_max_sharpe",
    "deflated_sharpe_ratio",
    "probability_of_backtest_overfitting",
    "EULER_MASCHERONI",
]

EULER_MASCHERONI = 0.5772156649015329
_YEAR_NS = 365.25 * 86_400e9
# The standard normal from the standard library: scipy.stats alone takes over a second to import,
# and every worker process of run_many pays that.
_NORMAL = NormalDist()


#: The statistics a screen keeps of each full backtest (its table and report).
STAT_KEYS = ("total_return_pct", "cagr_pct", "sharpe", "sortino", "max_drawdown_pct", "n_trades",
             "win_rate_pct", "profit_factor", "exposure_pct")


def headline_stats(result: dict) -> dict:
    """The :data:`STAT_KEYS` of a backtest result that has them."""
    return {k: result.get(k) for k in STAT_KEYS if k in result}


def bar_returns(equity) -> np.ndarray:
    """Per-bar simple returns ``V_t / V_{t-1} - 1`` of an equity curve (one fewer value)."""
    equity = np.asarray(equity, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return equity[1:] / equity[:-1] - 1.0


def return_summary(equity, *, blocks: int = 1024) -> dict:
    """What the overfitting statistics need of one equity curve, in a size that does not grow
    with its length: so a screen of thousands of configurations keeps one small record each
    instead of every curve.

    Per-bar log returns give ``n_obs``, ``sharpe`` (per bar, ``ddof=1``), ``skew`` and
    ``kurtosis`` (Pearson, 3 for normal) for :func:`deflated_sharpe_ratio`; ``block_returns``
    are their sums over ``blocks`` consecutive, nearly equal blocks (fewer when the curve is
    shorter) for :func:`probability_of_backtest_overfitting`, which compares blocks' Sharpe
    ratios. Non-finite returns (a wiped-out account) count as 0.
    """
    equity = np.asarray(equity, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.diff(np.log(equity))
    r = np.nan_to_num(r, nan=0.0, posinf=0.0, neginf=0.0)
    n = len(r)
    sd = float(r.std(ddof=1)) if n > 1 else 0.0
    z = (r - r.mean()) / (r.std() or 1.0) if n else r
    edges = np.linspace(0, n, min(blocks, n) + 1).round().astype(np.int64)
    sums = np.add.reduceat(r, edges[:-1]) if n else np.zeros(0)
    return {
        "n_obs": n,
        "sharpe": float(r.mean() / sd) if sd > 0 else 0.0,
        "skew": float(np.mean(z**3)) if n else 0.0,
        "kurtosis": float(np.mean(z**4)) if n else 3.0,
        "block_returns": sums,
    }


def performance_stats(
    equity,
    times,
    *,
    positions=None,
    trade_pnls: Sequence[float] | None = None,
    bars_per_year: float | None = None,
) -> dict:
    """The statistics of an equity curve (formulas in the module docstring).

    Parameters
    ----------
    equity : array-like
        Account value at the close of each bar (at least one bar; positive).
    times : DatetimeIndex or array of datetime64
        Time of each bar; sets ``years`` for the CAGR and, unless ``bars_per_year`` is given,
        the annualisation of Sharpe and Sortino.
    positions : array-like, optional
        Position size at each bar's close, for ``exposure_pct`` (NaN without it).
    trade_pnls : sequence of float, optional
        Net P&L of each closed trade, for ``n_trades``, ``win_rate_pct`` and
        ``profit_factor`` (0 trades without it).
    bars_per_year : float, optional
        Overrides the annualisation factor ``P``.
    """
    equity = np.asarray(equity, dtype=np.float64)
    if equity.ndim != 1 or len(equity) == 0:
        raise InputError("equity must be a non-empty 1-D array")
    ns = pd.DatetimeIndex(times).as_unit("ns").asi8 if len(times) else np.zeros(0, np.int64)
    if len(ns) != len(equity):
        raise InputError(f"times has {len(ns)} values for {len(equity)} equity values")
    if bars_per_year is None:
        spacing = float(np.median(np.diff(ns))) if len(ns) > 1 else math.nan
        bars_per_year = _YEAR_NS / spacing if spacing > 0 else math.nan

    growth = equity[-1] / equity[0]
    years = (ns[-1] - ns[0]) / _YEAR_NS if len(ns) > 1 else 0.0
    if years <= 0:
        cagr = math.nan
    elif growth <= 0:
        cagr = -100.0
    else:
        with np.errstate(over="ignore"):  # a big gain over a short span annualises to inf
            cagr = 100.0 * (float(np.exp(math.log(growth) / years)) - 1.0)

    returns = bar_returns(equity)
    returns = returns[np.isfinite(returns)]
    sharpe = sortino = skew = kurtosis = math.nan
    if len(returns) > 1:
        mean, std = float(returns.mean()), float(returns.std(ddof=1))
        root_p = math.sqrt(bars_per_year)
        if std > 0:
            sharpe = mean / std * root_p
            centred = returns - mean
            m2 = float(np.mean(centred**2))
            skew = float(np.mean(centred**3)) / m2**1.5
            kurtosis = float(np.mean(centred**4)) / m2**2
        downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
        if downside > 0:
            sortino = mean / downside * root_p

    peak = np.maximum.accumulate(equity)
    with np.errstate(divide="ignore", invalid="ignore"):
        drawdown = 1.0 - equity / peak
    max_drawdown = 100.0 * float(np.nanmax(drawdown)) if len(equity) else math.nan

    pnls = np.asarray(trade_pnls if trade_pnls is not None else [], dtype=np.float64)
    wins, losses = pnls[pnls > 0].sum(), -pnls[pnls < 0].sum()
    if len(pnls) == 0:
        win_rate = profit_factor = math.nan
    else:
        win_rate = 100.0 * float(np.mean(pnls > 0))
        profit_factor = float(wins / losses) if losses > 0 else (math.inf if wins > 0 else math.nan)

    exposure = math.nan
    if positions is not None:
        positions = np.asarray(positions, dtype=np.float64)
        if len(positions) != len(equity):
            raise InputError(f"positions has {len(positions)} values for {len(equity)} bars")
        exposure = 100.0 * float(np.mean(positions != 0))

    return {
        "total_return_pct": 100.0 * (growth - 1.0),
        "cagr_pct": cagr,
        "sharpe": sharpe,
        "sortino": sortino,
        "max_drawdown_pct": max_drawdown,
        "n_trades": int(len(pnls)),
        "win_rate_pct": win_rate,
        "profit_factor": profit_factor,
        "exposure_pct": exposure,
        "bars_per_year": float(bars_per_year),
        "skew": skew,
        "kurtosis": kurtosis,
    }


# --------------------------------------------------------------------------------------------
# Deflated Sharpe ratio


def probabilistic_sharpe_ratio(
    sharpe: float, benchmark: float, n_obs: int, skew: float = 0.0, kurtosis: float = 3.0
) -> float:
    """Probability that the true Sharpe ratio exceeds ``benchmark`` (Bailey & López de Prado).

    ``PSR = Φ( (SR - SR*) · sqrt(T - 1) / sqrt(1 - γ₃·SR + (γ₄ - 1)/4 · SR²) )`` with
    per-period (not annualised) Sharpe ratios, ``T = n_obs`` returns, their skewness ``γ₃``
    and (Pearson, non-excess) kurtosis ``γ₄``. NaN when the variance term is not positive.
    """
    _check_obs(n_obs)
    sr = float(sharpe)
    variance = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if not variance > 0:
        return math.nan
    z = (sr - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(variance)
    return _NORMAL.cdf(z)


def expected_max_sharpe(variance: float, n_trials: int) -> float:
    """Expected maximum of ``n_trials`` Sharpe ratios whose true value is 0.

    ``E[max] ≈ sqrt(V) · ((1 - γ) · Φ⁻¹(1 - 1/N) + γ · Φ⁻¹(1 - 1/(N·e)))`` with ``γ`` the
    Euler–Mascheroni constant and ``V`` the variance of the trials' Sharpe ratios (the
    False Strategy theorem, Bailey & López de Prado 2014). 0 for a single trial.
    """
    if n_trials < 1:
        raise InputError(f"n_trials must be >= 1, not {n_trials}")
    if variance < 0:
        raise InputError(f"variance must be >= 0, not {variance}")
    if n_trials == 1:
        return 0.0
    g = EULER_MASCHERONI
    z1 = _NORMAL.inv_cdf(1.0 - 1.0 / n_trials)
    z2 = _NORMAL.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return float(math.sqrt(variance) * ((1.0 - g) * z1 + g * z2))


def deflated_sharpe_ratio(
    sharpe_observed: float,
    sharpe_trials,
    n_obs: int,
    skew: float = 0.0,
    kurtosis: float = 3.0,
) -> float:
    """Deflated Sharpe ratio: probability that the selected strategy's true Sharpe ratio
    exceeds what the best of the trials would show by luck alone.

    ``DSR = PSR(SR*)`` (see :func:`probabilistic_sharpe_ratio`) with the benchmark
    ``SR* = expected_max_sharpe(Var[trials], N)``. All Sharpe ratios are per period (per
    bar: the annualised one divided by ``sqrt(bars_per_year)``).

    Parameters
    ----------
    sharpe_observed : float
        Per-period Sharpe ratio of the selected configuration.
    sharpe_trials : array-like
        Per-period Sharpe ratios of all N configurations tried (the selected one included);
        their sample variance (``ddof=1``) and N set the benchmark. Non-finite values are
        ignored.
    n_obs : int
        Number of returns the observed Sharpe ratio was measured on.
    skew, kurtosis : float
        Skewness and Pearson kurtosis (3 for normal) of the selected configuration's returns.

    Example (the paper's): an annualised SR of 2.5 on 1,250 daily returns, the best of 100
    trials whose annualised Sharpe ratios have variance 0.5, skew -3, kurtosis 10 → SR* ≈
    0.1132 per day and DSR ≈ 0.90.
    """
    trials = np.asarray(sharpe_trials, dtype=np.float64).ravel()
    trials = trials[np.isfinite(trials)]
    if len(trials) == 0:
        raise InputError("sharpe_trials must hold at least one finite Sharpe ratio")
    variance = float(trials.var(ddof=1)) if len(trials) > 1 else 0.0
    benchmark = expected_max_sharpe(variance, len(trials))
    return probabilistic_sharpe_ratio(sharpe_observed, benchmark, n_obs, skew, kurtosis)


def _check_obs(n_obs) -> None:
    if isinstance(n_obs, bool) or not isinstance(n_obs, (int, np.integer)) or n_obs < 2:
        raise InputError(f"n_obs must be an integer >= 2, not {n_obs!r}")


# --------------------------------------------------------------------------------------------
# Probability of backtest overfitting (CSCV)


def probability_of_backtest_overfitting(
    returns_matrix,
    n_splits: int = 16,
    *,
    max_combinations: int = 20_000,
    seed: int = 0,
) -> dict:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation.

    The ``T × N`` matrix of per-bar returns of ``N`` configurations is cut into ``S =
    n_splits`` consecutive blocks of (nearly) equal length. For every way ``c`` of choosing
    ``S/2`` blocks as the in-sample set (the rest is out of sample): pick the configuration
    ``n*`` with the best in-sample Sharpe ratio, find its rank ``ω̄ = rank / (N + 1)`` among
    the ``N`` out-of-sample Sharpe ratios (1 = worst; ties share their average rank), and
    take the logit ``λ_c = ln(ω̄ / (1 - ω̄))``. Then ``PBO = share of λ_c ≤ 0``: how often
    the in-sample winner is no better than the median out of sample. Near 0 when selection
    picks something real; about 0.5 or more when it picks noise.

    All ``C(S, S/2)`` combinations are used (12,870 for S = 16); above ``max_combinations``
    that many are drawn at random with ``seed`` (the estimate then has sampling noise).

    Returns
    -------
    dict
        ``pbo`` (float in [0, 1]), ``logits`` (array, one per combination),
        ``n_combinations``, ``n_splits``.
    """
    matrix = np.asarray(returns_matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] < 2:
        raise InputError(f"returns_matrix must be T x N with N >= 2, not shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise InputError("returns_matrix must not contain NaN or inf")
    if isinstance(n_splits, bool) or not isinstance(n_splits, (int, np.integer)) \
            or n_splits < 2 or n_splits % 2:
        raise InputError(f"n_splits must be an even integer >= 2, not {n_splits!r}")
    T, N = matrix.shape
    if T < 2 * n_splits:
        raise InputError(f"returns_matrix has {T} rows: need at least 2 per split "
                         f"({2 * n_splits} for n_splits={n_splits})")
    if max_combinations < 1:
        raise InputError(f"max_combinations must be >= 1, not {max_combinations}")

    # Per-block sums let every combination's Sharpe ratios come from two matrix products.
    blocks = np.array_split(np.arange(T), n_splits)
    count = np.array([len(b) for b in blocks], dtype=np.float64)
    total = np.stack([matrix[b].sum(axis=0) for b in blocks])
    squares = np.stack([(matrix[b] ** 2).sum(axis=0) for b in blocks])

    masks = _combination_masks(n_splits, max_combinations, seed)
    logits = np.empty(len(masks))
    for lo in range(0, len(masks), 2048):
        chunk = masks[lo:lo + 2048]
        sr_in = _sharpe_from_sums(chunk @ count, chunk @ total, chunk @ squares)
        rest = 1.0 - chunk
        sr_out = _sharpe_from_sums(rest @ count, rest @ total, rest @ squares)
        best = np.argmax(sr_in, axis=1)
        chosen = sr_out[np.arange(len(chunk)), best][:, None]
        # Rank 1..N of the chosen configuration out of sample; ties share their average rank.
        rank = (sr_out < chosen).sum(axis=1) + ((sr_out == chosen).sum(axis=1) + 1) / 2
        omega = rank / (N + 1)
        logits[lo:lo + len(chunk)] = np.log(omega / (1.0 - omega))
    return {
        "pbo": float(np.mean(logits <= 0)),
        "logits": logits,
        "n_combinations": int(len(masks)),
        "n_splits": int(n_splits),
    }


def _combination_masks(n_splits: int, max_combinations: int, seed: int) -> np.ndarray:
    half = n_splits // 2
    if math.comb(n_splits, half) <= max_combinations:
        chosen = list(itertools.combinations(range(n_splits), half))
    else:
        rng = np.random.default_rng(seed)
        chosen = [rng.choice(n_splits, half, replace=False) for _ in range(max_combinations)]
    masks = np.zeros((len(chosen), n_splits))
    for i, blocks in enumerate(chosen):
        masks[i, list(blocks)] = 1.0
    return masks


def _sharpe_from_sums(n: np.ndarray, total: np.ndarray, squares: np.ndarray) -> np.ndarray:
    """Per-period Sharpe ratios from counts (K), sums and sums of squares (K × N)."""
    n = n[:, None]
    mean = total / n
    variance = np.maximum(squares - n * mean**2, 0.0) / (n - 1)
    std = np.sqrt(variance)
    with np.errstate(divide="ignore", invalid="ignore"):
        # A flat configuration (no variance) ranks by the sign of its mean: 0 if it never moved.
        flat = np.where(mean > 0, np.inf, np.where(mean < 0, -np.inf, 0.0))
        return np.where(std > 0, mean / np.where(std > 0, std, 1.0), flat)
