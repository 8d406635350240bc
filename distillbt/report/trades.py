"""A survivor's trades: on the price (static PNG) and as table rows for the report.

:func:`plot_survivor_trades` draws one survivor's full backtests: the close price with each
closed trade as an entry triangle, an exit dot and a line between them (green for a gain, red
for a loss), and below it the survivor's equity against buy and hold. :func:`trades_of`
gathers a survivor's saved trades (``series["trades"]``, :func:`distillbt.screen_series.
trade_rows`) over both periods, in time order.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from .errors import ReportError
from .plots import as_floats, as_times, date_axis, shorten
from .style import PALETTE, figure

__all__ = ["plot_survivor_trades", "trades_of", "GAIN", "LOSS"]

GAIN = "#1a9850"
LOSS = "#d73027"
PERIOD_ORDER = ("screening", "holdout")


def trades_of(saved: dict | None) -> list[dict]:
    """One survivor's saved trades (period → ``trade_rows`` dict) as rows, each with its
    ``period``, screening first."""
    rows = []
    for period in PERIOD_ORDER:
        for row in ((saved or {}).get(period) or {}).get("rows") or []:
            rows.append({"period": period, **row})
    return rows


def _segments(trades):
    if not trades:
        return None
    entry = as_times([t["entry_time"] for t in trades])
    exit_ = as_times([t["exit_time"] for t in trades])
    f = lambda key: np.array([np.nan if t.get(key) is None else float(t[key]) for t in trades])  # noqa: E731
    return entry, exit_, f("entry_price"), f("exit_price"), f("size"), f("pnl")


def plot_survivor_trades(times, close, trades, path, *, name: str, equity=None, benchmark=None, split=None,
                         cash: float | None = None, currency: str = "quote currency", note: str | None = None,
                         title: str | None = None) -> Path:
    """One survivor's run: price with its trades above, its equity (and buy and hold) below.

    ``times``/``close``: the price on the common time axis (as in ``series["equity"]``);
    ``trades``: rows with ``entry_time``, ``exit_time``, ``entry_price``, ``exit_price``,
    ``size`` (negative: short) and ``pnl``. Long entries are ▲, short entries ▼, exits ●; the
    line from entry to exit is green for a gain and red for a loss (net of commission).
    ``equity``/``benchmark``: values on ``times`` (NaN/None where absent); ``split``: the
    holdout's first time (shaded). ``note`` is added to the title (e.g. trades left out).
    """
    t = as_times(times)
    price = as_floats(close, "close price")
    if len(t) < 2 or len(price) != len(t):
        raise ReportError(f"the trade chart needs times and close prices of one length (got {len(t)}, {len(price)})")
    drawn = _segments(list(trades or []))
    with figure(path) as fig:
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2.4, 1])
        top.plot(t, price, color="#3a3f44", lw=1.1, zorder=2, label="close")
        wins = 0
        if drawn is not None:
            entry, exit_, p_in, p_out, size, pnl = drawn
            gain = pnl > 0
            wins = int(gain.sum())
            colours = np.where(gain, GAIN, LOSS)
            lines = [[(a, b), (c, d)] for a, b, c, d in zip(mdates.date2num(entry), p_in, mdates.date2num(exit_), p_out)]
            top.add_collection(LineCollection(lines, colors=colours, linewidths=2.4, alpha=0.9, zorder=3))
            long = size >= 0
            # Smaller markers the more trades there are, so clusters stay legible.
            big, small = (110, 50) if len(entry) <= 80 else (50, 22) if len(entry) <= 200 else (30, 14)
            for mask, marker in ((long, "^"), (~long, "v")):
                if mask.any():
                    top.scatter(entry[mask], p_in[mask], marker=marker, s=big, c=colours[mask],
                                edgecolors="black", linewidths=0.8 if big > 30 else 0.5, zorder=4)
            top.scatter(exit_, p_out, marker="o", s=small, c="white", edgecolors=colours,
                        linewidths=1.6 if big > 30 else 1.0, zorder=4)
        finite = price[np.isfinite(price)]
        if len(finite) and finite.min() > 0 and finite.max() / finite.min() > 4:
            top.set_yscale("log")
        top.set_ylabel(f"price ({currency})")
        if equity is not None:
            values = as_floats(equity, "equity")
            bottom.plot(t, values, color=PALETTE[0], lw=1.8, label="this survivor", zorder=3)
        if benchmark is not None:
            bottom.plot(t, as_floats(benchmark, "buy-and-hold equity"), color="black", lw=1.6, alpha=0.6,
                        label="buy and hold", zorder=2)
        if cash:
            bottom.axhline(cash, color="#666666", lw=1, ls=":", zorder=1)
        bottom.set_ylabel(f"equity ({currency})")
        bottom.yaxis.set_major_locator(MaxNLocator(4))
        if split is not None:
            start = as_times([split])[0]
            for ax in (top, bottom):
                ax.axvspan(start, t[-1], color="#fff3cd", alpha=0.6, zorder=0, lw=0)
            top.text(start, 0.98, "  holdout →", transform=top.get_xaxis_transform(), va="top", ha="left",
                     fontsize=12, color="#8a6d00")
            top.text(start, 0.98, "← screening  ", transform=top.get_xaxis_transform(), va="top", ha="right",
                     fontsize=12, color="#555555")
        top.set_xlim(t[0], t[-1])
        bottom.set_xlabel("time (UTC)")
        date_axis(bottom)
        sides = [] if drawn is None else [(drawn[4] >= 0).any(), (drawn[4] < 0).any()]
        handles = [Line2D([], [], color="#3a3f44", lw=1.1, label="close")]
        for shown, marker, side in zip(sides, "^v", ("long", "short")):
            if shown:
                handles.append(Line2D([], [], marker=marker, color="#888888", markeredgecolor="black", lw=0,
                                      markersize=10, label=f"{side} entry"))
        if drawn is not None:
            handles += [Line2D([], [], marker="o", color="white", markeredgecolor="#555555", lw=0, markersize=8,
                               label="exit"),
                        Line2D([], [], color=GAIN, lw=2.4, label="winning trade"),
                        Line2D([], [], color=LOSS, lw=2.4, label="losing trade")]
        if equity is not None:
            handles.append(Line2D([], [], color=PALETTE[0], lw=1.8, label="equity"))
        if benchmark is not None:
            handles.append(Line2D([], [], color="black", alpha=0.6, lw=1.6, label="buy and hold"))
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=11)
        n = 0 if drawn is None else len(drawn[0])
        summary = f"{n} trades, {wins} won" if n else "no closed trades"
        top.set_title(title or f"{shorten(name, 80)} — {summary}{f' ({note})' if note else ''}", fontsize=15)
    return Path(path)
