"""The report of a basket screen (:mod:`distillbt.basket_screen`): which configurations work
across the instruments, not on one of them by luck.

- :func:`plot_basket_heatmap` draws ``heatmap_basket.png``: configurations (rows, in the
  basket ranking's order; past :data:`TOP_ROWS` + :data:`BOTTOM_ROWS` the best and the worst)
  × instruments (columns) plus a separate *basket* column, coloured by screen score (the
  summary's ``objective``) on a diverging scale centred at 0, survivors starred and outlined.
- :func:`plot_basket_holdout` draws ``heatmap_basket_holdout.png``: the survivors' full
  backtests on every instrument, screening period beside holdout, on one colour scale.
- :func:`basket_tables` gives the basket ranking's tables as plain rows (instruments and
  their periods with the per-instrument rank agreement, the top configurations with their
  basket and per-instrument scores, the survivors per instrument), which
  :func:`distillbt.report.write_report` renders in ``index.html`` and ``summary.md``;
  :func:`draw_basket` writes the PNGs and collects it all.

A basket's results are recognised by ``summary["instruments"]`` (:func:`is_basket`); every
record carries ``instruments: {NAME: {"screen_score", "full_score", "holdout_score",
"path"}}`` and its top-level scores are the basket's.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from pathlib import Path

import numpy as np

from .errors import ReportError

__all__ = ["is_basket", "check_basket", "basket_grid", "short_labels", "instrument_labels", "plot_basket_heatmap", "plot_basket_holdout",
           "basket_tables", "draw_basket", "overview_rows", "BASKET_HEATMAP", "BASKET_HOLDOUT", "TOP_ROWS",
           "BOTTOM_ROWS", "TABLE_ROWS", "PLOT_CAPTIONS"]

BASKET_HEATMAP = "heatmap_basket.png"
BASKET_HOLDOUT = "heatmap_basket_holdout.png"
#: Rows of the heatmap when there are more configurations: the best and the worst.
TOP_ROWS, BOTTOM_ROWS = 30, 10
#: Configurations in the report's basket ranking table (the full list is the ranked table).
TABLE_ROWS = 20
#: A row label longer than this drops its parameter names (values in order, a legend says which).
MAX_LABEL = 40
_NO_SCORE = "#d9dde3"

#: Captions of the generic plots, as they read for a basket's results.
PLOT_CAPTIONS = {
    "screen_vs_full.png": (
        "One point per configuration, its basket scores on the screening period (the instruments' scores "
        "combined as the basket score says): x = the screen's estimate, y = full Backtrader backtests on every "
        "instrument. Points on the diagonal mean the screen told the truth; per-instrument agreement is in the "
        "basket ranking."),
}


# -- recognising and checking -------------------------------------------------------------------
def is_basket(results: dict) -> bool:
    """True for the results of a basket screen (``summary["instruments"]``)."""
    return isinstance((results.get("summary") or {}).get("instruments"), list)


def check_basket(results: dict, where: str = "results") -> None:
    """Raise :class:`ReportError` naming the first part a basket's results lack: instrument
    names, or a record's ``instruments`` mapping."""
    names = results["summary"]["instruments"]
    if not names or not all(isinstance(n, str) for n in names):
        raise ReportError(f"{where}: summary 'instruments' must list the basket's instrument names")
    for i, record in enumerate(results["records"]):
        per = record.get("instruments")
        if not isinstance(per, dict) or not all(isinstance(v, dict) for v in per.values()):
            raise ReportError(f"{where}: record {i} ({record.get('name', '?')}) has no 'instruments' "
                              "(name → scores), though the summary lists instruments")


# -- numbers -------------------------------------------------------------------------------------
def _float(value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def _ranked(records: list) -> list:
    """The records in the basket ranking's order: ranked ones by rank, the unranked after."""
    return sorted(records, key=lambda r: (r.get("screen_rank") is None, r.get("screen_rank") or 0))


def basket_grid(records: list, instruments: list, *, score: str = "screen_score", rows: list | None = None,
                top: int = TOP_ROWS, bottom: int = BOTTOM_ROWS) -> dict:
    """The numbers of a configurations × instruments heatmap.

    ``rows``: the records to show (default: all, in ranking order; past ``top + bottom`` the
    first ``top`` and the last ``bottom``). Returns ``{"records", "names", "values"`` (rows ×
    instruments of ``score``, NaN where missing)``, "basket"`` (the record's own ``score``)``,
    "survivor"`` (bool per row)``, "hidden"`` (configurations left out)``, "cut"`` (the row
    before which they were left out, or None)``, "total"}``."""
    rows = _ranked(records) if rows is None else list(rows)
    total, cut, hidden = len(rows), None, 0
    if len(rows) > top + bottom:
        hidden = len(rows) - top - bottom
        rows, cut = rows[:top] + rows[-bottom:], top
    values = np.array([[_float((r.get("instruments") or {}).get(name, {}).get(score)) for name in instruments]
                       for r in rows], dtype="float64").reshape(len(rows), len(instruments))
    return {"records": rows, "names": [str(r["name"]) for r in rows], "values": values,
            "basket": np.array([_float(r.get(score)) for r in rows], dtype="float64"),
            "survivor": [bool(r.get("survivor")) for r in rows], "hidden": hidden, "cut": cut, "total": total}


_KEY = re.compile(r"(?<=[(\s])([A-Za-z_]\w*)=")


def short_labels(records: list, *, limit: int = MAX_LABEL) -> tuple[list[str], list[str]]:
    """Row labels for configurations, and the legend they need.

    A strategy whose configuration names all fit in ``limit`` characters keeps them
    (``SmaCross(fast=10, slow=50)``); a longer one drops the parameter names and keeps the
    values in order (``PullbackTrailing(2, 25, 200)``), and the legend says the order
    (``PullbackTrailing(rsi_period, level, exit_period)``). What is still too long is cut in
    the middle with ``…``."""
    by_strategy: dict = {}
    for r in records:
        by_strategy.setdefault(_strategy_of(r), []).append(str(r["name"]))
    positional, legend = set(), []
    for strategy, names in by_strategy.items():
        if max(len(n) for n in names) <= limit:
            continue
        keys = {tuple(_KEY.findall(n)) for n in names}
        if len(keys) == 1 and next(iter(keys)):  # the same parameters in every name: their order is unambiguous
            positional.add(strategy)
            legend.append(f"{strategy}({', '.join(next(iter(keys)))})")
    labels = []
    for r in records:
        name = str(r["name"])
        if _strategy_of(r) in positional:
            name = _KEY.sub("", name)
        labels.append(name if len(name) <= limit else name[:limit - 8] + "…" + name[-7:])
    return labels, legend


def _strategy_of(record: dict) -> str:
    return str(record.get("strategy") or str(record["name"]).split("(", 1)[0])


def _short(name: str, limit: int) -> str:
    return name if len(name) <= limit else name[:limit - 5] + "…" + name[-4:]


# -- drawing --------------------------------------------------------------------------------------
def _norm_limits(arrays) -> tuple[float, float, bool]:
    """The colour scale's ends: the lowest and highest score, each cut at the 95th percentile
    of its side's |score| when a few outliers would wash out every other cell (then the scale
    is clipped, and says so)."""
    finite = np.concatenate([np.ravel(a) for a in arrays])
    finite = finite[np.isfinite(finite)]
    if not len(finite):
        raise ReportError("no configuration has a score on any instrument")
    ends, clipped = [], False
    for side in (-finite[finite < 0], finite[finite > 0]):
        if not len(side):
            ends.append(0.0)
            continue
        top, p95 = float(side.max()), float(np.percentile(side, 95))
        if len(side) >= 20 and p95 > 0 and top > 3 * p95:
            top, clipped = p95, True
        ends.append(top)
    return -ends[0], ends[1], clipped


def _format(limit: float, fits=None) -> str:
    """Cell text: enough decimals to tell small scores apart, one more when the cells have
    room (``fits(fmt)``: the font that format would get is readable)."""
    base = "{:+.0f}" if limit >= 100 else "{:+.1f}" if limit >= 10 else "{:+.2f}" if limit >= 1 else "{:+.3f}"
    finer = {"{:+.2f}": "{:+.3f}", "{:+.1f}": "{:+.2f}"}.get(base)
    return finer if finer and fits is not None and fits(finer) >= 9 else base


def _cells(ax, values, survivor, *, cmap, norm, fmt, font, gap=None):
    """One heatmap block: the cells, their values when ``font`` is big enough, survivor rows
    outlined, the gap row (left-out configurations) blank."""
    from matplotlib.patches import Rectangle

    ny, nx = values.shape
    ax.imshow(np.ma.masked_invalid(values), cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    for i in range(ny):
        if gap is not None and i == gap:
            ax.add_patch(Rectangle((-0.5, i - 0.5), nx, 1, fc="white", ec="none", zorder=2))
            continue
        if survivor[i]:
            ax.add_patch(Rectangle((-0.5 + 0.04, i - 0.5 + 0.06), nx - 0.08, 0.88, fill=False, ec="#f2a900", lw=2.8,
                                   zorder=3))
        if font < 7:
            continue
        for j in range(nx):
            value = values[i, j]
            if np.isfinite(value):
                r, g, b, _ = cmap(norm(value))
                light = 0.299 * r + 0.587 * g + 0.114 * b > 0.55
                ax.text(j, i, fmt.format(value), ha="center", va="center", fontsize=font,
                        color="black" if light else "white", zorder=2)
            else:
                ax.text(j, i, "–", ha="center", va="center", fontsize=font, color="#6b7b8c", zorder=2)
    ax.set_xlim(-0.5, nx - 0.5)
    ax.set_ylim(ny - 0.5, -0.5)
    ax.tick_params(length=0)


def instrument_labels(names: list, limit: int) -> list[str]:
    """Column labels for instrument names: a tail every name shares (``-5m-futures``) dropped,
    then each cut to ``limit`` characters from its start (tickers differ at the start), longer
    when that would make two labels the same."""
    names = [str(n) for n in names]
    tail = _common_tail(names) if len(names) > 1 else ""
    stems = [n[:len(n) - len(tail)] if tail else n for n in names]
    for width in range(max(limit, 4), max(len(n) for n in stems) + 1):
        labels = [n if len(n) <= width else n[:width - 1] + "…" for n in stems]
        if len(set(labels)) == len(labels):
            return labels
    return stems


def _common_tail(names: list) -> str:
    """The longest end every name shares that starts at a separator and leaves each name a stem."""
    tail = names[0]
    for n in names[1:]:
        while tail and not n.endswith(tail):
            tail = tail[1:]
    while tail and tail[0] not in "_-.:/ ":
        tail = tail[1:]
    return tail if tail and all(len(n) > len(tail) for n in names) else ""


def _x_labels(ax, labels: list, *, column_px: float) -> None:
    """Instrument names over the columns: shortened past a limit, turned when they would touch."""
    n = len(labels)
    text = instrument_labels(labels, 18 if n <= 8 else 14 if n <= 20 else 10)
    longest = max(len(t) for t in text)
    size = 13 if n <= 8 else 11 if n <= 20 else 9 if n <= 40 else 7
    wide = longest * size * 0.62 * 1.39 > 0.9 * column_px
    turned = wide and size * 1.39 * 1.6 > column_px  # even at 35° they would touch: upright
    rotation = 0 if not wide else 90 if turned else 35
    ax.set_xticks(range(n), text, fontsize=size, rotation=rotation,
                  ha="left" if rotation == 35 else "center", rotation_mode="anchor" if rotation == 35 else "default")
    ax.xaxis.tick_top()


def _y_labels(ax, labels: list, survivor: list, *, gap=None, hidden: int = 0) -> None:
    n = len(labels)
    size = 12 if n <= 20 else 10.5 if n <= 32 else 9
    ticks = [("★ " if s else "") + t for t, s in zip(labels, survivor)]
    if gap is not None:
        ticks[gap] = f"⋯ {hidden:,} configurations not shown ⋯"
    ax.set_yticks(range(n), ticks, fontsize=size)
    for k, label in enumerate(ax.get_yticklabels()):
        if gap is not None and k == gap:
            label.set_color("#5b6775")
            label.set_fontstyle("italic")
        elif survivor[k]:
            label.set_fontweight("bold")


def _font(values_shape, width_px: float, height_px: float, fmt: str, limit: float) -> float:
    """The value font that fits a cell (a digit ~0.62 em, 1 pt ≈ 1.39 px at 100 dpi); < 7: none."""
    ny, nx = values_shape
    chars = len(fmt.format(-limit))
    return min(12.0, 0.85 * width_px / max(nx, 1) / (chars * 0.62 * 1.39), 0.7 * height_px / max(ny, 1) / 1.39)


def _colourmap(lo: float, hi: float):
    """Red below 0, white at 0, blue above; with both signs each side spans its own range
    (as the parameter heatmaps; at least a quarter of the other's), with one sign the scale is
    symmetric so 0 stays white."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize, TwoSlopeNorm

    cmap = colormaps["RdBu"].with_extremes(bad=_NO_SCORE)
    if lo < 0 < hi:
        # Each side at least a quarter of the other: a +0.04 beside a -1.2 must not look as
        # strong as the -1.2 (it would, with each side stretched to its own extreme).
        return cmap, TwoSlopeNorm(0.0, min(lo, -hi / 4), max(hi, -lo / 4))
    bound = max(abs(lo), abs(hi), 1e-12)
    return cmap, Normalize(-bound, bound)


def _bar_ticks(bar, norm) -> None:
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.ticker import MaxNLocator

    if isinstance(norm, TwoSlopeNorm):  # each half its own ticks, or the short half gets none
        lo, hi = norm.vmin, norm.vmax
        ticks = np.r_[MaxNLocator(4).tick_values(lo, 0.0), MaxNLocator(4).tick_values(0.0, hi)]
        bar.set_ticks(np.unique(ticks[(ticks >= lo - 1e-12) & (ticks <= hi + 1e-12)]))


def _legend(fig, handles: list, params: list[str]) -> None:
    """The legend under the plot; the row labels' parameter order, when some dropped their
    parameter names, as its title (wrapped: one legend, so nothing overlaps)."""
    import textwrap

    title = None
    if params:
        title = "\n".join(textwrap.wrap("row labels give parameter values in the order  " + "  ·  ".join(params),
                                         width=190))
    legend = fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=12, frameon=False,
                        title=title, title_fontsize=10.5)
    if title:
        legend.get_title().set_color("#3b4652")


def _survivor_handles(survivors: int, what: str) -> list:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    return [Line2D([], [], marker="*", color="gold", markeredgecolor="black", markersize=15, lw=0,
                   label=f"bold name, outlined row: survivor ({survivors}) — {what}"),
            Rectangle((0, 0), 1, 1, fc=_NO_SCORE, ec="none", label="no score (failed or not run)")]


def plot_basket_heatmap(records: list, instruments: list, path, *, objective: str = "return",
                        description: str | None = None, basket_score: str = "mean", top: int = TOP_ROWS,
                        bottom: int = BOTTOM_ROWS, title: str | None = None) -> Path:
    """Configurations × instruments of the screen score, with the basket's score beside.

    ``records``: a basket screen's records (``name``, ``screen_rank``, ``survivor``,
    ``screen_score`` and ``instruments``); ``instruments``: the column order. Rows follow the
    basket ranking, best at the top; with more than ``top + bottom`` configurations the best
    ``top`` and the worst ``bottom`` are shown and the title says so. Colours: red below 0, blue
    above, white at 0, each side darkest at its extreme score (or at a quarter of the other
    side's, when its own is smaller), one scale for every column
    (a side is cut at its 95th percentile when a few outliers would flatten the rest; the colour
    bar then has arrows). Instrument names are shortened (a common tail left out, then cut, kept
    distinct); configuration names too (:func:`short_labels`). Survivors are starred, bold and
    outlined. Raises :class:`ReportError` when nothing has a score."""
    grid = basket_grid(records, instruments, top=top, bottom=bottom)
    if not grid["names"]:
        raise ReportError("no configuration to draw")
    values, basket, survivor, cut = grid["values"], grid["basket"][:, None], grid["survivor"], grid["cut"]
    labels, params = short_labels(grid["records"])
    if cut is not None:  # a blank row where the left-out configurations would be
        values = np.insert(values, cut, np.nan, axis=0)
        basket = np.insert(basket, cut, np.nan, axis=0)
        labels.insert(cut, "")
        survivor = survivor[:cut] + [False] + survivor[cut:]
    lo, hi, clipped = _norm_limits([values, basket])
    cmap, norm = _colourmap(lo, hi)
    limit = max(abs(lo), abs(hi))
    k = len(instruments)
    wide = max(1.0, k * 0.14)  # the basket column: wide enough for its number
    panel_px = 1600 - 420 - 120  # minus row labels and colour bar, roughly
    height_px = 900 - 230
    fmt = _format(limit, lambda f: _font(values.shape, panel_px * k / (k + wide), height_px, f, limit))
    n_survivors = sum(grid["survivor"])
    shown = (f"top {top} and bottom {bottom} of {grid['total']} configurations" if cut is not None
             else f"all {grid['total']} configurations")
    from .style import figure

    # np.errstate: a colour bar on a two-slope norm meets a degenerate transform in one of the
    # layout passes (matplotlib warns, the picture is right)
    with np.errstate(invalid="ignore", divide="ignore"), figure(path) as fig:
        left, right = fig.subplots(1, 2, sharey=True, width_ratios=[k, wide])
        font = _font(values.shape, panel_px * k / (k + wide), height_px, fmt, limit)
        _cells(left, values, survivor, cmap=cmap, norm=norm, fmt=fmt, font=font, gap=cut)
        _cells(right, basket, survivor, cmap=cmap, norm=norm, fmt=fmt,
               font=max(font, _font(basket.shape, panel_px * wide / (k + wide), height_px, fmt, limit)), gap=cut)
        _x_labels(left, instruments, column_px=panel_px * k / (k + wide) / k)
        right.set_xticks([0], ["basket"], fontsize=13, fontweight="bold")
        right.xaxis.tick_top()
        _y_labels(left, labels, survivor, gap=cut, hidden=grid["hidden"])
        right.tick_params(axis="y", labelleft=False)
        tail = _common_tail([str(n) for n in instruments]) if k > 1 else ""
        left.set_xlabel(f"instruments (each name ends in “{tail}”, left out above)" if tail else "instruments",
                        fontsize=13)
        right.set_xlabel(f"basket: {basket_score}", fontsize=13)
        image = left.images[0]
        bar = fig.colorbar(image, ax=[left, right], shrink=0.95, pad=0.015, aspect=32,
                           extend="both" if clipped else "neither")
        label = f"screen score — {objective}"
        if description:
            label += f": {description}"
        bar.set_label(label + (" (scale clipped)" if clipped else ""), fontsize=12)
        _bar_ticks(bar, norm)
        _legend(fig, _survivor_handles(n_survivors, "backtested in full on every instrument"), params)
        fig.suptitle(title or f"Basket ranking: screen score per instrument, screening period\n"
                              f"rows: {shown}, best basket score ({basket_score} over {k} instruments) first",
                     fontsize=16)
    return Path(path)


def plot_basket_holdout(records: list, instruments: list, path, *, objective: str = "return",
                        description: str | None = None, basket_score: str = "mean",
                        limit: int = TOP_ROWS + BOTTOM_ROWS, title: str | None = None) -> Path:
    """The survivors on every instrument: full Backtrader backtests on the screening period
    (left) and on the holdout that nothing was selected on (right), instruments × survivors and
    the basket's column, on one diverging colour scale centred at 0. At most ``limit`` survivors
    (the best). Raises :class:`ReportError` when no survivor has a holdout score."""
    survivors = [r for r in _ranked(records) if r.get("survivor")]
    if not any(math.isfinite(_float(r.get("holdout_score"))) or
               any(math.isfinite(_float(v.get("holdout_score"))) for v in (r.get("instruments") or {}).values())
               for r in survivors):
        raise ReportError("no survivor has a holdout backtest in these results")
    cut = len(survivors) > limit
    survivors = survivors[:limit]
    full = basket_grid(records, instruments, score="full_score", rows=survivors, top=limit, bottom=0)
    hold = basket_grid(records, instruments, score="holdout_score", rows=survivors, top=limit, bottom=0)
    blocks = [full["values"], full["basket"][:, None], hold["values"], hold["basket"][:, None]]
    lo, hi, clipped = _norm_limits(blocks)
    cmap, norm = _colourmap(lo, hi)
    bound = max(abs(lo), abs(hi))
    labels, params = short_labels(survivors)
    k = len(instruments)
    wide = max(1.0, k * 0.14)
    spacer = max(0.5, k * 0.1)  # keeps the two periods apart
    panel_px = (1600 - 420 - 120) * (k + wide) / (2 * (k + wide) + spacer)
    fmt = _format(bound, lambda f: _font(full["values"].shape, panel_px * k / (k + wide), 900 - 260, f, bound))
    flags = [True] * len(survivors)
    from .style import figure

    # np.errstate: a colour bar on a two-slope norm meets a degenerate transform in one of the
    # layout passes (matplotlib warns, the picture is right)
    with np.errstate(invalid="ignore", divide="ignore"), figure(path) as fig:
        *axes, = fig.subplots(1, 5, sharey=True, width_ratios=[k, wide, spacer, k, wide])
        axes.pop(2).set_visible(False)
        font = _font(full["values"].shape, panel_px * k / (k + wide), 900 - 260, fmt, bound)
        basket_font = max(font, _font((len(survivors), 1), panel_px * wide / (k + wide), 900 - 260, fmt, bound))
        for ax, block in zip(axes, blocks):
            # Every row is a survivor: no outline needed, the bold star labels say it.
            _cells(ax, block, [False] * len(survivors), cmap=cmap, norm=norm, fmt=fmt,
                   font=font if block.shape[1] > 1 else basket_font)
        for ax, heading in ((axes[0], "full backtest, screening period"), (axes[2], "holdout (never selected on)")):
            _x_labels(ax, instruments, column_px=panel_px * k / (k + wide) / k)
            ax.set_xlabel(heading, fontsize=14, fontweight="bold")
        for ax in (axes[1], axes[3]):
            ax.set_xticks([0], ["basket"], fontsize=13, fontweight="bold")
            ax.xaxis.tick_top()
            ax.set_xlabel(f"basket: {basket_score}", fontsize=12)
        _y_labels(axes[0], labels, flags)
        for ax in axes[1:]:
            ax.tick_params(axis="y", labelleft=False)
        bar = fig.colorbar(axes[0].images[0], ax=list(axes), shrink=0.95, pad=0.015, aspect=32,
                           extend="both" if clipped else "neither")
        label = f"{objective}" + (f": {description}" if description else "")
        bar.set_label(label + (" (scale clipped)" if clipped else ""), fontsize=12)
        _bar_ticks(bar, norm)
        _legend(fig, _survivor_handles(len(survivors), "starred, bold")[1:], params)
        which = f"the best {limit} survivors" if cut else f"the {len(survivors)} survivors"
        fig.suptitle(title or f"Survivors on every instrument: full backtests, screening vs holdout\n"
                              f"{which}, in basket-ranking order; '–' = no backtest", fontsize=16)
    return Path(path)


# -- tables ----------------------------------------------------------------------------------------
def _num(value, fmt: str = "{:+.4f}") -> str:
    value = _float(value)
    return "–" if math.isnan(value) else fmt.format(value)


def _when(value) -> str:
    try:
        return _dt.datetime.fromisoformat(str(value)).astimezone(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return str(value)


def _spearman(fidelity: dict | None) -> str:
    if not fidelity or fidelity.get("spearman") is None:
        return "–"
    interval = fidelity.get("spearman_ci90")
    text = f"{fidelity['spearman']:.3f}"
    if interval:
        text += f" ({interval[0]:.3f} – {interval[1]:.3f})"
    return text + f", n = {fidelity.get('spearman_configurations', fidelity.get('configurations', '?'))}"


def overview_rows(summary: dict) -> list[tuple[str, str]]:
    """The report's "Data and periods" key/value rows for a basket's summary."""
    names = [str(n) for n in summary["instruments"]]
    shown = ", ".join(names) if len(names) <= 12 else f"{', '.join(names[:10])}, … ({len(names) - 10} more)"
    synthetic = "  (SYNTHETIC sample market)" if summary.get("synthetic") else ""
    pool = summary.get("pool", "?")
    fitted = ("fitted once on the distilled points of every instrument pooled" if pool == "pooled"
              else "fitted per instrument on its own distilled points" if pool == "per-instrument" else f"fitted {pool}")
    rows = [("data source", f"basket of {len(names)} instruments: {shown}{synthetic}"),
            ("instruments / timeframe", f"{len(names)} / {summary.get('timeframe', '?')}"),
            ("configurations", f"{summary.get('configurations', '?')} × {len(names)} instruments = "
                               f"{summary.get('instrument_configurations', '?')} scored "
                               f"({summary.get('model_configurations', '?')} model: {fitted}, screened vectorised; "
                               f"{summary.get('plain_configurations', '?')} plain: see each record's path)"),
            ("score", f"{summary.get('objective', 'return')}: {summary.get('score', '?')}, per instrument"),
            ("basket score", f"the {summary.get('basket_score', '?')} of the instruments' scores: ranks the "
                             "configurations, chooses the survivors"),
            ("cash / commission", f"{_num(summary.get('cash'), '{:,.0f}')} / {_num(summary.get('commission'), '{:.4%}')}"
                                  " on each instrument")]
    for task, d in (summary.get("distilled") or {}).items():
        text = f"{d.get('method')}, {d.get('points')} points"
        if d.get("pooled"):
            text += f", pooled from {len(d['pooled'])} instruments"
        rows.append((f"distilled ({task})", text))
    if summary.get("errors"):
        rows.append(("configurations that failed", str(summary["errors"])))
    return rows


def basket_tables(results: dict, *, rows: int = TABLE_ROWS) -> dict:
    """The basket ranking's tables, as text: ``{"instruments", "ranking", "survivors"}``, each
    ``{"head", "rows", "numeric"`` (column positions), ``"highlight"`` (row positions)``,
    "caption"}`` (``survivors`` None without survivors), and ``"skipped"``: one line per
    instrument the screen skipped."""
    summary, records = results["summary"], _ranked(results["records"])
    names = [str(n) for n in summary["instruments"]]
    fidelity = summary.get("instruments_fidelity") or {}
    periods = summary.get("instrument_periods") or {}
    head = ["instrument", "first candle (UTC)", "last candle (UTC)"]
    order = list(summary.get("periods") or {}) or ["training", "screening", "holdout"]
    head += [f"{p} candles" for p in order]
    if fidelity:
        head.append("Spearman ρ screen vs full (90% CI)")
    table = []
    for name in names:
        mine = periods.get(name) or {}
        spans = [mine[p] for p in order if mine.get(p)]
        row = [name, _when(spans[0]["first"]) if spans else "–", _when(spans[-1]["last"]) if spans else "–"]
        for p in order:
            candles = (mine.get(p) or {}).get("candles")
            row.append("–" if candles is None else f"{candles:,}")
        if fidelity:
            row.append(_spearman(fidelity.get(name)))
        table.append(row)
    instruments = {"head": head, "rows": table, "numeric": set(range(3, 3 + len(order))), "highlight": set(),
                   "caption": "Every instrument is cut at the same moments (one calendar split of the basket); an "
                              "instrument with a shorter history or gaps has fewer candles in a period."
                              + (" Spearman ρ: rank agreement of the screen's scores with full backtests on that "
                                 "instrument alone." if fidelity else "")}

    top = records[:rows]
    head = ["rank", "survivor", "configuration", "path", "basket screen", "basket full", "basket holdout"] + names
    table = []
    for r in top:
        per = r.get("instruments") or {}
        table.append([str(r.get("screen_rank") or "–"), "✓" if r.get("survivor") else "", str(r["name"]),
                      str(r.get("path")), _num(r.get("screen_score")), _num(r.get("full_score")),
                      _num(r.get("holdout_score"))]
                     + [_num((per.get(n) or {}).get("screen_score"), "{:+.3f}") for n in names])
    more = (f" The best {len(top)} of {len(records)}; every configuration is in the ranked table below."
            if len(records) > len(top) else "")
    ranking = {"head": head, "rows": table, "numeric": {0} | set(range(4, len(head))),
               "highlight": {k for k, r in enumerate(top) if r.get("survivor")},
               "caption": f"Ranked by the basket score ({summary.get('basket_score', '?')} of the instruments' "
                          f"{summary.get('objective', 'return')} on the screening period); the instrument columns "
                          "hold each instrument's screen score. Full and holdout: survivors' full backtests on every "
                          f"instrument, combined the same way; path: the costliest any instrument took.{more}"}

    survivors = [r for r in records if r.get("survivor")]
    by_instrument = None
    if survivors:
        head = ["rank", "configuration", "deflated Sharpe", "basket full / holdout"] + [f"{n} full / holdout"
                                                                                      for n in names]
        table = []
        for r in survivors:
            per = r.get("instruments") or {}
            table.append([str(r.get("screen_rank") or "–"), str(r["name"]), _num(r.get("deflated_sharpe"), "{:.2f}"),
                          f"{_num(r.get('full_score'))} / {_num(r.get('holdout_score'))}"]
                         + [f"{_num((per.get(n) or {}).get('full_score'))} / "
                            f"{_num((per.get(n) or {}).get('holdout_score'))}" for n in names])
        by_instrument = {"head": head, "rows": table, "numeric": {0} | set(range(2, len(head))), "highlight": set(),
                         "caption": "Each survivor's full Backtrader backtest on every instrument: the screening "
                                    "period, then the holdout nothing was selected on. A configuration that works "
                                    "across the market holds up on most instruments, not on one. Deflated Sharpe: the "
                                    "probability its Sharpe ratio is real, counting every configuration × instrument "
                                    "tried."}
    skipped = [f"{p.get('instrument')}: {p.get('message')}" if not str(p.get("message", "")).startswith(
        str(p.get("instrument"))) else str(p.get("message")) for p in results.get("problems") or ()
        if p.get("instrument") is not None]
    return {"instruments": instruments, "ranking": ranking, "survivors": by_instrument, "skipped": skipped}


def draw_basket(results: dict, out: Path) -> dict:
    """Write :data:`BASKET_HEATMAP` (and :data:`BASKET_HOLDOUT` when survivors have holdout
    backtests) into ``out``; returns :func:`basket_tables` plus ``"heatmap"`` and ``"holdout"``
    (file names, None when not drawn) and ``"heatmap_note"`` / ``"holdout_note"`` (why not)."""
    summary, records = results["summary"], results["records"]
    names = [str(n) for n in summary["instruments"]]
    description = summary.get("score")
    common = {"objective": str(summary.get("objective", "return")), "description": description,
              "basket_score": str(summary.get("basket_score", "mean"))}
    out = Path(out)
    drawn = basket_tables(results)
    for key, file, plot in (("heatmap", BASKET_HEATMAP, plot_basket_heatmap),
                            ("holdout", BASKET_HOLDOUT, plot_basket_holdout)):
        drawn[key], drawn[f"{key}_note"] = None, None
        try:
            plot(records, names, out / file, **common)
            drawn[key] = file
        except ReportError as error:
            (out / file).unlink(missing_ok=True)  # none from an earlier report in this folder
            drawn[f"{key}_note"] = str(error)
    return drawn
