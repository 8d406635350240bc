"""Reports for people: comparison plots (PNG) and a one-folder HTML + Markdown report.

::

    from distillbt.report import write_report, plot_screen_vs_full

    write_report("screen.json", "report/")          # report/index.html, summary.md, *.png, interactive.html
    plot_screen_vs_full(result.to_dict()["records"], "scatter.png")

Plotting needs matplotlib (headless Agg backend); it is imported on first use of a plot or of
:func:`write_report`, so ``distillbt.screen_series`` (which the screen calls) stays light.
"""

from __future__ import annotations

from .errors import ReportError

__all__ = [
    "write_report",
    "load_results",
    "ReportError",
    "plot_screen_vs_full",
    "plot_equity_curves",
    "plot_regime_timeline",
    "plot_distributions",
    "plot_episodes",
    "plot_distillation_quality",
    "plot_time_spent",
    "plot_parameter_heatmap",
    "plot_survivor_trades",
    "write_interactive_chart",
    "plot_basket_heatmap",
    "plot_basket_holdout",
]

_LAZY = {
    "write_report": "html", "load_results": "html",
    **{name: "plots" for name in __all__ if name.startswith("plot_")},
    "plot_parameter_heatmap": "heatmap", "plot_survivor_trades": "trades", "write_interactive_chart": "interactive",
    "plot_basket_heatmap": "basket", "plot_basket_holdout": "basket",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
