"""The comparison plots of a report, one function each.

Every function takes plain data — lists, arrays, dicts as they appear in the screen results
JSON (``summary``, ``records``, ``series``) or in ``evaluate --out`` — and a path; it writes a
1600 × 900 PNG (see :mod:`distillbt.report.style`) and returns the path. Times may be ISO
strings, datetimes, pandas timestamps or numpy datetime64; naive times are UTC. Data too thin
to draw raises :class:`~distillbt.report.ReportError` naming what is missing.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.collections import PolyCollection
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, PercentFormatter

from .errors import ReportError
from .style import PALETTE, figure, regime_colour

__all__ = [
    "plot_screen_vs_full",
    "plot_equity_curves",
    "plot_regime_timeline",
    "plot_distributions",
    "plot_episodes",
    "plot_distillation_quality",
    "plot_time_spent",
    "timings_from_summary",
    "REGIME_ORDER",
    "as_times",
    "as_floats",
    "date_axis",
    "shorten",
]

#: Regimes in the order every plot lists them.
REGIME_ORDER = ("bull", "bear", "sideways", "volatile", "crash")

_METHOD_COLOURS = {
    "gradient": "#1f77b4", "distribution": "#17becf", "kernel": "#bcbd22", "exact-linear": "#e377c2",
    "kmedoids": "#8c564b", "herding": "#7f7f7f", "random": "#d62728",
}
_BASELINES = {"kmedoids", "herding", "random"}
_METRIC_LABELS = {
    "ic": "test IC (Spearman of prediction vs next return)",
    "accuracy": "test accuracy (share of directions right)",
    "r2": "test R² (regression)",
    "mse": "test MSE (scaled returns²)",
    "log_loss": "test log-loss (nats)",
    "coef_rel_error": "ridge coefficients: relative error vs full data",
}


# -- small helpers ----------------------------------------------------------------------------
def as_times(values) -> np.ndarray:
    """Any sequence of times → naive UTC ``datetime64[ns]`` (what matplotlib's date axis takes)."""
    index = pd.DatetimeIndex(pd.to_datetime(list(values) if not isinstance(values, pd.Index) else values,
                                            utc=True))
    return index.tz_convert("UTC").tz_localize(None).to_numpy(dtype="datetime64[ns]")


def as_floats(values, what: str) -> np.ndarray:
    """Numbers as float64, None → NaN; anything else raises :class:`ReportError` naming ``what``."""
    try:
        return np.asarray([np.nan if v is None else v for v in values], dtype="float64")
    except (TypeError, ValueError):
        raise ReportError(f"{what} must be numbers") from None


def shorten(name: str, limit: int = 48) -> str:
    """``name`` cut to ``limit`` characters with an ellipsis."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _regimes_in(order_from) -> list[str]:
    present = [str(r) for r in order_from]
    known = [r for r in REGIME_ORDER if r in present]
    return known + sorted(set(present) - set(known))


def date_axis(ax) -> None:
    """Concise date ticks (4 to 9) on ``ax``'s x axis."""
    locator = mdates.AutoDateLocator(minticks=4, maxticks=9)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


# -- screen vs full ---------------------------------------------------------------------------
def plot_screen_vs_full(records, path, *, spearman: float | None = None, label: int = 5, ranks: bool = False,
                        title: str | None = None) -> Path:
    """Screen estimate against full backtest, one point per configuration.

    ``records``: dicts with ``name``, ``screen_score``, ``full_score``, ``survivor`` and
    ``path`` (``vectorised``, ``surrogate…`` or ``full``), as in the screen results. Survivors
    are marked; model strategies are circles, plain strategies screened by a surrogate
    triangles, plain strategies screened by a full backtest squares (on the diagonal: their
    screen *is* a full backtest). The ``label`` best configurations by screen score are
    numbered and named in a key. ``spearman`` (default: computed over every plotted
    configuration, plain full fallbacks included, as the screen's summary does) goes in the title.
    ``ranks=True`` plots rank against rank (1 = best) — use it when the two scores are not on
    one scale.
    """
    from scipy.stats import rankdata, spearmanr

    rows = [r for r in records if r.get("screen_score") is not None and r.get("full_score") is not None
            and math.isfinite(r["screen_score"]) and math.isfinite(r["full_score"])]
    if not rows:
        raise ReportError("the screen-vs-full plot needs configurations with both screen_score and "
                          "full_score (run the screen with --validate)")
    screen = np.array([r["screen_score"] for r in rows])
    full = np.array([r["full_score"] for r in rows])
    paths = np.array([str(r.get("path") or "vectorised") for r in rows])
    model = paths == "vectorised"
    surrogate = np.char.startswith(paths.astype(str), "surrogate")
    plain_full = ~model & ~surrogate
    survivor = np.array([bool(r.get("survivor")) for r in rows])
    if spearman is None and len(rows) >= 3:
        spearman = float(spearmanr(screen, full).statistic)
    if ranks:
        x, y = rankdata(-screen, method="min"), rankdata(-full, method="min")
    else:
        x, y = screen, full

    with figure(path) as fig:
        ax = fig.add_subplot()
        lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        pad = (hi - lo) * 0.06 or 0.01
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="#444444", lw=1.2, ls="--", zorder=1,
                label="screen = full (diagonal)")
        kinds = [(model, "o", PALETTE[0], "model strategy, vectorised"),
                 (surrogate, "^", PALETTE[5], "plain strategy, surrogate"),
                 (plain_full, "s", PALETTE[4], "plain strategy, screen = full backtest")]
        for kind, marker, colour, name in kinds:
            for chosen, kw, status in ((~survivor, dict(s=60, color="#9aa5b1" if marker == "o" else "#c9b28f",
                                                        edgecolor="white", lw=0.6), "eliminated"),
                                       (survivor, dict(s=140, color=colour, edgecolor="black", lw=1.0), "survivor")):
                mask = kind & chosen
                if mask.any():
                    ax.scatter(x[mask], y[mask], marker=marker, label=f"{status} ({name}): {int(mask.sum())}",
                               zorder=3 if status == "eliminated" else 4, **kw)
        order = np.argsort(-screen, kind="stable")[: max(label, 0)]
        key, spots = [], []
        span = (float(max(x.max(), y.max())) - float(min(x.min(), y.min()))) or 1.0
        for number, i in enumerate(order, start=1):
            # Points within 3% of the axis of a labelled one share its label ("1,2"): two labels
            # there would overlap.
            near = next((s for s in spots if math.hypot(x[s[0]] - x[i], y[s[0]] - y[i]) < 0.03 * span), None)
            if near is None:
                spots.append((i, [str(number)]))
            else:
                near[1].append(str(number))
            key.append(f"{number}. {shorten(rows[i]['name'], 72)}")
        for i, numbers in spots:
            text = f"{numbers[0]}–{numbers[-1]}" if len(numbers) > 2 and \
                [int(n) for n in numbers] == list(range(int(numbers[0]), int(numbers[-1]) + 1)) else ",".join(numbers)
            ax.annotate(text, (x[i], y[i]), xytext=(8, 6), textcoords="offset points", fontsize=12,
                        fontweight="bold", zorder=4,
                        bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))
        if key:
            ax.text(0.99, 0.02, "best by screen score\n" + "\n".join(key), transform=ax.transAxes,
                    ha="right", va="bottom", multialignment="left", fontsize=11, family="monospace", zorder=5,
                    bbox=dict(boxstyle="round,pad=0.4", fc="white", ec="#bbbbbb", alpha=0.95))
        if ranks:
            ax.set_xlabel("screen rank (1 = best; the screen's estimate)")
            ax.set_ylabel("full backtest rank (1 = best; Backtrader)")
            ax.invert_xaxis()
            ax.invert_yaxis()
        else:
            ax.set_xlabel("screen score: log(final value / initial cash), the screen's estimate")
            ax.set_ylabel("full backtest score: log(final / initial cash)")
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        ax.legend(loc="upper left")
        rho = f"Spearman ρ = {spearman:.3f}" if spearman is not None else "Spearman ρ: too few points"
        ax.set_title(title or f"Screen estimate vs full backtest, screening period — {rho} "
                              f"({len(rows)} configurations, {int(plain_full.sum())} of them full fallbacks)")
    return Path(path)


# -- equity curves ----------------------------------------------------------------------------
def plot_equity_curves(times, curves: dict, path, *, benchmark=None, split=None, cash: float | None = None,
                       currency: str = "quote currency", title: str | None = None) -> Path:
    """Survivors' equity on real history against buy-and-hold, drawdowns below.

    ``times``: the common time axis; ``curves``: name → equity values on it (NaN/None where a
    curve has no value); ``benchmark``: buy-and-hold equity on the same axis. ``split``: the
    time the holdout period starts (shaded; curves after it come from the holdout backtests).
    ``cash``: the starting value, drawn as a reference line.
    """
    t = as_times(times)
    if len(t) < 2 or not curves:
        raise ReportError("the equity plot needs at least one curve of two or more values")
    series = {name: as_floats(v, f"equity of {name}") for name, v in curves.items()}
    for name, values in series.items():
        if len(values) != len(t):
            raise ReportError(f"equity of {name} has {len(values)} values for {len(t)} times")
    with figure(path) as fig:
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1.3])
        if benchmark is not None:
            bench = as_floats(benchmark, "buy-and-hold equity")
            top.plot(t, bench, color="black", lw=2.4, alpha=0.75, label="buy and hold", zorder=2)
            bottom.plot(t, _drawdown(bench), color="black", lw=2.0, alpha=0.75, zorder=2)
        for i, (name, values) in enumerate(series.items()):
            colour = PALETTE[i % len(PALETTE)]
            top.plot(t, values, color=colour, lw=1.6, label=shorten(name, 72), zorder=3)
            bottom.plot(t, _drawdown(values), color=colour, lw=1.2, zorder=3)
        if cash:
            top.axhline(cash, color="#666666", lw=1, ls=":", zorder=1)
        if split is not None:
            start = as_times([split])[0]
            for ax in (top, bottom):
                ax.axvspan(start, t[-1], color="#fff3cd", alpha=0.6, zorder=0, lw=0)
            top.text(start, 0.98, "  holdout (nothing was selected on it) →", transform=top.get_xaxis_transform(),
                     va="top", ha="left", fontsize=12, color="#8a6d00")
            top.text(start, 0.98, "← screening period  ", transform=top.get_xaxis_transform(),
                     va="top", ha="right", fontsize=12, color="#555555")
        top.set_ylabel(f"portfolio value ({currency})")
        bottom.set_ylabel("drawdown (%)")
        bottom.yaxis.set_major_formatter(PercentFormatter(decimals=0))
        bottom.yaxis.set_major_locator(MaxNLocator(4))
        bottom.set_xlabel("time (UTC)")
        date_axis(bottom)
        top.set_xlim(t[0], t[-1])
        # As many legend columns as the longest name allows: names of one strategy differ only
        # in their last parameters, so they must not be cut short.
        longest = max(len(shorten(n, 72)) for n in series)
        ncol = max(1, min(4, len(series) + (benchmark is not None), int(1500 / (7.5 * longest + 60))))
        fig.legend(loc="outside lower center", ncol=ncol, fontsize=11)
        top.set_title(title or "Survivors' full backtests on the candle history vs buy and hold")
    return Path(path)


def _drawdown(values: np.ndarray) -> np.ndarray:
    filled = pd.Series(values).ffill().to_numpy()
    peak = np.fmax.accumulate(np.where(np.isnan(filled), -np.inf, filled))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = 100.0 * (filled / peak - 1.0)
    out[~np.isfinite(out)] = np.nan
    out[np.isnan(values)] = np.nan
    return out


# -- regime timeline --------------------------------------------------------------------------
def plot_regime_timeline(times, price, regimes, path, *, periods: dict | None = None, shares: dict | None = None,
                         log: bool = True, currency: str = "quote currency", title: str | None = None) -> Path:
    """Close price (log scale) with each candle's regime shaded behind it, and each regime's share.

    ``regimes``: one label per time (None or "" where unlabelled, e.g. the features' warm-up).
    ``periods``: name → ``{"first", "last"}`` (training, screening, holdout), marked at their
    starts. ``shares``: regime → fraction, if computed on more candles than are drawn (default:
    from ``regimes``).
    """
    t = as_times(times)
    close = as_floats(price, "price")
    labels = np.array(["" if r is None else str(r) for r in regimes], dtype=object)
    if len(t) < 2 or len(close) != len(t) or len(labels) != len(t):
        raise ReportError(f"the regime timeline needs times, prices and regime labels of one length "
                          f"(got {len(t)}, {len(close)}, {len(labels)})")
    names = _regimes_in([r for r in labels if r])
    if shares is None:
        counted = pd.Series(labels[labels != ""]).value_counts(normalize=True)
        shares = {str(k): float(v) for k, v in counted.items()}
    with figure(path) as fig:
        main, side = fig.subplots(1, 2, width_ratios=[5, 1])
        # Each run of equal labels is one span from its first time to the next run's first time.
        edges = mdates.date2num(t)
        step = np.median(np.diff(edges)) if len(edges) > 1 else 1.0
        ends = np.append(edges[1:], edges[-1] + step)
        change = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
        stops = np.r_[change[1:], len(labels)]
        for name in names:
            spans = [(edges[a], ends[b - 1] - edges[a]) for a, b in zip(change, stops) if labels[a] == name]
            main.broken_barh(spans, (0, 1), transform=main.get_xaxis_transform(), color=regime_colour(name),
                             alpha=0.28, lw=0, zorder=0)
        main.plot(t, close, color="black", lw=1.1, zorder=2, label="close")
        finite = close[np.isfinite(close)]
        if log and len(finite) and np.all(finite > 0):
            main.set_yscale("log")
            # Decades alone leave a narrow price range with no tick at all: 1-2-5 steps, or evenly
            # spaced ticks when the whole range is within one decade.
            if finite.max() / finite.min() < 10:
                main.yaxis.set_major_locator(MaxNLocator(7))
            else:
                main.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            main.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 100 else f"{v:.3g}"))
            main.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        main.set_ylabel(f"close price ({currency}, {'log scale' if main.get_yscale() == 'log' else 'linear'})")
        main.set_xlabel("time (UTC)")
        main.set_xlim(t[0], t[-1])
        date_axis(main)
        for name, period in (periods or {}).items():
            start = as_times([period["first"]])[0]
            main.axvline(start, color="#222222", lw=1.4, ls="--", zorder=3)
            main.text(start, 1.0, f" {name}", transform=main.get_xaxis_transform(), va="bottom", ha="left",
                      fontsize=12, fontweight="bold")
        handles = [Patch(color=regime_colour(n), alpha=0.5, label=n) for n in names]
        handles.append(Line2D([], [], color="black", label="close"))
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles))
        main.set_title(title or "Regimes over time (labeller fitted on the training period)", pad=26)

        values = [100.0 * shares.get(n, 0.0) for n in names]
        bars = side.barh(names, values, color=[regime_colour(n) for n in names], alpha=0.8)
        side.invert_yaxis()
        side.bar_label(bars, labels=[f"{v:.1f}%" for v in values], padding=3, fontsize=12)
        side.set_xlim(0, max(values + [1.0]) * 1.35)
        side.set_xlabel("% of labelled candles")
        side.grid(axis="y", visible=False)
        side.set_title("share", pad=26)
    return Path(path)


# -- real vs distilled ------------------------------------------------------------------------
def plot_distributions(real: dict, distilled: dict | None, path, *, features=None, regimes=None,
                       title: str | None = None) -> Path:
    """Per-regime feature distributions: real training data (histogram) vs distilled points.

    ``real``: regime → feature → either raw values or ``{"edges": [...], "counts": [...]}`` (a
    histogram already binned). ``distilled``: ``{"features": names, "X": rows of values in that
    order, "weight": [...], "regime": [...]}`` — drawn as a weighted rug: one stem per point,
    its height proportional to the point's weight within its regime; points beyond the axis are
    drawn at its edge as arrows. Both must be on the same scale (distillbt uses standardised
    features). ``features``: which to draw (default: up to four of them).
    """
    regime_names = _regimes_in(regimes or [r for r in real if real[r]])
    if not regime_names:
        raise ReportError("the distribution plot needs real feature values for at least one regime")
    available = list(dict.fromkeys(f for r in regime_names for f in (real.get(r) or {})))
    features = list(features or available[:4])
    if not features:
        raise ReportError("the distribution plot needs at least one feature")
    points = None
    if distilled and len(distilled.get("X") or []):
        cols = list(distilled["features"])
        X = np.asarray(distilled["X"], dtype="float64").reshape(len(distilled["X"]), -1)
        points = {
            "X": {f: X[:, cols.index(f)] for f in features if f in cols},
            "weight": np.asarray(distilled.get("weight") or np.ones(len(X)), dtype="float64"),
            "regime": np.asarray([str(r) for r in distilled.get("regime") or [""] * len(X)], dtype=object),
        }
    # Fixed margins instead of constrained layout: with 20 panels the layout solver costs more
    # than the drawing, and this grid's needs are known.
    with figure(path, layout="none") as fig:
        axes = fig.subplots(len(regime_names), len(features), squeeze=False, sharex="col")
        fig.subplots_adjust(left=0.085, right=0.99, top=0.895, bottom=0.13, hspace=0.28, wspace=0.06)
        for i, regime in enumerate(regime_names):
            for j, feature in enumerate(features):
                ax = axes[i, j]
                hist = (real.get(regime) or {}).get(feature)
                top = _draw_histogram(ax, hist, regime_colour(regime))
                if points is not None and feature in points["X"]:
                    # a set distilled from the whole period at once ("all") stands for every regime
                    mask = (points["regime"] == regime) | (points["regime"] == "all")
                    _draw_rug(ax, points["X"][feature][mask], points["weight"][mask], top)
                ax.set_yticks([])
                ax.grid(axis="y", visible=False)
                ax.spines["left"].set_visible(False)
                if i == 0:
                    ax.set_title(feature, fontsize=14)
                if j == 0:
                    n = int((points["regime"] == regime).sum()) if points is not None else 0
                    shared = int((points["regime"] == "all").sum()) if points is not None else 0
                    count = f"{n} pts" if not shared else f"{shared} pts (all regimes)"
                    ax.set_ylabel(f"{regime}\n{count}", rotation=0, ha="right", va="center", fontsize=13,
                                  color=regime_colour(regime), fontweight="bold")
                if i == len(regime_names) - 1:
                    ax.set_xlabel("standardised value (training σ)", fontsize=12)
                ax.tick_params(axis="x", labelsize=11)
        handles = [Patch(color="#888888", alpha=0.45, label="real training candles (density)")]
        if points is not None:
            handles.append(Line2D([], [], color="black", marker="o", lw=1.5, markersize=6,
                                  label="distilled point (stem height ∝ weight)"))
        fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=2)
        fig.suptitle(title or "Real vs distilled training data, by regime and feature", y=0.985)
    return Path(path)


def _draw_histogram(ax, hist, colour) -> float:
    """Draws a density histogram; returns its peak height (the rug is scaled to it)."""
    if hist is None:
        ax.text(0.5, 0.5, "no real rows", transform=ax.transAxes, ha="center", va="center", color="#888888")
        return 1.0
    if isinstance(hist, dict):
        edges = np.asarray(hist["edges"], dtype="float64")
        counts = np.asarray(hist["counts"], dtype="float64")
    else:
        values = as_floats(hist, "feature values")
        values = values[np.isfinite(values)]
        if not len(values):
            return 1.0
        lo, hi = np.quantile(values, [0.005, 0.995])
        counts, edges = np.histogram(values, bins=40, range=(lo, hi if hi > lo else lo + 1))
    total = counts.sum() * np.diff(edges)
    density = np.divide(counts, total, out=np.zeros_like(counts, dtype="float64"), where=total > 0)
    ax.stairs(density, edges, fill=True, color=colour, alpha=0.45)
    ax.stairs(density, edges, color=colour, lw=1.2)
    ax.set_xlim(edges[0], edges[-1])
    return float(density.max()) or 1.0


def _draw_rug(ax, x, w, top) -> None:
    if not len(x):
        return
    w = w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))
    heights = 0.9 * top * w / w.max()
    lo, hi = ax.get_xlim()
    inside = (x >= lo) & (x <= hi)
    ax.vlines(x[inside], 0, heights[inside], color="black", lw=1.4, zorder=3)
    ax.scatter(x[inside], heights[inside], color="black", s=22, zorder=4)
    for side, mask, marker in ((lo, x < lo, "<"), (hi, x > hi, ">")):
        if mask.any():
            ax.scatter(np.full(mask.sum(), side), heights[mask], marker=marker, color="black", s=50,
                       zorder=4, clip_on=False)
    ax.set_ylim(0, top * 1.08)


# -- episodes ---------------------------------------------------------------------------------
def plot_episodes(episodes, path, *, columns: int | None = None, title: str | None = None) -> Path:
    """A grid of small candlestick charts, one per episode, with its regime in the title.

    ``episodes``: a list of dicts ``{"ohlc": n × 4 array (open, high, low, close), "regime":
    name, "title": optional text, "start": optional time}`` or of ``(ohlc, regime)`` pairs.
    Prices are shown relative to the episode's first open (%), so episodes of different
    price levels read alike.
    """
    items = []
    for episode in episodes:
        if isinstance(episode, dict):
            ohlc, regime, extra = episode.get("ohlc"), episode.get("regime"), episode
        else:
            (ohlc, regime), extra = episode, {}
        ohlc = np.asarray(ohlc, dtype="float64")
        if ohlc.ndim != 2 or ohlc.shape[1] < 4 or len(ohlc) < 1:
            raise ReportError("each episode needs an n × 4 array of open, high, low, close")
        items.append((ohlc[:, :4], str(regime) if regime is not None else "", extra))
    if not items:
        raise ReportError("plot_episodes needs at least one episode")
    n = len(items)
    cols = columns or min(n, 5 if n > 8 else 4 if n > 3 else n)
    rows = math.ceil(n / cols)
    with figure(path) as fig:
        axes = fig.subplots(rows, cols, squeeze=False)
        for k, ax in enumerate(axes.flat):
            if k >= n:
                ax.set_visible(False)
                continue
            ohlc, regime, extra = items[k]
            _candles(ax, 100.0 * (ohlc / ohlc[0, 0] - 1.0))
            text = extra.get("title") or regime or f"episode {k + 1}"
            ax.set_title(f" {text} ", fontsize=13, color="white", backgroundcolor=regime_colour(regime), pad=6)
            ax.set_xlim(-1, len(ohlc))
            ax.yaxis.set_major_formatter(PercentFormatter(decimals=1))
            ax.yaxis.set_major_locator(MaxNLocator(4))
            ax.xaxis.set_major_locator(MaxNLocator(4, integer=True))
            ax.tick_params(labelsize=10)
            if k % cols == 0:
                ax.set_ylabel("vs first open", fontsize=11)
            if extra.get("start") is not None:
                ax.set_xlabel(f"candles from {pd.Timestamp(extra['start']).strftime('%Y-%m-%d %H:%M')}", fontsize=11)
            elif k >= n - cols:
                ax.set_xlabel("candle", fontsize=11)
        fig.suptitle(title or "Episodes as candle charts, by regime")
    return Path(path)


def _candles(ax, ohlc) -> None:
    x = np.arange(len(ohlc))
    o, h, l, c = ohlc.T
    up = c >= o
    ax.vlines(x, l, h, color="#333333", lw=1.0, zorder=2)
    bottom, height = np.minimum(o, c), np.abs(c - o)
    height = np.where(height > 0, height, (h.max() - l.min()) * 0.002 or 1e-9)
    # One collection for all bodies: a patch per candle makes a grid of episodes slow to draw.
    boxes = [[(xi - 0.35, b), (xi + 0.35, b), (xi + 0.35, b + hi), (xi - 0.35, b + hi)]
             for xi, b, hi in zip(x, bottom, height)]
    ax.add_collection(PolyCollection(boxes, facecolors=np.where(up, "white", "#333333"), edgecolors="#333333",
                                     linewidths=0.8, zorder=3))
    ax.set_ylim(l.min() - 0.05 * (h.max() - l.min() or 1), h.max() + 0.05 * (h.max() - l.min() or 1))


# -- distillation quality ---------------------------------------------------------------------
def plot_distillation_quality(records, path, *, metric: str = "ic", learners=None, title: str | None = None) -> Path:
    """Test skill by method and size, with error bars from the seeds; full data as a band.

    ``records``: the ``records`` of ``python -m distillbt evaluate --out FILE`` (or that whole
    JSON): dicts with ``method``, ``size``, ``learner``, ``metric``, ``mean``, ``std``. One
    panel per learner that reports ``metric`` (at most three). Distillation methods are solid
    lines, baselines (random, k-medoids, herding) dashed, the full training set a grey band of
    mean ± std across seeds.
    """
    if isinstance(records, dict):
        records = records.get("records") or []
    rows = [r for r in records if r.get("metric") == metric]
    if not rows:
        raise ReportError(f"no evaluation records for metric {metric!r}")
    names = learners or list(dict.fromkeys(r["learner"] for r in rows))
    names = [l for l in names if any(r["learner"] == l for r in rows)][:3]
    if not names:
        raise ReportError(f"no evaluation records for learners {list(learners)} and metric {metric!r}")
    sizes = sorted({int(r["size"]) for r in rows if r["method"] != "full"})
    methods = [m for m in dict.fromkeys(r["method"] for r in rows) if m != "full"]
    methods.sort(key=lambda m: (m in _BASELINES, m))
    with figure(path) as fig:
        axes = fig.subplots(1, len(names), squeeze=False, sharey=True)[0]
        for ax, learner in zip(axes, names):
            mine = [r for r in rows if r["learner"] == learner]
            for full in (r for r in mine if r["method"] == "full"):
                lo, hi = full["mean"] - full["std"], full["mean"] + full["std"]
                ax.axhspan(lo, hi if hi > lo else lo + 1e-12, color="#bbbbbb", alpha=0.45, lw=0, zorder=0)
                ax.axhline(full["mean"], color="#555555", lw=2, zorder=1,
                           label=f"full training set ({int(full['size']):,} rows), ±1 std")
            for k, method in enumerate(methods):
                pts = sorted((r for r in mine if r["method"] == method), key=lambda r: r["size"])
                if not pts:
                    continue
                offset = 1.0 + 0.025 * (k - (len(methods) - 1) / 2)  # keeps error bars apart
                ax.errorbar([p["size"] * offset for p in pts], [p["mean"] for p in pts],
                            yerr=[p["std"] for p in pts], label=method, marker="o", markersize=7, capsize=4,
                            lw=2, color=_METHOD_COLOURS.get(method, PALETTE[k % len(PALETTE)]),
                            ls="--" if method in _BASELINES else "-", zorder=3)
            ax.set_xscale("log")
            if sizes:
                ax.set_xticks(sizes)
                ax.set_xticklabels([str(s) for s in sizes])
                ax.minorticks_off()
                ax.set_xlim(sizes[0] / 1.3, sizes[-1] * 1.3)
            ax.set_xlabel("distilled points (log scale)")
            ax.set_title(learner)
        axes[0].set_ylabel(_METRIC_LABELS.get(metric, metric))
        seeds = max((len(r.get("values") or []) for r in rows), default=0)
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 6))
        fig.suptitle(title or f"Distillation quality: test skill by method and size"
                              f"{f' (mean ± std over {seeds} seeds)' if seeds > 1 else ''}")
    return Path(path)


# -- time spent -------------------------------------------------------------------------------
def timings_from_summary(summary: dict) -> dict:
    """The timings of a screen results ``summary`` as label → seconds, in pipeline order."""
    full_label = ("full backtests of every\nconfiguration (validation)" if summary.get("validation") == "all" else
                  "full backtests of every\nconfiguration (estimated\nfrom a sample)")
    parts = [
        ("distillation", summary.get("distill_seconds")),
        ("model strategies\n(vectorised)", summary.get("model_seconds")),
        ("plain strategies\n(surrogates + fallbacks)", summary.get("plain_seconds")),
        ("the whole screen\n(before survivors)", summary.get("screen_seconds")),
        ("survivors' full backtests", summary.get("survivors_seconds")),
        (full_label, summary.get("estimated_full_seconds", summary.get("validation_full_seconds"))),
    ]
    return {label: float(v) for label, v in parts if v is not None and float(v) > 0}


def plot_time_spent(timings: dict, path, *, log: bool | None = None, title: str | None = None) -> Path:
    """Wall time per stage as horizontal bars, seconds annotated.

    ``timings``: label → seconds, or a screen results ``summary`` (see
    :func:`timings_from_summary`). ``log`` (default: when the longest bar is more than 20× the
    shortest) puts the time axis on a log scale.
    """
    if "screen_seconds" in timings or "full_seconds" in timings:
        speedup = timings.get("speedup")
        timings = timings_from_summary(timings)
    else:
        speedup = None
    items = [(str(k), float(v)) for k, v in timings.items() if v is not None and float(v) > 0]
    if not items:
        raise ReportError("the time plot needs at least one positive duration")
    values = np.array([v for _, v in items])
    if log is None:
        log = values.max() / values.min() > 20
    with figure(path) as fig:
        ax = fig.add_subplot()
        colours = [PALETTE[i % len(PALETTE)] for i in range(len(items))]
        bars = ax.barh([k for k, _ in items], values, color=colours, alpha=0.85)
        ax.invert_yaxis()
        ax.bar_label(bars, labels=[_seconds(v) for v in values], padding=6, fontsize=13)
        if log:
            ax.set_xscale("log")
            ax.set_xlim(values.min() / 2, values.max() * 6)
            ax.xaxis.set_major_locator(LogLocator(base=10))
        else:
            ax.set_xlim(0, values.max() * 1.2)
        ax.set_xlabel(f"wall time (seconds{', log scale' if log else ''})")
        ax.grid(axis="y", visible=False)
        note = f" — full backtests of every configuration took {speedup:.1f}× the screen" if speedup else ""
        ax.set_title(title or f"Time spent per stage{note}")
    return Path(path)


def _seconds(v: float) -> str:
    if v >= 120:
        return f"{v / 60:.1f} min"
    return f"{v:.2f} s" if v < 10 else f"{v:.1f} s"
