"""The report's strategy-author sections, drawn into the report folder: parameter heatmaps,
the survivors' trades (charts, table data, ``trades.csv``) and the interactive chart.

:func:`draw_heatmaps` and :func:`draw_trades` write files and return what the HTML and
Markdown pages show; results saved before these sections existed (no ``"trades"`` in their
series) get no trades section, and records without ``params`` no heatmaps.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from .basket import BASKET_HEATMAP, BASKET_HOLDOUT
from .errors import ReportError
from .heatmap import plot_parameter_heatmap, varying_parameters
from .interactive import write_interactive_chart
from .trades import plot_survivor_trades, trades_of

__all__ = ["draw_heatmaps", "draw_trades", "TRADE_CHARTS", "INTERACTIVE", "TRADES_CSV", "PERIODS"]

#: Survivors (best screen rank first) that get a static trade chart.
TRADE_CHARTS = 4
INTERACTIVE = "interactive.html"
TRADES_CSV = "trades.csv"
PERIODS = ("screening", "holdout")
_CSV_FIELDS = ("rank", "configuration", "period", "entry_time", "exit_time", "entry_price", "exit_price", "size",
               "pnl", "pnl_pct", "bars")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", str(text)).strip("_")[:60] or "strategy"


def draw_heatmaps(records: list, summary: dict, out: Path) -> list[dict] | None:
    """One ``heatmap_<strategy>.png`` per strategy whose grid varies at least two parameters.

    Returns a list of ``{"strategy", "file"}`` (``file`` None and ``note`` set when it could not
    be drawn), ``[]`` when no strategy varies two parameters, None when the records carry no
    ``params`` (nothing to say)."""
    if not any(isinstance(r.get("params"), dict) for r in records):
        return None
    strategies = list(dict.fromkeys(str(r["strategy"]) for r in records if r.get("strategy")))
    objective = str(summary.get("objective", "return"))
    description = summary.get("score")
    if summary.get("instruments"):  # a basket's records carry the basket's scores
        description = f"{summary.get('basket_score', 'mean')} over {len(summary['instruments'])} instruments of {description}"
    drawn, used = [], {BASKET_HEATMAP, BASKET_HOLDOUT}  # the basket report's own heatmaps
    for strategy in strategies:
        if len(varying_parameters(records, strategy)) < 2:
            continue
        name = f"heatmap_{_slug(strategy)}.png"
        k = 2
        while name in used:  # two classes of one name from different files
            name, k = f"heatmap_{_slug(strategy)}_{k}.png", k + 1
        used.add(name)
        try:
            plot_parameter_heatmap(records, strategy, out / name, objective=objective, description=description)
            drawn.append({"strategy": strategy, "file": name})
        except ReportError as error:
            (out / name).unlink(missing_ok=True)
            drawn.append({"strategy": strategy, "file": None, "note": str(error)})
    return drawn


def _period_line(saved: dict | None) -> dict:
    """Period → ``{"count", "kept", "wins", "pnl_total"}`` or None where the results have none."""
    return {p: ({k: (saved or {})[p].get(k) for k in ("count", "kept", "wins", "pnl_total")}
                if (saved or {}).get(p) else None) for p in PERIODS}


def draw_trades(series: dict, records: list, out: Path, *, currency: str) -> dict | None:
    """The survivors' trades: charts of the best :data:`TRADE_CHARTS`, ``trades.csv`` and the
    interactive chart of the best survivor with a full backtest.

    Returns None when the results carry no trades (saved before they were collected), else
    ``{"survivors": [{"name", "rank", "periods", "rows", "chart", "chart_note"}], "interactive",
    "interactive_note", "csv"}``; a file that could not be written is None with its note."""
    for stale in (INTERACTIVE, TRADES_CSV):  # from an earlier report in this folder
        (out / stale).unlink(missing_ok=True)
    saved = series.get("trades")
    if not isinstance(saved, dict):
        return None
    equity = series.get("equity") or {}
    curves = equity.get("curves") or {}
    has_price = bool(equity.get("times")) and bool(equity.get("close"))
    survivors = sorted((r for r in records if r.get("survivor")),
                       key=lambda r: (r.get("screen_rank") is None, r.get("screen_rank") or 0))
    entries = []
    for k, record in enumerate(survivors):
        name = str(record["name"])
        rows = trades_of(saved.get(name))
        entry = {"name": name, "rank": record.get("screen_rank"), "periods": _period_line(saved.get(name)),
                 "rows": rows, "chart": None, "chart_note": None}
        if k < TRADE_CHARTS:
            file = f"trades_{k + 1}_{_slug(record.get('strategy') or 'survivor')}.png"
            if not has_price:
                entry["chart_note"] = "the results hold no price on the survivors' time axis (saved by an older screen)"
            else:
                missing = [p for p in PERIODS if entry["periods"][p] is None]
                note = f"no {' or '.join(missing)} trades in these results" if missing else None
                cut = [p for p in PERIODS if entry["periods"][p] and entry["periods"][p]["kept"] < entry["periods"][p]["count"]]
                if cut:
                    note = "; ".join(filter(None, [note, f"first {entry['periods'][cut[0]]['kept']} trades per period shown"]))
                try:
                    plot_survivor_trades(equity["times"], equity["close"], rows, out / file, name=name,
                                         equity=curves.get(name), benchmark=equity.get("buy_and_hold"),
                                         split=equity.get("holdout_start"), cash=equity.get("cash"),
                                         currency=currency, note=note)
                    entry["chart"] = file
                except ReportError as error:
                    (out / file).unlink(missing_ok=True)
                    entry["chart_note"] = str(error)
        entries.append(entry)
    result = {"survivors": entries, "interactive": None, "interactive_note": None, "csv": None}
    best = next((e for e in entries if e["name"] in curves or e["rows"]), None)
    if not has_price:
        result["interactive_note"] = "the results hold no price on the survivors' time axis (saved by an older screen)"
    elif best is None:
        result["interactive_note"] = "no survivor has a full backtest to chart"
    else:
        try:
            write_interactive_chart(out / INTERACTIVE, times=equity["times"], close=equity["close"], name=best["name"],
                                    trades=best["rows"], equity=curves.get(best["name"]),
                                    benchmark=equity.get("buy_and_hold"), split=equity.get("holdout_start"),
                                    currency=currency)
            result["interactive"] = INTERACTIVE
            result["interactive_name"] = best["name"]
        except ReportError as error:
            (out / INTERACTIVE).unlink(missing_ok=True)
            result["interactive_note"] = str(error)
    if any(e["rows"] for e in entries):
        with open(out / TRADES_CSV, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=_CSV_FIELDS)
            writer.writeheader()
            for e in entries:
                for row in e["rows"]:
                    writer.writerow({"rank": e["rank"], "configuration": e["name"],
                                     **{k: row.get(k) for k in _CSV_FIELDS[2:]}})
        result["csv"] = TRADES_CSV
    return result
