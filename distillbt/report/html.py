"""The one-folder report: ``index.html`` + ``summary.md`` + the plots as PNG beside them.

The HTML is self-contained: inline CSS, no script, no web fonts, no CDN — it opens from disk
with no network. Images are files in the same folder (relative links, so the folder can be
moved or zipped) or, with ``embed_images=True``, base64 data inside the page.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
from pathlib import Path

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

    ``results``: the screen results (a path to the JSON of ``screen --out``, its dict, or a
    :class:`~distillbt.screen.ScreenResult`). ``candles``: the same :class:`Candles` the screen
    ran on, to draw the price/regime plots for results saved without their ``series``.
    ``evaluation``: the JSON (path or dict) of ``evaluate --out``, for the distillation-quality
    plot. ``embed_images``: put the PNGs inside the HTML as base64 (one file to mail) instead of
    beside it. A plot whose data is missing is left out and the report says why; a malformed
    ``results`` raises :class:`ReportError`.
    """
    from . import plots

    results = load_results(results)
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
    title = title or f"distillbt screen report — {summary.get('symbol') or summary['source']}"
    page = _html(title, results, notes, out, embed_images)
    (out / "index.html").write_text(page, encoding="utf-8")
    (out / "summary.md").write_text(_markdown(title, results, notes), encoding="utf-8")
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
    return [[name, _when(p.get("first")), _when(p.get("last")), _num(p.get("candles"), "{:,}"), use.get(name, "")]
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
                     f"probability the Sharpe ratio is real after {summary.get('configurations', '?')} trials "
                     "(> 0.95 is convincing)"))
    rows.append(("PBO", _num(summary.get("pbo"), "{:.2f}"),
                 "probability of backtest overfitting (CSCV): how often the in-sample best falls below the "
                 "median out of sample (0 = never)" if "pbo" in summary else "not computed (too few configurations "
                 "or candles)"))
    return rows


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


def _html(title: str, results: dict, notes: dict, out: Path, embed: bool) -> str:
    summary, records = results["summary"], results["records"]
    e = html.escape
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{e(title)}</title>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{_CSS}</style></head>"
             "<body><main>", f"<h1>{e(title)}</h1>",
             f"<p class='sub'>{e(summary['source'])} · {e(str(summary.get('timeframe', '')))} · "
             f"generated {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by distillbt</p>"]
    sections = [("data", "Data and periods"), ("trust", "How far to trust it"), ("ranked", "Ranked configurations"),
                ("survivors", "Survivors")] + [(n.split(".")[0], t) for n, (t, _) in PLOTS.items()]
    parts.append("<nav>" + "".join(f"<a href='#{i}'>{e(t)}</a>" for i, t in sections) + "</nav>")
    if summary.get("synthetic"):
        parts.append("<div class='banner'><b>Synthetic data.</b> This run used the embedded sample market, "
                     "a simulator — not a real market. Use <code>--data</code> for real candles.</div>")
    n_surv = sum(1 for r in records if r.get("survivor"))
    cards = [(f"{summary.get('configurations', len(records))}", "configurations screened"),
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

    parts.append("<h2 id='ranked'>Ranked configurations</h2>")
    parts.append("<p class='sub'>Sorted by screen score; survivors highlighted. Scores are "
                 f"{e(str(summary.get('score', '')))}; screen and full scores come from the screening period, "
                 "holdout scores from the holdout period. Path <i>vectorised</i> = model fitted on distilled points "
                 "and evaluated vectorised; <i>surrogate</i> = plain strategy estimated by a learned surrogate "
                 "(<i>+escalated</i>: checked further because the surrogate could not be trusted); <i>full</i> = "
                 "plain strategy, full Backtrader backtest.</p>")
    ranked = _ranked_rows(records)
    parts.append("<div class='scroll'>" + _table_html(_RANKED_HEAD, ranked, numeric={0, 4, 5, 6},
                                                      highlight=lambda k: records[k].get("survivor")) + "</div>")

    parts.append("<h2 id='survivors'>Survivors</h2>")
    for key, label in (("full_stats", "screening period (full Backtrader backtest, model fitted on real data)"),
                       ("holdout_stats", "holdout period (never selected on)")):
        parts.append(f"<p class='sub'><b>{e(label)}</b></p>")
        rows = _survivor_rows(records, key)
        parts.append(_table_html(_SURVIVOR_HEAD, rows, numeric=set(range(2, len(_SURVIVOR_HEAD))))
                     if rows else "<p class='missing'>no survivor statistics in these results</p>")

    for name, (heading, caption) in PLOTS.items():
        parts.append(f"<h2 id='{name.split('.')[0]}'>{e(heading)}</h2>")
        if notes[name] is None:
            parts.append(f"<figure><img src='{_img_src(out, name, embed)}' alt='{e(heading)}' width='1600' "
                         f"height='900'><figcaption>{e(caption)}</figcaption></figure>")
        else:
            parts.append(f"<p class='missing'>Not drawn: {e(notes[name])}</p>")

    if results.get("problems"):
        parts.append("<h2 id='problems'>Skipped files</h2><ul>" + "".join(
            f"<li><code>{e(str(p.get('file')))}</code>: {e(str(p.get('message')))}</li>" for p in results["problems"])
            + "</ul>")
    parts.append("<footer>Self-contained report: no scripts, no network. Numbers from the screen results JSON; "
                 "see summary.md for the same tables in Markdown.</footer></main></body></html>")
    return "\n".join(parts)


# -- Markdown ------------------------------------------------------------------------------------
def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(head, rows, numeric=()) -> str:
    align = ["---:" if i in numeric else "---" for i in range(len(head))]
    lines = ["| " + " | ".join(_md_escape(h) for h in head) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _markdown(title: str, results: dict, notes: dict) -> str:
    summary, records = results["summary"], results["records"]
    out = [f"# {title}", ""]
    if summary.get("synthetic"):
        out += ["> **Synthetic data**: the embedded sample market (a simulator), not a real market.", ""]
    out += ["## Data and periods", "", _md_table(["item", "value"], _overview_rows(summary)), "",
            _md_table(["period", "first candle (UTC)", "last candle (UTC)", "candles", "used for"],
                      _period_rows(summary), numeric={3}), "",
            "## How far to trust it", "",
            _md_table(["figure", "value", "meaning"], [list(r) for r in _trust_rows(summary, records)],
                      numeric={1}), "",
            "## Ranked configurations", "",
            f"Score: {summary.get('score', '')}; screen and full scores from the screening period, holdout scores "
            "from the holdout period.", "",
            _md_table(_RANKED_HEAD, _ranked_rows(records), numeric={0, 4, 5, 6}), "",
            "## Survivors", ""]
    for key, label in (("full_stats", "Screening period (full backtest, model fitted on real data)"),
                       ("holdout_stats", "Holdout period (never selected on)")):
        rows = _survivor_rows(records, key)
        out += [f"**{label}**", "", _md_table(_SURVIVOR_HEAD, rows, numeric=set(range(2, len(_SURVIVOR_HEAD))))
                if rows else "_no survivor statistics in these results_", ""]
    for name, (heading, caption) in PLOTS.items():
        out += [f"## {heading}", ""]
        if notes[name] is None:
            out += [f"![{heading}]({name})", "", caption, ""]
        else:
            out += [f"_Not drawn: {notes[name]}_", ""]
    if results.get("problems"):
        out += ["## Skipped files", ""]
        out += [f"- `{p.get('file')}`: {p.get('message')}" for p in results["problems"]] + [""]
    return "\n".join(out)
