"""One survivor's run as an interactive chart: zoom and pan through price, trades and equity.

:func:`write_interactive_chart` writes a single HTML file made with `Bokeh
<https://bokeh.org>`_ whose JavaScript is inlined (``bokeh.resources.INLINE``), so it opens
from disk with no network: the close price with every kept trade (entry ▲/▼, exit ●, a line
between them green for a gain and red for a loss; hover for the numbers), and below it, on
the same time axis, the survivor's equity against buy and hold. Mouse wheel zooms the time
axis, dragging pans, the box tool zooms a rectangle, reset goes back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ReportError
from .trades import GAIN, LOSS

__all__ = ["write_interactive_chart"]


def _times(values) -> np.ndarray:
    """ISO strings (or any times) → naive UTC datetime64[ms] (Bokeh's datetime axis unit)."""
    index = pd.DatetimeIndex(pd.to_datetime(list(values), utc=True))
    return index.tz_convert("UTC").tz_localize(None).to_numpy(dtype="datetime64[ms]")


def _floats(values) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values], dtype="float64")


def write_interactive_chart(path, *, times, close, name: str, trades=(), equity=None, benchmark=None,
                            split=None, currency: str = "quote currency", title: str | None = None) -> Path:
    """Write the interactive chart of one survivor's run to ``path`` (one self-contained HTML).

    ``times``/``close``: the price on a common time axis; ``equity``/``benchmark``: the
    survivor's equity and buy and hold on that axis (None/NaN where absent); ``trades``: rows
    with ``entry_time``, ``exit_time``, ``entry_price``, ``exit_price``, ``size`` (negative:
    short), ``pnl``, and optionally ``pnl_pct``, ``bars``, ``period``; ``split``: the holdout's
    first time (shaded). Raises :class:`ReportError` when Bokeh is missing or the price is
    too short to draw.
    """
    try:
        from bokeh.embed import file_html
        from bokeh.layouts import column
        from bokeh.models import BoxAnnotation, ColumnDataSource, HoverTool, Label, NumeralTickFormatter, Span
        from bokeh.plotting import figure
        from bokeh.resources import INLINE
    except ImportError:
        raise ReportError("the interactive chart needs Bokeh (pip install bokeh)") from None

    t = _times(times)
    price = _floats(close)
    if len(t) < 2 or len(price) != len(t):
        raise ReportError(f"the interactive chart needs times and close prices of one length "
                          f"(got {len(t)}, {len(price)})")
    tools = "xpan,xwheel_zoom,box_zoom,reset,save"
    top = figure(height=460, sizing_mode="stretch_width", x_axis_type="datetime", tools=tools,
                 active_drag="xpan", active_scroll="xwheel_zoom", title=title or f"{name}: price and trades",
                 y_axis_label=f"price ({currency})")
    top.line(t, price, color="#3a3f44", line_width=1.2, legend_label="close")
    trades = list(trades or [])
    if trades:
        size = _floats([r.get("size") for r in trades])
        pnl = _floats([r.get("pnl") for r in trades])
        data = {
            "entry": _times([r["entry_time"] for r in trades]), "exit": _times([r["exit_time"] for r in trades]),
            "entry_price": _floats([r.get("entry_price") for r in trades]),
            "exit_price": _floats([r.get("exit_price") for r in trades]),
            "size": size, "pnl": pnl, "pnl_pct": _floats([r.get("pnl_pct") for r in trades]),
            "bars": [r.get("bars") for r in trades], "period": [r.get("period", "") for r in trades],
            "side": np.where(size < 0, "short", "long"),
            "marker": np.where(size < 0, "inverted_triangle", "triangle"),
            "colour": np.where(pnl > 0, GAIN, LOSS),
        }
        source = ColumnDataSource(data)
        top.segment("entry", "entry_price", "exit", "exit_price", source=source, color="colour", line_width=3,
                    alpha=0.85)
        entries = top.scatter("entry", "entry_price", source=source, marker="marker", size=12, fill_color="colour",
                              line_color="black", legend_label="entry (▲ long, ▼ short)")
        exits = top.scatter("exit", "exit_price", source=source, marker="circle", size=9, fill_color="white",
                            line_color="colour", line_width=2, legend_label="exit (green: gain, red: loss)")
        top.add_tools(HoverTool(renderers=[entries, exits], tooltips=[
            ("trade", "@side, @period"), ("entry", "@entry{%F %H:%M} at @entry_price{0,0.00}"),
            ("exit", "@exit{%F %H:%M} at @exit_price{0,0.00}"), ("size", "@size{0,0.0000}"),
            ("P&L", "@pnl{+0,0.00} (@pnl_pct{+0.00} %)"), ("bars held", "@bars")],
            formatters={"@entry": "datetime", "@exit": "datetime"}))
    top.x_range.range_padding = 0.01
    top.legend.location = "top_left"
    top.legend.click_policy = "hide"
    top.legend.background_fill_alpha = 0.75
    top.yaxis.formatter = NumeralTickFormatter(format="0,0")

    bottom = figure(height=260, sizing_mode="stretch_width", x_axis_type="datetime", x_range=top.x_range,
                    tools=tools, active_drag="xpan", active_scroll="xwheel_zoom", title="equity",
                    y_axis_label=f"equity ({currency})", x_axis_label="time (UTC)")
    if benchmark is not None:
        bottom.line(t, _floats(benchmark), color="black", alpha=0.55, line_width=1.6, legend_label="buy and hold")
    if equity is not None:
        bottom.line(t, _floats(equity), color="#1f77b4", line_width=2, legend_label="this survivor")
    bottom.add_tools(HoverTool(tooltips=[("time", "$x{%F %H:%M}"), ("value", "$y{0,0.00}")],
                               formatters={"$x": "datetime"}, mode="vline"))
    if bottom.legend:
        bottom.legend.location = "top_left"
        bottom.legend.click_policy = "hide"
        bottom.legend.background_fill_alpha = 0.75
    bottom.yaxis.formatter = NumeralTickFormatter(format="0,0")
    if split is not None:
        start = _times([split])[0]
        for fig in (top, bottom):
            fig.add_layout(BoxAnnotation(left=start, fill_color="#fff3cd", fill_alpha=0.6, level="underlay"))
            fig.add_layout(Span(location=start, dimension="height", line_color="#8a6d00", line_dash="dashed"))
        top.add_layout(Label(x=start, y=10, y_units="screen", x_offset=6, text="holdout (never selected on) →",
                             text_color="#8a6d00", text_font_size="12px"))
    html = file_html(column(top, bottom, sizing_mode="stretch_width"), INLINE,
                     title=title or f"{name} — distillbt interactive chart")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path
