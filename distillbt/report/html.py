"""The one-folder report: ``index.html`` + ``summary.md`` + the plots as PNG beside them.

The HTML is self-contained: inline CSS, no script, no web fonts, no CDN — it opens from disk
with no network. Images are files in the same folder (relative links, so the folder can be
moved or zipped) or, with ``embed_images=True``, base64 data inside the page. Beside them:
a parameter heatmap per strategy (``heatmap_*.png``), the survivors' trades (``trades_*.png``,
``trades.csv``) and ``interactive.html``, one survivor's run to zoom and pan, its Bokeh
JavaScript inlined (:mod:`distillbt.report.authoring`). A basket screen's results get the
basket ranking and its configurations × instruments heatmaps (:mod:`distillbt.report.basket`).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
from pathlib import Path

from .basket import PLOT_CAPTIONS as _BASKET_CAPTIONS
from .basket import check_basket, draw_basket, is_basket, overview_rows
from .errors import ReportError

__all__ = ["write_report", "load_results", "PLOTS"]

#: File name → (section title, caption) of every plot a report can hold, in page order.
PLOTS = {
    "screen_vs_full.png": (
        "Screen estimate vs full backtest",
        "One point per configuration on the screening period: x = the screen's score (model fitted on "
        "distilled points, executed vectorised), y = a full Backtrader backtest of the same configuration "
        "fitted on the real training candles. Points on the diagonal mean the screen told the truth; the "
        "rank agreement (Spearman) is what selection depends on."),
    "equity.png": (
        "Survivors on real history",
        "Full Backtrader backtests of the survivors on real candles — the screening period, then the "
        "holdout period that nothing was selected on (chained onto the screening leg) — against buy and "
        "hold. Drawdowns below."),
    "regimes.png": (
        "Regime timeline",
        "Close price with the regime of each candle shaded (labeller fitted on the training period, "
        "causal), the periods' starts marked, and each regime's share of the history."),
    "distributions.png": (
        "Real vs distilled data",
        "Per regime, the distribution of a few features over the real training candles (histogram) and "
        "the distilled points the models were fitted on (stems; height ∝ weight)."),
    "episodes.png": (
        "Episodes by regime",
        "Stretches of real training candles from the longest run of each regime, drawn as candle charts "
        "(price relative to the first open)."),
    "distillation_quality.png": (
        "Distillation quality",
        "Test-period skill of learners trained on distilled sets, by method and size (mean ± std over "
        "seeds), against baselines and the full training set (grey band)."),
    "time_spent.png": (
        "Time spent",
        "Wall time of each stage of this run."),
}

_RECORD_KEYS = ("name", "screen_score", "screen_rank", "survivor", "path")
_STATS = (("total_return_pct", "total return %", "{:+.2f}"), ("cagr_pct", "CAGR %", "{:+.1f}"),
          ("sharpe", "Sharpe", "{:.2f}"), ("sortino", "Sortino", "{:.2f}"),
          ("max_drawdown_pct", "max DD %", "{:.2f}"), ("n_trades", "trades", "{:.0f}"),
          ("win_rate_pct", "win rate %", "{:.1f}"), ("profit_factor", "profit factor", "{:.2f}"),
          ("exposure_pct", "exposure %", "{:.1f}"))


# -- input --------------------------------------------------------------------------------------
def load_results(results) -> dict:
    """Screen results as a checked dict, from a path, a JSON string's file, a dict or a ScreenResult.

    Raises :class:`ReportError` naming the first problem: a missing or unreadable file, text that
    is not JSON, or a missing part (``summary``, its ``periods``, ``records`` and their keys).
    """
    where = "results"
    if hasattr(results, "to_dict"):
        results = results.to_dict()
    elif isinstance(results, (str, Path)):
        path = Path(results)
        where = str(path)
        if not path.is_file():
            raise ReportError(f"{path}: no such results file")
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ReportError(f"{path}: not a text file (expected the JSON of `screen --out`)") from None
        except json.JSONDecodeError as error:
            raise ReportError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(results, dict):
        raise ReportError(f"{where}: expected a JSON object with 'summary' and 'records', "
                          f"got {type(results).__name__}")
    summary, records = results.get("summary"), results.get("records")
    if not isinstance(summary, dict):
        raise ReportError(f"{where}: no 'summary' object (is this the JSON of `screen --out`?)")
    if not isinstance(records, list) or not records:
        raise ReportError(f"{where}: no 'records' (one per configuration) — nothing to report")
    for key in ("source", "periods"):
        if key not in summary:
            raise ReportError(f"{where}: summary has no {key!r}")
    periods = summary["periods"]
    if not isinstance(periods, dict) or not all(isinstance(p, dict) and {"first", "last"} <= set(p)
                                                for p in periods.values()):
        raise ReportError(f"{where}: summary 'periods' must map each period to its 'first' and 'last' time")
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise ReportError(f"{where}: record {i} is not an object")
        missing = [k for k in _RECORD_KEYS if k not in record]
        if missing:
            raise ReportError(f"{where}: record {i} ({record.get('name', '?')}) has no {missing[0]!r}")
    series = results.get("series")
    if series is not None and not isinstance(series, dict):
        raise ReportError(f"{where}: 'series' must be an object")
    if is_basket(results):
        check_basket(results, where)
    return results


def _load_evaluation(evaluation):
    if evaluation is None:
        return None
    if isinstance(evaluation, (str, Path)):
        path = Path(evaluation)
        if not path.is_file():
            raise ReportError(f"{path}: no such evaluation file")
        try:
            evaluation = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ReportError(f"{path}: not the JSON of `evaluate --out`") from None
    if hasattr(evaluation, "to_dict"):
        evaluation = evaluation.to_dict()
    if isinstance(evaluation, dict):
        evaluation = evaluation.get("records")
    if not isinstance(evaluation, list):
        raise ReportError("evaluation: expected the JSON of `evaluate --out` (with 'records')")
    return evaluation


# -- the report ----------------------------------------------------------------------------------
def write_report(results, out_dir, *, candles=None, evaluation=None, title: str | None = None,
                 embed_images: bool = False) -> Path:
    """Write ``index.html``, ``summary.md`` and the plots into ``out_dir``; returns the HTML's path.

    Beside them: ``heatmap_<strategy>.png`` for each strategy whose grid varies two or more
    parameters (screen score over each pair, the max over the others, survivors starred), and,
    for results that carry the survivors' trades, ``trades_<k>_….png`` (price with entries
    and exits, equity below; the best survivors), ``trades.csv`` and ``interactive.html`` (the
    best survivor's run, zoom and pan; Bokeh with its JavaScript inlined, opens offline).
    A basket screen's results (:func:`distillbt.basket_screen.screen_basket`) also get the
    basket ranking (instruments and periods, per-instrument scores and rank agreement, skipped
    instruments) and ``heatmap_basket.png`` / ``heatmap_basket_holdout.png``
    (:mod:`distillbt.report.basket`).

    ``results``: the screen results (a path to the JSON of ``screen --out``, its dict, or a
    :class:`~distillbt.screen.ScreenResult`). ``candles``: the same :class:`Candles` the screen
    ran on, to draw the price/regime plots for results saved without their ``series``.
    ``evaluation``: the JSON (path or dict) of ``evaluate --out``, for the distillation-quality
    plot. ``embed_images``: put the PNGs inside the HTML as base64 (one file to mail) instead of
    beside it. A plot whose data is missing is left out and the report says why; a malformed
    ``results`` raises :class:`ReportError`.
    """
    from . import authoring, plots

    results = load_results(results)
    is_basket_ = is_basket(results)
    if is_basket_ and candles is not None:
        raise ReportError("candles= draws one instrument's price and regimes; a basket screen's report has none")
    eval_records = _load_evaluation(evaluation)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary, records = results["summary"], results["records"]
    series = dict(results.get("series") or {})
    if candles is not None and not all(k in series for k in ("price", "regimes", "episodes")):
        from ..screen_series import series_from_candles

        try:
            series = {**series_from_candles(results["summary"]["periods"], candles), **series}
        except ValueError as error:
            raise ReportError(str(error)) from None
    currency = _currency(summary.get("symbol"))

    def draw(name, fn):
        try:
            fn(out / name)
            return None
        except ReportError as error:
            (out / name).unlink(missing_ok=True)
            return str(error)

    def need(key, what):
        if not series.get(key):
            if is_basket_:
                raise ReportError(f"a basket screen has no single {what}: see the basket ranking for each instrument")
            raise ReportError(f"the results hold no {what} (saved by an older screen? rerun it, or pass candles)")
        return series[key]

    def equity(path):
        e = need("equity", "equity curves")
        if not e.get("curves"):
            raise ReportError("no survivor has a full backtest to draw")
        plots.plot_equity_curves(e["times"], e["curves"], path, benchmark=e.get("buy_and_hold"),
                                 split=e.get("holdout_start"), cash=e.get("cash"), currency=currency)

    def regimes(path):
        price, labels = need("price", "price series"), need("regimes", "regime labels")
        plots.plot_regime_timeline(price["times"], price["close"], labels["labels"], path,
                                   periods=summary["periods"], shares=(labels.get("shares") or {}).get("all"),
                                   currency=currency)

    def distributions(path):
        d = need("distributions", "feature distributions")
        sets = d.get("distilled") or {}
        task = "classification" if "classification" in sets else next(iter(sets), None)
        chosen = sets.get(task) if task else None
        method = f"{chosen['method']} ({task}), {len(chosen['X'])} points" if chosen else "none"
        plots.plot_distributions(d["real"], chosen, path, features=d.get("features"),
                                 title=f"Real vs distilled training data by regime — distilled set: {method}")

    def episodes(path):
        plots.plot_episodes(need("episodes", "episodes"), path,
                            title="Real training episodes by regime (longest run of each), as candle charts")

    def quality(path):
        if eval_records is None:
            raise ReportError("no evaluation given (write one with `python -m distillbt evaluate --out "
                              "FILE` and pass it with --evaluation FILE)")
        plots.plot_distillation_quality(eval_records, path)

    notes = {
        "screen_vs_full.png": draw("screen_vs_full.png", lambda p: plots.plot_screen_vs_full(
            records, p, spearman=summary.get("spearman"))),
        "equity.png": draw("equity.png", equity),
        "regimes.png": draw("regimes.png", regimes),
        "distributions.png": draw("distributions.png", distributions),
        "episodes.png": draw("episodes.png", episodes),
        "distillation_quality.png": draw("distillation_quality.png", quality),
        "time_spent.png": draw("time_spent.png", lambda p: plots.plot_time_spent(summary, p)),
    }
    extra = {"heatmaps": authoring.draw_heatmaps(records, summary, out),
             "trades": authoring.draw_trades(series, records, out, currency=currency),
             "basket": draw_basket(results, out) if is_basket_ else None}
    if is_basket_:
        names = summary["instruments"]
        shown = ", ".join(names[:6]) + (f", … ({len(names) - 6} more)" if len(names) > 6 else "")
        title = title or f"distillbt basket screen report — {len(names)} instruments ({shown})"
    title = title or f"distillbt screen report — {summary.get('symbol') or summary['source']}"
    page = _html(title, results, notes, out, embed_images, extra)
    (out / "index.html").write_text(page, encoding="utf-8")
    (out / "summary.md").write_text(_markdown(title, results, notes, extra), encoding="utf-8")
    return out / "index.html"


# -- shared content ------------------------------------------------------------------------------
def _currency(symbol) -> str:
    """The quote currency of a unified symbol (``BTC/USDT:USDT`` → USDT)."""
    if symbol and "/" in str(symbol):
        return str(symbol).split("/", 1)[1].split(":", 1)[0]
    return "quote currency"


def _num(value, fmt="{:+.4f}") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    try:
        return fmt.format(value)
    except (TypeError, ValueError):
        return str(value)


def _overview_rows(summary: dict) -> list[tuple[str, str]]:
    if "instruments" in summary:
        return overview_rows(summary)
    synthetic = "  (SYNTHETIC sample market)" if summary.get("synthetic") else ""
    counts = (f"{summary.get('configurations', '?')} ({summary.get('model_configurations', '?')} model: fitted on "
              f"distilled points, screened vectorised; {summary.get('plain_configurations', '?')} plain: see each "
              "record's path)")
    cash = f"{_num(summary.get('cash'), '{:,.0f}')} / {_num(summary.get('commission'), '{:.4%}')}"
    rows = [("data source", f"{summary['source']}{synthetic}"),
            ("symbol / timeframe", f"{summary.get('symbol', '?')} / {summary.get('timeframe', '?')}"),
            ("configurations", counts), ("score", str(summary.get("score", "?"))), ("cash / commission", cash)]
    for task, d in (summary.get("distilled") or {}).items():
        text = (f"{d.get('method')}, {d.get('points')} points{', per regime' if d.get('per_regime') else ''}, "
                f"compression {_num(d.get('compression_ratio'), '{:,.0f}')}×")
        if d.get("fallback"):
            text += f" — {d['fallback']}"
        rows.append((f"distilled ({task})", text))
    if summary.get("errors"):
        rows.append(("configurations that failed", str(summary["errors"])))
    return rows


def _period_rows(summary: dict) -> list[list[str]]:
    use = {"training": "distillation, regime labeller, model fits for full backtests",
           "screening": "every configuration scored; survivors chosen here",
           "holdout": "survivors backtested again; nothing chosen here"}
    on = f" on {len(summary['instruments'])} instruments" if "instruments" in summary else ""
    return [[name, _when(p.get("first")), _when(p.get("last")), _num(p.get("candles"), "{:,}") + on, use.get(name, "")]
            for name, p in summary["periods"].items()]


def _when(value) -> str:
    """An ISO time as ``2020-01-05 04:00`` (UTC), or as it came if it is not one."""
    try:
        return _dt.datetime.fromisoformat(str(value)).astimezone(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return str(value)


def _interval(fields: dict, key: str) -> str:
    interval = fields.get(f"spearman{key}_ci90")
    return f" (90% {interval[0]:.3f} – {interval[1]:.3f})" if interval else ""


def _trust_rows(summary: dict, records: list) -> list[tuple[str, str, str]]:
    rows = []
    if "spearman" in summary:
        sampled = summary.get("validation") == "sample"
        rows.append(("Spearman ρ, screen vs full", _num(summary["spearman"], "{:.3f}") + _interval(summary, ""),
                     f"rank agreement over {summary.get('spearman_configurations', '?')} "
                     f"{'configurations drawn at random' if sampled else 'configurations'} (plain strategies' full "
                     "fallbacks included; 1 = same order; selection only needs the order)"))
        if "spearman_fast_path" in summary:
            rows.append(("Spearman ρ, fast paths only", _num(summary["spearman_fast_path"], "{:.3f}")
                         + _interval(summary, "_fast_path"),
                         f"over the {summary.get('spearman_fast_path_configurations', '?')} configurations scored "
                         "vectorised or by a surrogate (no full fallback)"))
        per = [f["spearman"] for f in (summary.get("instruments_fidelity") or {}).values()
               if isinstance(f, dict) and f.get("spearman") is not None]
        if per:
            rows.append(("Spearman ρ per instrument", f"{min(per):.3f} – {max(per):.3f}",
                         f"lowest – highest over the {len(per)} instruments, each instrument's own screen vs full "
                         "scores (basket ranking)"))
        if "topk" in summary:
            rows.append((f"top-{summary.get('topk', '?')} recall", _num(summary.get("topk_recall"), "{:.2f}"),
                         "share of the truly best configurations (by full backtest) among the survivors"))
            wrong = summary.get("wrongly_eliminated") or []
            rows.append(("wrongly eliminated", str(len(wrong)), "; ".join(wrong) or "none"))
        if summary.get("execution_max_rel_diff") is not None:
            rows.append(("vectorised vs Backtrader", _num(summary["execution_max_rel_diff"], "{:.1e}"),
                         "largest relative difference of final values, same fitted model in both executions"))
        if summary.get("speedup"):
            basis = ("estimated from the sample's wall time" if sampled else "measured, same jobs as the screen")
            rows.append(("speed-up", f"{summary['speedup']:.1f}×",
                         f"full backtests of every configuration ({basis}) ÷ all the screen's time before "
                         "survivors (distillation, model and plain paths, fallbacks)"))
        for path, label in (("model", "model strategies"), ("plain", "plain strategies")):
            p = (summary.get("paths") or {}).get(path)
            if p and p.get("speedup"):
                rows.append((f"speed-up, {label}", f"{p['speedup']:.1f}×",
                             f"their full backtests ({p['full_seconds']:.1f} s) ÷ their part of the screen "
                             f"({p['screen_seconds']:.1f} s); {p['full_fallbacks']} full fallbacks"))
    else:
        rows.append(("Spearman ρ / top-k recall", "not measured",
                     "run the screen with --validate to backtest every configuration and measure them"))
    dsr = [r["deflated_sharpe"] for r in records if r.get("survivor") and r.get("deflated_sharpe") is not None]
    if dsr:
        rows.append(("Deflated Sharpe (survivors)", f"{min(dsr):.2f} – {max(dsr):.2f}",
                     f"probability the Sharpe ratio is real after {_trials(summary)} "
                     "(> 0.95 is convincing)"))
    rows.append(("PBO", _num(summary.get("pbo"), "{:.2f}"),
                 "probability of backtest overfitting (CSCV): how often the in-sample best falls below the "
                 "median out of sample (0 = never)" if "pbo" in summary else "not computed (too few configurations "
                 "or candles)"))
    return rows


def _trials(summary: dict) -> str:
    if "instrument_configurations" in summary:  # a basket: every configuration × instrument was tried
        return (f"{summary['instrument_configurations']} trials ({summary.get('configurations', '?')} configurations "
                f"× {len(summary.get('instruments') or ())} instruments)")
    return f"{summary.get('configurations', '?')} trials"


def _ranked_rows(records: list) -> list[list[str]]:
    rows = []
    for r in records:
        rows.append([str(r.get("screen_rank") or "–"), "✓" if r.get("survivor") else "", str(r["name"]),
                     str(r.get("path")), _num(r.get("screen_score")), _num(r.get("full_score")),
                     _num(r.get("holdout_score")), str(r.get("error") or "")])
    return rows


_RANKED_HEAD = ["rank", "survivor", "configuration", "path", "screen score", "full (screening)", "holdout", "error"]


def _survivor_rows(records: list, key: str) -> list[list[str]]:
    """Survivors' stats of one period; the Deflated Sharpe belongs to the screening period, on
    which the survivors were selected."""
    rows = []
    for r in records:
        if not r.get("survivor"):
            continue
        stats = r.get(key) or {}
        dsr = _num(r.get("deflated_sharpe"), "{:.2f}") if key == "full_stats" else ""
        values = [_num(stats.get(k), fmt) for k, _, fmt in _STATS]
        rows.append([str(r.get("screen_rank")), str(r["name"]), dsr] + values)
    return rows


_SURVIVOR_HEAD = ["rank", "configuration", "deflated Sharpe"] + [label for _, label, _ in _STATS]


# -- HTML ----------------------------------------------------------------------------------------
_CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;margin:0;color:#1d2733;
background:#f6f7f9;line-height:1.45}
main{max-width:1320px;margin:0 auto;padding:24px 32px 64px;background:#fff}
h1{font-size:28px;margin:8px 0 4px}h2{font-size:21px;margin:36px 0 10px;border-bottom:2px solid #e3e7ec;
padding-bottom:4px}.sub{color:#5b6775;margin:0 0 12px}
.banner{background:#fff3cd;border:1px solid #e8d48a;padding:8px 12px;border-radius:6px;margin:12px 0}
table{border-collapse:collapse;font-size:13.5px;margin:6px 0 10px;width:100%}
th,td{padding:4px 8px;border-bottom:1px solid #e3e7ec;text-align:left;vertical-align:top}
th{background:#eef1f5;position:sticky;top:0}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;
white-space:nowrap}tr.s td{background:#eef6ff;font-weight:600}
.kv th{width:230px;background:none;font-weight:600}.cards{display:flex;gap:12px;flex-wrap:wrap;margin:10px 0}
.card{border:1px solid #dde3ea;border-radius:8px;padding:10px 14px;min-width:170px}
.card b{display:block;font-size:24px}.card span{color:#5b6775;font-size:13px}
figure{margin:8px 0 24px}figure img{width:100%;height:auto;border:1px solid #e3e7ec;border-radius:4px}
figcaption{color:#4a5563;font-size:14px;margin-top:6px}.missing{color:#8a5a00;font-style:italic}
nav a{margin-right:14px;font-size:14px}.scroll{max-height:520px;overflow:auto;border:1px solid #e3e7ec}
footer{color:#7a8591;font-size:12px;margin-top:40px}
h3{font-size:17px;margin:22px 0 6px}td.pos{color:#1a7f3c}td.neg{color:#c0262d}
.link{display:inline-block;background:#eef6ff;border:1px solid #b9d3f0;border-radius:6px;padding:6px 12px;
margin:4px 0 10px;font-weight:600}
"""


def _table_html(head, rows, *, numeric=(), highlight=None, cls="") -> str:
    h = "".join(f'<th class="n">{html.escape(c)}</th>' if i in numeric else f"<th>{html.escape(c)}</th>"
                for i, c in enumerate(head))
    body = []
    for k, row in enumerate(rows):
        cells = "".join(f'<td class="n">{html.escape(c)}</td>' if i in numeric else f"<td>{html.escape(c)}</td>"
                        for i, c in enumerate(row))
        mark = ' class="s"' if highlight and highlight(k) else ""
        body.append(f"<tr{mark}>{cells}</tr>")
    return f'<table class="{cls}"><thead><tr>{h}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _img_src(out: Path, name: str, embed: bool) -> str:
    if embed:
        return "data:image/png;base64," + base64.b64encode((out / name).read_bytes()).decode("ascii")
    return name


def _html(title: str, results: dict, notes: dict, out: Path, embed: bool, extra: dict | None = None) -> str:
    summary, records = results["summary"], results["records"]
    extra = extra or {}
    e = html.escape
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{e(title)}</title>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{_CSS}</style></head>"
             "<body><main>", f"<h1>{e(title)}</h1>",
             f"<p class='sub'>{e(summary['source'])} · {e(str(summary.get('timeframe', '')))} · "
             f"generated {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by distillbt</p>"]
    sections = [("data", "Data and periods"), ("trust", "How far to trust it"), ("ranked", "Ranked configurations")]
    if extra.get("basket") is not None:
        sections.insert(2, ("basket", "Basket ranking"))
    if extra.get("heatmaps") is not None:
        sections.append(("heatmaps", "Parameter heatmaps"))
    sections.append(("survivors", "Survivors"))
    if extra.get("trades") is not None:
        sections.append(("trades", "Survivors' trades"))
        if extra["trades"].get("interactive"):
            sections.append(("interactive", "Interactive chart"))
    sections += [(n.split(".")[0], t) for n, (t, _) in PLOTS.items()]
    parts.append("<nav>" + "".join(f"<a href='#{i}'>{e(t)}</a>" for i, t in sections) + "</nav>")
    if summary.get("synthetic"):
        parts.append("<div class='banner'><b>Synthetic data.</b> This run used the embedded sample market, "
                     "a simulator — not a real market. Use <code>--data</code> for real candles.</div>")
    n_surv = sum(1 for r in records if r.get("survivor"))
    cards = [(f"{summary.get('configurations', len(records))}", "configurations screened"),
             *([(f"{len(summary['instruments'])}", "instruments")] if extra.get("basket") is not None else []),
             (f"{n_surv}", "survivors"),
             (_num(summary.get("spearman"), "{:.3f}"), "Spearman ρ, screen vs full"),
             (_num(summary.get("topk_recall"), "{:.2f}"), f"top-{summary.get('topk', 'k')} recall"),
             (_num(summary.get("pbo"), "{:.2f}"), "PBO"),
             (_num(summary.get("screen_seconds"), "{:.1f} s"), "screen time, all of it")]
    parts.append("<div class='cards'>" + "".join(f"<div class='card'><b>{e(v)}</b><span>{e(k)}</span></div>"
                                                 for v, k in cards) + "</div>")

    parts.append("<h2 id='data'>Data and periods</h2>")
    parts.append("<table class='kv'><tbody>" + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>"
                                                       for k, v in _overview_rows(summary)) + "</tbody></table>")
    parts.append(_table_html(["period", "first candle (UTC)", "last candle (UTC)", "candles", "used for"],
                             _period_rows(summary), numeric={3}))

    parts.append("<h2 id='trust'>How far to trust it</h2>")
    parts.append(_table_html(["figure", "value", "meaning"], [list(r) for r in _trust_rows(summary, records)],
                             numeric={1}))

    if extra.get("basket") is not None:
        parts.append(_basket_html(extra["basket"], out, embed))
    parts.append("<h2 id='ranked'>Ranked configurations</h2>")
    if extra.get("basket") is not None:
        parts.append(f"<p class='sub'>Every configuration by its <b>basket</b> scores (the {e(str(summary.get('basket_score')))} "
                     "of the instruments' scores); per-instrument scores are in the basket ranking above and in the "
                     "results JSON.</p>")
    parts.append("<p class='sub'>Sorted by screen score; survivors highlighted. Scores are "
                 f"{e(str(summary.get('score', '')))}; screen and full scores come from the screening period, "
                 "holdout scores from the holdout period. Path <i>vectorised</i> = model fitted on distilled points "
                 "and evaluated vectorised; <i>surrogate</i> = plain strategy estimated by a learned surrogate "
                 "(<i>+escalated</i>: checked further because the surrogate could not be trusted); <i>full</i> = "
                 "plain strategy, full Backtrader backtest.</p>")
    ranked = _ranked_rows(records)
    parts.append("<div class='scroll'>" + _table_html(_RANKED_HEAD, ranked, numeric={0, 4, 5, 6},
                                                      highlight=lambda k: records[k].get("survivor")) + "</div>")

    if extra.get("heatmaps") is not None:
        parts.append(_heatmaps_html(extra["heatmaps"], summary, out, embed))
    parts.append("<h2 id='survivors'>Survivors</h2>")
    if extra.get("basket") is not None:
        parts.append(f"<p class='sub'>{e(_BASKET_SURVIVORS)}</p>")
    for key, label in () if extra.get("basket") is not None else (
            ("full_stats", "screening period (full Backtrader backtest, model fitted on real data)"),
            ("holdout_stats", "holdout period (never selected on)")):
        parts.append(f"<p class='sub'><b>{e(label)}</b></p>")
        rows = _survivor_rows(records, key)
        parts.append(_table_html(_SURVIVOR_HEAD, rows, numeric=set(range(2, len(_SURVIVOR_HEAD))))
                     if rows else "<p class='missing'>no survivor statistics in these results</p>")

    if extra.get("trades") is not None:
        parts.append(_trades_html(extra["trades"], out, embed))

    for name, (heading, caption) in PLOTS.items():
        if extra.get("basket") is not None:
            caption = _BASKET_CAPTIONS.get(name, caption)
        parts.append(f"<h2 id='{name.split('.')[0]}'>{e(heading)}</h2>")
        if notes[name] is None:
            parts.append(f"<figure><img src='{_img_src(out, name, embed)}' alt='{e(heading)}' width='1600' "
                         f"height='900'><figcaption>{e(caption)}</figcaption></figure>")
        else:
            parts.append(f"<p class='missing'>Not drawn: {e(notes[name])}</p>")

    files = [p for p in results.get("problems") or () if "instrument" not in p]  # instruments: basket ranking
    if files:
        parts.append("<h2 id='problems'>Skipped files</h2><ul>" + "".join(
            f"<li><code>{e(str(p.get('file')))}</code>: {e(str(p.get('message')))}</li>" for p in files)
            + "</ul>")
    interactive = (" The interactive chart carries its own inlined Bokeh JavaScript and needs no network either."
                   if (extra.get("trades") or {}).get("interactive") else "")
    parts.append("<footer>Self-contained report: no scripts, no network. Numbers from the screen results JSON; "
                 f"see summary.md for the same tables in Markdown.{interactive}</footer></main></body></html>")
    return "\n".join(parts)


def _basket_html(basket: dict, out: Path, embed: bool) -> str:
    """The basket ranking: instruments and periods, the heatmaps, the top configurations with
    their scores per instrument, the survivors on every instrument, the skipped instruments."""
    e = html.escape
    parts = ["<h2 id='basket'>Basket ranking</h2>",
             "<p class='sub'>One ranking for the whole basket: each configuration scored on every instrument, "
             "ranked by the basket score. A configuration that wins on one instrument by luck shows as one blue cell "
             "in a red row.</p>", "<h3>Instruments and periods</h3>",
             f"<p class='sub'>{e(basket['instruments']['caption'])}</p>", _basket_table(basket["instruments"])]
    if basket["skipped"]:
        parts.append("<p class='missing'>Skipped instruments:</p><ul>"
                     + "".join(f"<li>{e(line)}</li>" for line in basket["skipped"]) + "</ul>")
    for key, heading in (("heatmap", "Configurations × instruments"), ("holdout", "Survivors per instrument: screening vs holdout")):
        parts.append(f"<h3>{e(heading)}</h3>")
        if basket[key]:
            parts.append(f"<figure><img src='{_img_src(out, basket[key], embed)}' alt='{e(heading)} heatmap' "
                         "width='1600' height='900'></figure>")
        else:
            parts.append(f"<p class='missing'>Not drawn: {e(basket[key + '_note'])}</p>")
    parts += ["<h3>Top configurations</h3>", f"<p class='sub'>{e(basket['ranking']['caption'])}</p>",
              "<div class='scroll'>" + _basket_table(basket["ranking"]) + "</div>"]
    if basket["survivors"]:
        parts += ["<h3>Survivors on every instrument</h3>", f"<p class='sub'>{e(basket['survivors']['caption'])}</p>",
                  "<div class='scroll'>" + _basket_table(basket["survivors"]) + "</div>"]
    return "\n".join(parts)


_BASKET_SURVIVORS = ("A basket's survivors are backtested in full on every instrument, on the screening period and the "
                     "holdout: their scores per instrument and their deflated Sharpe ratios are in the basket ranking "
                     "(Survivors on every instrument). Basket results keep no per-instrument statistics such as "
                     "drawdown or trades.")


def _basket_table(table: dict) -> str:
    return _table_html(table["head"], table["rows"], numeric=table["numeric"],
                       highlight=lambda k: k in table["highlight"])


_HEATMAP_CAPTION = (
    "One panel per pair of the parameters the strategy's grid varies: each cell is the best (maximum) screen score "
    "among the configurations with that pair of values, the other parameters at their best — where a sweep would "
    "land there. Outlined, starred cells hold a survivor; grey cells have no score. Blue is above zero, red below.")
_TRADE_HEAD = ["period", "#", "side", "entry (UTC)", "entry price", "exit (UTC)", "exit price", "size", "P&L",
               "P&L %", "bars"]


def _heatmaps_html(heatmaps: list, summary: dict, out: Path, embed: bool) -> str:
    e = html.escape
    parts = ["<h2 id='heatmaps'>Parameter heatmaps</h2>",
             f"<p class='sub'>Screen score ({e(str(summary.get('objective', 'return')))}: "
             f"{e(str(summary.get('score', '')))}) by pair of parameters, per strategy. {e(_HEATMAP_CAPTION)}</p>"]
    if not heatmaps:
        parts.append("<p class='missing'>No strategy's grid varies two parameters: nothing to map.</p>")
    for item in heatmaps:
        parts.append(f"<h3>{e(item['strategy'])}</h3>")
        if item["file"]:
            parts.append(f"<figure><img src='{_img_src(out, item['file'], embed)}' alt='{e(item['strategy'])} "
                         "parameter heatmap' width='1600' height='900'></figure>")
        else:
            parts.append(f"<p class='missing'>Not drawn: {e(item['note'])}</p>")
    return "\n".join(parts)


def _period_text(period: str, line: dict | None) -> str:
    if line is None:
        return f"{period}: no trades in these results"
    if not line["count"]:
        return f"{period}: no closed trades"
    kept = f" (first {line['kept']} listed)" if line["kept"] < line["count"] else ""
    return (f"{period}: {line['count']} trades{kept}, {line['wins']} won, total P&L "
            f"{_num(line['pnl_total'], '{:+,.2f}')}")


def _sig(value, digits: int = 6) -> str:
    """``value`` with about ``digits`` significant digits, thousands separated, never in e-notation."""
    if value is None or not math.isfinite(value):
        return "–"
    whole = len(str(int(abs(value)))) if abs(value) >= 1 else 0
    return f"{value:,.{max(0, digits - whole)}f}"


def _trade_cells(row: dict, k: int) -> list[tuple[str, str]]:
    """(text, css class) of one trade's cells."""
    pnl = row.get("pnl")
    sign = "pos" if pnl is not None and pnl > 0 else "neg" if pnl is not None and pnl < 0 else ""
    size = row.get("size")
    return [(row.get("period", ""), ""), (str(k), "n"), ("short" if size is not None and size < 0 else "long", ""),
            (_when(row.get("entry_time")), ""), (_sig(row.get("entry_price")), "n"),
            (_when(row.get("exit_time")), ""), (_sig(row.get("exit_price")), "n"),
            (_sig(size, 4), "n"), (_num(pnl, "{:+,.2f}"), f"n {sign}"),
            (_num(row.get("pnl_pct"), "{:+.2f}"), f"n {sign}"), (_num(row.get("bars"), "{:,}"), "n")]


def _trades_html(trades: dict, out: Path, embed: bool) -> str:
    e = html.escape
    parts = ["<h2 id='trades'>Survivors' trades</h2>",
             "<p class='sub'>Closed trades of each survivor's full Backtrader backtests on real candles: the screening "
             "period, then the holdout period nobody selected on. Size is the largest position reached (negative: "
             "short); P&amp;L is net of commission, P&amp;L % relative to the position's value at entry. A position "
             "still open at a period's end is not a closed trade and is not listed.</p>"]
    if trades.get("interactive"):
        parts.append(f"<p id='interactive'><a class='link' href='{e(trades['interactive'])}'>Open the interactive "
                     f"chart of {e(trades['interactive_name'])}</a> — price with entries and exits, equity below; "
                     "scroll to zoom, drag to pan, hover a trade for its numbers (works offline).</p>")
    elif trades.get("interactive_note"):
        parts.append(f"<p class='missing'>No interactive chart: {e(trades['interactive_note'])}</p>")
    if trades.get("csv"):
        parts.append(f"<p class='sub'>Every listed trade as CSV: <a href='{e(trades['csv'])}'>{e(trades['csv'])}</a></p>")
    if not trades["survivors"]:
        parts.append("<p class='missing'>No survivors.</p>")
    for item in trades["survivors"]:
        parts.append(f"<h3>{e(str(item['rank'] or '–'))}. {e(item['name'])}</h3>")
        parts.append("<p class='sub'>" + " · ".join(e(_period_text(p, item["periods"][p])) for p in item["periods"])
                     + "</p>")
        if item["chart"]:
            parts.append(f"<figure><img src='{_img_src(out, item['chart'], embed)}' alt='trades of {e(item['name'])}' "
                         "width='1600' height='900'></figure>")
        elif item["chart_note"]:
            parts.append(f"<p class='missing'>Chart not drawn: {e(item['chart_note'])}</p>")
        if item["rows"]:
            head = "".join(f"<th class='n'>{e(c)}</th>" if c in ("#", "entry price", "exit price", "size", "P&L",
                                                                  "P&L %", "bars") else f"<th>{e(c)}</th>"
                           for c in _TRADE_HEAD)
            numbered = {}
            body = []
            for row in item["rows"]:
                numbered[row.get("period")] = numbered.get(row.get("period"), 0) + 1
                cells = "".join(f"<td class='{c}'>{e(t)}</td>" if c else f"<td>{e(t)}</td>"
                                for t, c in _trade_cells(row, numbered[row.get("period")]))
                body.append(f"<tr>{cells}</tr>")
            parts.append(f"<div class='scroll'><table class='trades'><thead><tr>{head}</tr></thead>"
                         f"<tbody>{''.join(body)}</tbody></table></div>")
    return "\n".join(parts)


# -- Markdown ------------------------------------------------------------------------------------
def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(head, rows, numeric=()) -> str:
    align = ["---:" if i in numeric else "---" for i in range(len(head))]
    lines = ["| " + " | ".join(_md_escape(h) for h in head) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _markdown(title: str, results: dict, notes: dict, extra: dict | None = None) -> str:
    summary, records = results["summary"], results["records"]
    extra = extra or {}
    out = [f"# {title}", ""]
    if summary.get("synthetic"):
        out += ["> **Synthetic data**: the embedded sample market (a simulator), not a real market.", ""]
    out += ["## Data and periods", "", _md_table(["item", "value"], _overview_rows(summary)), "",
            _md_table(["period", "first candle (UTC)", "last candle (UTC)", "candles", "used for"],
                      _period_rows(summary), numeric={3}), "",
            "## How far to trust it", "",
            _md_table(["figure", "value", "meaning"], [list(r) for r in _trust_rows(summary, records)],
                      numeric={1}), ""]
    if extra.get("basket") is not None:
        out += _basket_markdown(extra["basket"])
    out += ["## Ranked configurations", ""]
    if extra.get("basket") is not None:
        out += [f"Every configuration by its basket scores (the {summary.get('basket_score')} of the instruments' "
                "scores); per-instrument scores in the basket ranking above.", ""]
    out += [f"Score: {summary.get('score', '')}; screen and full scores from the screening period, holdout scores "
            "from the holdout period.", "",
            _md_table(_RANKED_HEAD, _ranked_rows(records), numeric={0, 4, 5, 6}), ""]
    if extra.get("heatmaps") is not None:
        out += ["## Parameter heatmaps", "", _HEATMAP_CAPTION, ""]
        if not extra["heatmaps"]:
            out += ["_No strategy's grid varies two parameters._", ""]
        for item in extra["heatmaps"]:
            out += [f"![{item['strategy']} parameter heatmap]({item['file']})" if item["file"]
                    else f"_{item['strategy']}: not drawn: {item['note']}_", ""]
    out += ["## Survivors", ""]
    if extra.get("basket") is not None:
        out += [_BASKET_SURVIVORS, ""]
    for key, label in () if extra.get("basket") is not None else (
            ("full_stats", "Screening period (full backtest, model fitted on real data)"),
            ("holdout_stats", "Holdout period (never selected on)")):
        rows = _survivor_rows(records, key)
        out += [f"**{label}**", "", _md_table(_SURVIVOR_HEAD, rows, numeric=set(range(2, len(_SURVIVOR_HEAD))))
                if rows else "_no survivor statistics in these results_", ""]
    if extra.get("trades") is not None:
        out += _trades_markdown(extra["trades"])
    for name, (heading, caption) in PLOTS.items():
        if extra.get("basket") is not None:
            caption = _BASKET_CAPTIONS.get(name, caption)
        out += [f"## {heading}", ""]
        if notes[name] is None:
            out += [f"![{heading}]({name})", "", caption, ""]
        else:
            out += [f"_Not drawn: {notes[name]}_", ""]
    files = [p for p in results.get("problems") or () if "instrument" not in p]  # instruments: basket ranking
    if files:
        out += ["## Skipped files", ""]
        out += [f"- `{p.get('file')}`: {p.get('message')}" for p in files] + [""]
    return "\n".join(out)


def _basket_markdown(basket: dict) -> list[str]:
    def table(t):
        return _md_table(t["head"], t["rows"], numeric=t["numeric"])

    out = ["## Basket ranking", "", "One ranking for the whole basket: each configuration scored on every instrument, "
           "ranked by the basket score.", "", "### Instruments and periods", "", basket["instruments"]["caption"], "",
           table(basket["instruments"]), ""]
    if basket["skipped"]:
        out += ["Skipped instruments:", ""] + [f"- {line}" for line in basket["skipped"]] + [""]
    for key, heading in (("heatmap", "Configurations × instruments"), ("holdout", "Survivors per instrument: screening vs holdout")):
        out += [f"### {heading}", "", f"![{heading} heatmap]({basket[key]})" if basket[key]
                else f"_Not drawn: {basket[key + '_note']}_", ""]
    out += ["### Top configurations", "", basket["ranking"]["caption"], "", table(basket["ranking"]), ""]
    if basket["survivors"]:
        out += ["### Survivors on every instrument", "", basket["survivors"]["caption"], "",
                table(basket["survivors"]), ""]
    return out


_MD_TRADES = 20


def _trades_markdown(trades: dict) -> list[str]:
    out = ["## Survivors' trades", "",
           "Closed trades of each survivor's full backtests (screening, then holdout); P&L net of commission."]
    if trades.get("interactive"):
        out += ["", f"Interactive chart of {trades['interactive_name']} (zoom, pan, hover; offline): "
                    f"[{trades['interactive']}]({trades['interactive']})"]
    if trades.get("csv"):
        out += ["", f"Every listed trade: [{trades['csv']}]({trades['csv']})"]
    out.append("")
    for item in trades["survivors"]:
        out += [f"### {item['rank'] or '–'}. {item['name']}", "",
                " · ".join(_period_text(p, item["periods"][p]) for p in item["periods"]), ""]
        if item["chart"]:
            out += [f"![trades of {item['name']}]({item['chart']})", ""]
        if item["rows"]:
            rows, numbered = [], {}
            for row in item["rows"][:_MD_TRADES]:
                numbered[row.get("period")] = numbered.get(row.get("period"), 0) + 1
                rows.append([t for t, _ in _trade_cells(row, numbered[row.get("period")])])
            out += [_md_table(_TRADE_HEAD, rows, numeric={1, 4, 6, 7, 8, 9, 10}), ""]
            if len(item["rows"]) > _MD_TRADES:
                out += [f"_First {_MD_TRADES} of {len(item['rows'])} listed trades; all in index.html and "
                        f"{trades.get('csv') or 'the results'}._", ""]
    return out
