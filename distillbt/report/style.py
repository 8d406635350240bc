"""One look for every figure distillbt draws: sizes, fonts, colours.

Figures are 16 × 9 inches at :data:`DPI` 100, i.e. 1600 × 900 pixels, drawn on the headless
Agg canvas through :class:`matplotlib.figure.Figure` directly — never pyplot — so drawing
works without a display and leaves the caller's backend, open figures and rcParams alone.
The size is fixed (no ``bbox_inches="tight"``) so that every PNG of a report has the same
shape and tests can check it. Fonts are sized for that canvas shown at about half size in a
browser or a slide.
"""

from __future__ import annotations

import contextlib

import matplotlib
from matplotlib.figure import Figure

__all__ = ["FIGSIZE", "DPI", "REGIME_COLOURS", "PALETTE", "RC", "style", "figure", "save",
           "regime_colour"]

FIGSIZE = (16.0, 9.0)
DPI = 100

#: The same regime is the same colour in every plot and in the HTML report.
REGIME_COLOURS = {
    "bull": "#2ca02c",
    "bear": "#d62728",
    "sideways": "#8c8c8c",
    "volatile": "#ff7f0e",
    "crash": "#9467bd",
}
#: Series colours (strategies, methods), colour-blind friendly ("tab10" without the regime hues
#: first, so a survivor is rarely mistaken for a regime).
PALETTE = ["#1f77b4", "#17becf", "#bcbd22", "#e377c2", "#8c564b", "#ff7f0e", "#2ca02c",
           "#d62728", "#9467bd", "#7f7f7f", "#393b79", "#637939"]

RC = {
    "figure.figsize": FIGSIZE,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "font.size": 14,
    "axes.titlesize": 16,
    "axes.titleweight": "bold",
    "axes.labelsize": 14,
    "xtick.labelsize": 12,
    "ytick.labelsize": 12,
    "legend.fontsize": 12,
    "legend.framealpha": 0.9,
    "figure.titlesize": 20,
    "figure.titleweight": "bold",
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linestyle": "-",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "lines.linewidth": 1.8,
    "date.autoformatter.month": "%Y-%m",
    "date.autoformatter.day": "%Y-%m-%d",
}


def regime_colour(name) -> str:
    """The colour of a regime name; unknown names get a neutral grey-blue."""
    return REGIME_COLOURS.get(str(name), "#6b7b8c")


@contextlib.contextmanager
def style():
    """Apply distillbt's rcParams for the duration of the block (the caller's stay untouched)."""
    with matplotlib.rc_context(RC):
        yield


@contextlib.contextmanager
def figure(path, *, layout: str = "constrained", **figure_kw):
    """Make a styled figure, yield it, then save it to ``path`` as PNG.

    ``layout`` and ``figure_kw`` go to :class:`matplotlib.figure.Figure`. The figure is not
    registered with pyplot, so nothing needs closing and nothing leaks into a notebook.
    """
    with style():
        fig = Figure(figsize=FIGSIZE, dpi=DPI, layout=layout, **figure_kw)
        yield fig
        save(fig, path)


def save(fig, path) -> None:
    """Write ``fig`` as a PNG of exactly FIGSIZE × DPI pixels."""
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
