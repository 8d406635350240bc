"""Parameter heatmaps: how a strategy's screen score depends on its parameters, two at a time.

One PNG per strategy (:func:`plot_parameter_heatmap`): a panel per pair of the parameters its
grid varies, each cell the best screen score among the configurations with that pair of
values (the maximum over the other parameters — what a parameter sweep would pick there), the
cells holding a survivor outlined and starred. :func:`heatmap_grids` is the same data without
drawing, for callers that want the numbers.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np

from .errors import ReportError
from .style import figure

__all__ = ["plot_parameter_heatmap", "heatmap_grids", "varying_parameters", "MAX_PAIRS"]

#: Panels per strategy: the pairs of the (at most) four parameters that move the score most.
MAX_PAIRS = 6
_MAX_PARAMS = 4
_NO_SCORE = "#d9dde3"


def _key(value):
    """Sort key for parameter values of any type: numbers by value, then the rest by text."""
    if isinstance(value, bool):
        return (1, int(value), "")
    if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
        return (0, float(value), "")
    return (2, 0.0, repr(value))


def _label(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ",".join(_label(v) for v in value)
    return str(value)


def _score(record) -> float:
    value = record.get("screen_score")
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def _rows(records, strategy: str) -> list[dict]:
    return [r for r in records if r.get("strategy") == strategy and isinstance(r.get("params"), dict)]


def varying_parameters(records, strategy: str) -> dict:
    """Parameter name → its distinct values (sorted) over ``strategy``'s records, for the
    parameters that take more than one value, in the order the records name them."""
    values: dict = {}
    for record in _rows(records, strategy):
        for name, value in record["params"].items():
            seen = values.setdefault(name, {})
            seen.setdefault(repr(value), value)
    return {name: sorted(seen.values(), key=_key) for name, seen in values.items() if len(seen) > 1}


def _effect(rows, name, values) -> float:
    """How much the best score moves with ``name``: range of its per-value maxima."""
    best = []
    for value in values:
        scores = [_score(r) for r in rows if repr(r["params"].get(name)) == repr(value)]
        scores = [s for s in scores if not math.isnan(s)]
        if scores:
            best.append(max(scores))
    return max(best) - min(best) if len(best) > 1 else 0.0


def heatmap_grids(records, strategy: str, *, max_pairs: int = MAX_PAIRS) -> list[dict]:
    """The panels of ``strategy``'s heatmap, one per parameter pair.

    Each is ``{"x": name, "y": name, "x_values", "y_values", "score"`` (len(y) × len(x), NaN
    where no configuration has a score), ``"survivor"`` (same shape, bool), ``"count"`` (the
    configurations behind each cell)``}``. The parameters are those the grid varies; past
    four, the four whose values move the best score most. The axis with more values is x.
    """
    rows = _rows(records, strategy)
    varying = varying_parameters(records, strategy)
    if len(varying) < 2:
        return []
    names = list(varying)
    if len(names) > _MAX_PARAMS:
        ranked = sorted(names, key=lambda n: -_effect(rows, n, varying[n]))[:_MAX_PARAMS]
        names = [n for n in names if n in ranked]  # keep the author's order
    panels = []
    for a, b in list(itertools.combinations(names, 2))[:max_pairs]:
        x, y = (a, b) if len(varying[a]) >= len(varying[b]) else (b, a)
        xs, ys = varying[x], varying[y]
        xi = {repr(v): i for i, v in enumerate(xs)}
        yi = {repr(v): i for i, v in enumerate(ys)}
        score = np.full((len(ys), len(xs)), np.nan)
        survivor = np.zeros((len(ys), len(xs)), dtype=bool)
        count = np.zeros((len(ys), len(xs)), dtype=np.int64)
        for r in rows:
            if x not in r["params"] or y not in r["params"]:
                continue
            i, j = yi[repr(r["params"][y])], xi[repr(r["params"][x])]
            count[i, j] += 1
            s = _score(r)
            if not math.isnan(s) and not s <= score[i, j]:  # NaN-safe max
                score[i, j] = s
            survivor[i, j] |= bool(r.get("survivor"))
        panels.append({"x": x, "y": y, "x_values": xs, "y_values": ys, "score": score, "survivor": survivor,
                       "count": count})
    return panels


def _value_format(scores: np.ndarray) -> str:
    finite = np.abs(scores[np.isfinite(scores)])
    top = float(finite.max()) if len(finite) else 1.0
    return "{:+.0f}" if top >= 100 else "{:+.1f}" if top >= 10 else "{:+.2f}" if top >= 1 else "{:+.3f}"


def _ticks(ax, axis: str, values) -> None:
    """Every value labelled when they fit, else every k-th (so labels never overlap)."""
    n = len(values)
    longest = max(len(_label(v)) for v in values)
    room = 14 if axis == "x" else 18
    step = max(1, math.ceil(n * max(longest, 3) / (room * 6)))
    positions = list(range(0, n, step))
    labels = [_label(values[i]) for i in positions]
    if axis == "x":
        ax.set_xticks(positions, labels, rotation=30 if longest > 6 else 0, ha="right" if longest > 6 else "center")
    else:
        ax.set_yticks(positions, labels)


def plot_parameter_heatmap(records, strategy: str, path, *, objective: str = "return",
                           description: str | None = None, title: str | None = None) -> Path:
    """Screen score of ``strategy``'s configurations over each pair of its varying parameters.

    ``records``: the screen results' records (``strategy``, ``params``, ``screen_score``,
    ``survivor``). Each cell is the maximum screen score over the configurations sharing that
    pair of values (the other parameters at their best); cells holding a survivor are outlined
    in black and starred; grey cells have no score (not in the grid, or failed). The colour
    bar is labelled with ``objective`` (and ``description``, what it measures); colours are
    red below 0 and blue above, darker further from 0. Raises
    :class:`ReportError` when fewer than two parameters vary or no configuration has a score.
    """
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap, Normalize, TwoSlopeNorm
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import MaxNLocator

    panels = heatmap_grids(records, strategy)
    if not panels:
        raise ReportError(f"{strategy}: fewer than two parameters vary, no heatmap to draw")
    cells = np.concatenate([p["score"].ravel() for p in panels])
    finite = cells[np.isfinite(cells)]
    if not len(finite):
        raise ReportError(f"{strategy}: no configuration has a screen score")
    lo, hi = float(finite.min()), float(finite.max())
    # Red is below zero and blue above in every heatmap, darker further from zero.
    if lo < 0 < hi:
        cmap, norm = colormaps["RdBu"], TwoSlopeNorm(0.0, lo, hi)
    else:
        # One sign only: the full contrast of one hue, but never white (white means zero).
        part = colormaps["Reds_r"](np.linspace(0.0, 0.8, 256)) if hi <= 0 else \
            colormaps["Blues"](np.linspace(0.2, 1.0, 256))
        cmap, norm = ListedColormap(part), Normalize(lo, hi if hi > lo else lo + 1e-12)
    cmap = cmap.with_extremes(bad=_NO_SCORE)
    fmt = _value_format(cells)
    n = len(panels)
    cols = n if n <= 3 else 2 if n == 4 else 3
    rows = math.ceil(n / cols)
    n_configs = len(_rows(records, strategy))
    n_survivors = sum(1 for r in _rows(records, strategy) if r.get("survivor"))
    with figure(path) as fig:
        axes = fig.subplots(rows, cols, squeeze=False)
        image = None
        for k, ax in enumerate(axes.flat):
            if k >= n:
                ax.set_visible(False)
                continue
            p = panels[k]
            score = np.ma.masked_invalid(p["score"])
            ny, nx = score.shape
            image = ax.imshow(score, cmap=cmap, norm=norm, origin="lower", aspect="auto",
                              interpolation="nearest")
            ax.grid(False)
            for spine in ax.spines.values():
                spine.set_visible(False)
            # Cell text only where it fits: the font that puts the widest value in ~80 % of a
            # cell (1 pt ≈ 1.39 px at 100 dpi; a digit is ~0.6 em wide), none below 8 pt.
            width_px = 1400 / cols / max(nx, 1)
            height_px = 700 / rows / max(ny, 1)
            size = min(13.0, 0.8 * width_px / (len(fmt.format(-lo if lo < 0 else hi)) * 0.62 * 1.39),
                       height_px / 2.5)
            for i in range(ny):
                for j in range(nx):
                    value = p["score"][i, j]
                    if p["survivor"][i, j]:
                        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="black", lw=3.2, zorder=3))
                        ax.plot(j + 0.5 - 0.16, i + 0.5 - 0.2, marker="*", markersize=max(10, min(20, size * 1.5)),
                                color="gold", markeredgecolor="black", markeredgewidth=1.0, zorder=4,
                                transform=ax.transData)
                    if size >= 8:
                        if np.isfinite(value):
                            shade = cmap(norm(value))
                            light = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2] > 0.55
                            ax.text(j, i, fmt.format(value), ha="center", va="center", fontsize=size,
                                    color="black" if light else "white", zorder=2)
                        else:
                            ax.text(j, i, "–", ha="center", va="center", fontsize=size, color="#6b7b8c")
            ax.set_xlim(-0.5, nx - 0.5)
            ax.set_ylim(-0.5, ny - 0.5)
            _ticks(ax, "x", p["x_values"])
            _ticks(ax, "y", p["y_values"])
            ax.tick_params(length=0)
            ax.set_xlabel(p["x"])
            ax.set_ylabel(p["y"])
            ax.set_title(f"{p['y']} × {p['x']}", fontsize=14)
        label = f"screen score — {objective}"
        if description:
            label += f": {description}"
        bar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.92, pad=0.015, aspect=30)
        bar.set_label(label, fontsize=13)
        if isinstance(norm, TwoSlopeNorm):
            # The two halves have their own scales: ticks for each, or the short half gets none.
            ticks = np.r_[MaxNLocator(4).tick_values(lo, 0.0), MaxNLocator(4).tick_values(0.0, hi)]
            bar.set_ticks(np.unique(ticks[(ticks >= lo) & (ticks <= hi)]))
        from matplotlib.lines import Line2D

        fig.legend(handles=[Line2D([], [], marker="*", color="gold", markeredgecolor="black", markersize=16, lw=0,
                                   label=f"outlined + star: the cell holds a survivor ({n_survivors} of this strategy's "
                                         "configurations survived)"),
                            Rectangle((0, 0), 1, 1, fc=_NO_SCORE, ec="none", label="no score (not screened / failed)")],
                   loc="outside lower center", ncol=2, fontsize=12)
        shown = list(dict.fromkeys(n for p in panels for n in (p["x"], p["y"])))
        varying = len(varying_parameters(records, strategy))
        which = "" if len(shown) == varying else f"; the {len(shown)} of {varying} varying parameters that move it most"
        fig.suptitle(title or f"{strategy}: screen score by parameter pair, screening period\n"
                              f"each cell = the MAX over the other parameters ({n_configs} configurations{which})",
                     fontsize=16)
    return Path(path)
