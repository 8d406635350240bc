"""Command line: a thin shell over the Python API.

Exit codes: 0 success, 2 bad input or usage (one line on stderr naming the problem), 1 an
unexpected failure (one line; set DISTILLBT_DEBUG=1 for the traceback), 130 interrupted;
``fetch`` of several symbols: 3 when some failed and the others were fetched (2 when all failed).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import sys
import traceback
from pathlib import Path

from . import __version__
from .errors import DistillbtError, InputError

PROG = "distillbt"


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line (exit 2) instead of usage + message."""

    def error(self, message):
        raise _UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _shared_parsers() -> dict[str, argparse.ArgumentParser]:
    """Flags spelled the same in every command that takes them."""
    cache = _Parser(add_help=False)
    cache.add_argument("--cache-dir", metavar="DIR",
                       help="candle cache directory (default: $DISTILLBT_CACHE_DIR or the per-user cache)")
    # How candles are read, for one --data source ("data") or a basket of them ("basket").
    reading = _Parser(add_help=False)
    reading.add_argument("--sample-bars", type=int, default=100_000, metavar="N",
                         help="size of the sample market (default: 100000)")
    reading.add_argument("--sample-timeframe", default="15m", metavar="TF",
                         help="candle interval of the sample market (default: 15m)")
    reading.add_argument("--seed", type=int, default=7, help="random seed (default: 7)")
    reading.add_argument("--timeframe", dest="file_timeframe", metavar="TF",
                         help="declare a candle file's interval instead of inferring it")
    reading.add_argument("--until", dest="data_until", metavar="TIME",
                         help="use only the candles opening before TIME (UTC; exclusive, as fetch --until), "
                              "e.g. distil on the older part of the data and screen on all of it")
    data = _Parser(add_help=False, parents=[reading])
    data.add_argument("--data", default=None, metavar="SOURCE",
                      help="'sample' (default, synthetic), a candle file, or bybit:SYMBOL:TIMEFRAME from the cache")
    basket = _Parser(add_help=False, parents=[reading])
    basket.add_argument("--data", action="append", default=None, metavar="SOURCE",
                        help="repeatable, one instrument or several each: 'sample' (default, synthetic), a candle "
                             "file, a folder of candle files (one instrument per file, named by its stem), or "
                             "bybit:SYMBOL[,SYMBOL...]:TIMEFRAME from the cache")
    basket.add_argument("--sample-instruments", type=int, default=None, metavar="N",
                        help="the sample market as N correlated instruments sharing a market factor (default: 1, "
                             "the plain sample market)")
    basket.add_argument("--basket-timeframe", metavar="TF",
                        help="resample every instrument to this interval (default: keep theirs, which must agree; "
                             "a folder's odd ones out are skipped)")
    basket.add_argument("--min-candles", type=int, default=None, metavar="N",
                        help="skip instruments with fewer candles, in a basket of several (default: 1000)")
    jobs = _Parser(add_help=False)
    jobs.add_argument("--jobs", type=int, default=1, metavar="N",
                      help="parallel jobs, -1 every core (default: 1); with --backend dask the LocalCluster's workers")
    jobs.add_argument("--backend", default=None, choices=["loky", "threading", "dask"],
                      help="where parallel work runs, for every stage of the command: loky processes (default), "
                           "threads, or a Dask cluster (the default with --scheduler)")
    jobs.add_argument("--scheduler", metavar="ADDRESS",
                      help="Dask: a running scheduler, e.g. tcp://host:8786 (default: a LocalCluster of --jobs "
                           "workers); its workers must read the strategy files at the same paths")
    output = _Parser(add_help=False)
    output.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                        help="print machine-readable JSON instead of text; with FILE, write it there too")
    output.add_argument("--no-progress", action="store_true", help="no progress bars")
    return {"cache": cache, "data": data, "basket": basket, "jobs": jobs, "output": output}


def build_parser() -> argparse.ArgumentParser:
    shared = _shared_parsers()
    parser = _Parser(prog=PROG, description="Fast Backtrader strategy screening on distilled market data.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log what happens on stderr: -v progress of stages (INFO), -vv details (DEBUG)")
    parser.add_argument("-q", "--quiet", action="store_true", help="log errors only, no warnings")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    fetch = commands.add_parser(
        "fetch", parents=[shared["cache"], shared["output"]],
        help="fetch Bybit candles into the local cache (only what is missing)",
        description="Fetch Bybit candles through ccxt into the local Parquet cache. Only spans not "
                    "fetched before are requested. With --symbol the last line printed is the cache file's "
                    "path; with --symbols / --symbols-file, one line per symbol (a symbol that fails is "
                    "reported and the others are kept) and a last line saying how many failed.",
        epilog="Exit codes: 0 every symbol fetched; 2 bad input, or every symbol failed; 3 some symbols "
               "failed (each said on its own line) and the others were fetched and cached.")
    symbols = fetch.add_mutually_exclusive_group(required=True)
    symbols.add_argument("--symbol",
                         help="ccxt unified symbol: BTC/USDT (spot), BTC/USDT:USDT (linear), BTC/USD:BTC (inverse)")
    symbols.add_argument("--symbols", metavar="S1,S2,...",
                         help="several symbols, comma-separated, fetched a few at a time (--concurrency)")
    symbols.add_argument("--symbols-file", metavar="FILE",
                         help="several symbols from a file, one per line (# starts a comment)")
    fetch.add_argument("--concurrency", type=int, default=4, metavar="N",
                       help="symbols fetched at once, on threads sharing one rate-limited ccxt client (default: 4)")
    fetch.add_argument("--timeframe", required=True, help="1m 3m 5m 15m 30m 1h 2h 4h 6h 12h 1d 1w")
    fetch.add_argument("--since", required=True, help="first candle time, e.g. 2024-01-01 (UTC)")
    fetch.add_argument("--until", help="end of the range, exclusive (default: now)")
    fetch.add_argument("--api-url", metavar="URL",
                       help="replace Bybit's REST base address (testnet, mirror, proxy); "
                            "default $DISTILLBT_BYBIT_URL or Bybit")
    fetch.set_defaults(handler=_cmd_fetch)

    data = commands.add_parser("data", help="inspect cached and other candle data",
                               description="Inspect candle data sources.")
    data_commands = data.add_subparsers(dest="data_command", metavar="ACTION", parser_class=_Parser)
    data_commands.required = True
    listing = data_commands.add_parser("list", parents=[shared["cache"], shared["output"]],
                                       help="list cached series", description="List the cached candle series.")
    listing.set_defaults(handler=_cmd_data_list)
    check = data_commands.add_parser(
        "check", parents=[shared["cache"], shared["data"], shared["output"]],
        help="load and validate a data source",
        description="Load a data source, validate it and print a summary (rows, range, interval, gaps). "
                    "SOURCE is 'sample', a candle file, or bybit:SYMBOL:TIMEFRAME from the cache.")
    check.add_argument("source", nargs="?", default=None, metavar="SOURCE",
                       help="the source to check (default: --data, i.e. sample)")
    check.set_defaults(handler=_cmd_data_check)
    basket = data_commands.add_parser(
        "basket", parents=[shared["cache"], shared["basket"], shared["output"]],
        help="load several instruments as one basket and show its calendar split",
        description="Load a basket of instruments — SOURCEs and repeated --data: 'sample' (with --sample-instruments "
                    "N), candle files, folders of candle files (one instrument per file, named by its stem), "
                    "bybit:SYM1,SYM2:TF from the cache — and print, per instrument, its candles, first and last "
                    "candle, gaps and candles in each period of the basket's one calendar split, then the "
                    "instruments short in a period and what was skipped and why. Exit 2 with one line only "
                    "when no instrument is usable.")
    basket.add_argument("sources", nargs="*", metavar="SOURCE", help="sources of the basket (with --data: all)")
    basket.add_argument("--fractions", default="0.5,0.3,0.2", metavar="F,F,F",
                        help="training,screening,holdout shares of the calendar (default: %(default)s, the screen's)")
    basket.set_defaults(handler=_cmd_data_basket)

    distill = commands.add_parser(
        "distill", parents=[shared["cache"], shared["data"], shared["jobs"], shared["output"]],
        help="distil the training period into a small set of points",
        description="Distil the training period (the first 60% of usable candles) of a data source into "
                    "a small weighted set of points, saved as .npz + JSON (no pickle).")
    distill.add_argument("--method", default="gradient",
                         help=f"one of: {', '.join(_methods())}; gradient@mlp (or trajectory@mlp) matches the "
                              "MLP instead of the task's linear model")
    distill.add_argument("--size", type=int, default=50, metavar="M", help="points in the set (default: 50)")
    distill.add_argument("--task", default="classification", choices=["classification", "regression"],
                         help="next-candle direction (default) or next-candle return")
    distill.add_argument("--per-regime", action="store_true",
                         help="distil each regime separately (one job per regime), sizes split equally")
    distill.add_argument("--regime", action="append", metavar="NAME",
                         help="only this regime (repeatable); implies --per-regime")
    distill.add_argument("--weighting", default="frequency", choices=["frequency", "equal"],
                         help="regime weights: their share of history (default) or equal")
    distill.add_argument("--out", metavar="FILE", help="artifact path (default: distilled-METHOD.npz)")
    distill.add_argument("--precision", default="float64", choices=["float64", "float32", "float16"],
                         help="float type the points are stored in (default: float64, exact)")
    distill.add_argument("--episodes", type=int, default=0, metavar="N",
                         help="also store N candle windows of the training period (with 1000 warm-up bars "
                              "each): the base episodes plain strategies' surrogates learn from when the set "
                              "is given to screen --distilled (default: 0, none; the screen uses 6)")
    distill.add_argument("--timeframes", metavar="TF,TF,...",
                         help="multi-horizon: resample the candles to each interval (e.g. 15m,1h,1d) and "
                              "store one part per interval in one artifact")
    distill.set_defaults(handler=_cmd_distill)

    evaluate = commands.add_parser(
        "evaluate", parents=[shared["cache"], shared["data"], shared["jobs"], shared["output"]],
        help="compare distillation methods and baselines on the real test period",
        description="DC-BENCH protocol on a chronological split (train 60%, validation 20%, test 20%): "
                    "each method and size distilled from the training period with several seeds, "
                    "learners trained on the result and scored on the test period.")
    evaluate.add_argument("--methods", default=",".join(_default_eval_methods()),
                          help="comma-separated methods (default: %(default)s)")
    evaluate.add_argument("--sizes", default="10,20,50,100", help="comma-separated sizes (default: %(default)s)")
    evaluate.add_argument("--seeds", type=int, default=5, help="seeds per method and size (default: 5)")
    evaluate.add_argument("--learners", default=None, help="comma-separated learners (default: all)")
    evaluate.add_argument("--per-regime", action="store_true", help="distil each regime separately")
    evaluate.add_argument("--out", metavar="FILE", help="write the results as JSON to FILE")
    evaluate.set_defaults(handler=_cmd_evaluate)

    screen = commands.add_parser(
        "screen", parents=[shared["cache"], shared["basket"], shared["jobs"], shared["output"]],
        help="rank every strategy configuration fast, backtest the survivors",
        description="Screen every configuration of the Backtrader strategies in DIR: model strategies are "
                    "fitted on distilled points and evaluated vectorised over the screening period, plain "
                    "strategies through a learned surrogate of each configuration (a full backtest where it "
                    "cannot be trusted); the top survivors are backtested in full on the screening and "
                    "holdout periods. Each class's `grid` gives its configurations and its `constraint` drops "
                    "some; --grid, --sample-configs and --config change the choice.",
        epilog="Config file: every flag above can be written in a TOML file given to --config, keys spelled as "
               "the flags without dashes (top = 5, sample-bars = 20000, validate = true, "
               "grid = [\"SmaCross.fast=5:50:5\"], folder = \"strategies/\" for DIR); flags on the command line "
               "win, and its --grid entries are added to the file's (the command line's win per STRATEGY.PARAM).")
    screen.add_argument("folder", metavar="DIR", nargs="?", default=None,
                        help="folder of strategy .py files (files named _*.py are helpers, not read); or folder "
                             "in --config")
    screen.add_argument("--config", metavar="FILE",
                        help="a TOML file of these flags' values (see the end of this help); flags given here win")
    screen.add_argument("--grid", action="append", type=_grid_option, default=None, metavar="STRATEGY.PARAM=VALUES",
                        help="repeatable: replace (or add) PARAM's values in class STRATEGY's grid: START:STOP:STEP "
                             "(STOP included when the steps land on it; decimals computed exactly: 0.1:0.5:0.1), "
                             "a comma list 5,10,20, or one value; e.g. SmaCross.fast=5:50:5. A class or parameter "
                             "not in DIR, bad syntax or an empty range: exit 2")
    screen.add_argument("--sample-configs", type=int, default=None, metavar="N",
                        help="a strategy with more than N configurations (after its constraint) keeps N drawn at "
                             "random, seeded by --seed (default: all)")
    screen.add_argument("--distilled", metavar="ARTIFACT",
                        help="a distilled set (.npz) to fit model strategies on instead of distilling now; "
                             "episodes stored in it (distill --episodes) also feed the plain strategies' surrogates")
    screen.add_argument("--method", default=None,
                        help="distillation method for every model strategy when distilling now (default: chosen "
                             "per estimator: exact-linear for linear and logistic models, a coreset of real rows "
                             "for trees, boosting, neighbours and the rest)")
    screen.add_argument("--size", type=int, default=None, metavar="M",
                        help="distilled points for every model strategy (default: features + 1 per regime for "
                             "exact-linear; 10000 for other estimators' k-means sets, or 100 with --method; "
                             "k-means sets hold at most a tenth of the training rows)")
    screen.add_argument("--short-training", type=int, default=None, metavar="ROWS",
                        help="fit trees, boosting, neighbours and other non-linear estimators on the training "
                             "rows themselves when the training period has fewer than ROWS (default: 20000; "
                             "0: always on a distilled set)")
    screen.add_argument("--top", type=int, default=10, metavar="K",
                        help="survivors: the K best screen scores, backtested in full on the screening and holdout "
                             "periods (default: 10; more than the configurations: all of them, with a note)")
    screen.add_argument("--min-score", type=float, metavar="S",
                        help="survivors: every configuration whose screen score is at least S, instead of --top")
    validation = screen.add_mutually_exclusive_group()
    validation.add_argument("--validate", action="store_true",
                            help="also backtest every configuration in full on the screening period: rank "
                                 "agreement, top-5 recall, speed-up")
    validation.add_argument("--validate-sample", type=int, metavar="N",
                            help="backtest N configurations drawn at random (seeded by --seed) in full: rank "
                                 "agreement with a bootstrap 90%% interval, speed-up estimated for all")
    screen.add_argument("--min-speedup", type=float, default=3.0, metavar="X",
                        help="plain strategies: back-test in full when the surrogates would be less than X times "
                             "faster (short histories); 0 forces the surrogate (default: 3)")
    screen.add_argument("--commission", type=float, default=0.001, metavar="C",
                        help="fraction of traded value (default: 0.001)")
    screen.add_argument("--cash", type=float, default=10_000.0, metavar="X", help="starting cash (default: 10000)")
    screen.add_argument("--slippage", type=float, default=0.0, metavar="S",
                        help="market orders fill this fraction of the price worse, on every path (Backtrader's "
                             "set_slippage_perc on the open, capped at the bar's high/low; default: 0)")
    screen.add_argument("--fraction", type=float, default=None, metavar="F",
                        help="share of equity per position on every path (default: 0.95 for plain strategies, "
                             "a model strategy's own fraction param; a plain strategy's own sizer wins in its full "
                             "backtests)")
    screen.add_argument("--pool", default=None, choices=["pooled", "per-instrument"],
                        help="a basket: fit each model strategy once on every instrument's distilled points "
                             "(pooled, the default) or one model per instrument on its own")
    screen.add_argument("--basket-score", default=None, choices=["mean", "median", "worst"],
                        help="a basket: a configuration's score from its instruments' scores (default: mean)")
    screen.add_argument("--objective", default="return", metavar="NAME",
                        help="what screen, full and holdout scores measure: return (log of final value / cash), "
                             "sharpe, sortino, calmar, max-drawdown, profit-factor or MODULE:FUNCTION "
                             "(FUNCTION(returns, equity) -> float, higher is better; default: return)")
    screen.add_argument("--plain", default="surrogate", choices=["surrogate", "replay", "full"],
                        help="plain strategies: a learned surrogate of each configuration from short episodes of "
                             "the training period, replayed where it cannot be trusted (default; see "
                             "--min-speedup); a replay each (the strategy's own next() over precomputed lines "
                             "with Backtrader's broker: exact); or a full backtest each")
    screen.add_argument("--horizons", metavar="TF,TF", default="",
                        help="model strategies also fit their model at these longer intervals and trade the mean "
                             "prediction (e.g. 1h,4h; points from the parts of a --distilled multi-horizon set, "
                             "or distilled now)")
    screen.add_argument("--no-cache", action="store_true",
                        help="screen every configuration again: neither reuse nor keep results (by default each "
                             "configuration's results are kept under the cache directory's screens/ folder and a "
                             "rerun screens only what changed: strategy files, data or options)")
    screen.add_argument("--out", metavar="FILE", help="write the results as JSON to FILE")
    screen.add_argument("--report", metavar="DIR", help="also write a report (index.html, summary.md, plots) to DIR")
    screen.add_argument("--folds", type=int, default=None, metavar="K",
                        help="walk-forward: K >= 2 anchored folds whose holdout windows tile the end of the history, "
                             "each an ordinary screen; ranks the survivors by their mean holdout score "
                             "(--report writes each fold's report to DIR/fold-k)")
    screen.add_argument("--show-strategy-output", action="store_true",
                        help="write what the strategies print or log to stderr (default: to a file beside --out, "
                             "--json FILE or --report, else in a temporary folder; its path is the last line)")
    screen.set_defaults(handler=_cmd_screen)
    parser.commands = commands.choices  # name → parser: screen --config sets its defaults (_parse_args)

    report = commands.add_parser(
        "report", help="write an HTML + Markdown report with plots from saved screen results",
        description="Write a self-contained report from the JSON of `screen --out`: index.html (opens "
                    "from disk, no network), summary.md and the plots as PNG, all in one folder.")
    report.add_argument("results", metavar="RESULTS", help="the screen results JSON (screen --out FILE)")
    report.add_argument("--out", default="report", metavar="DIR", help="folder to write (default: report)")
    report.add_argument("--evaluation", metavar="FILE",
                        help="the JSON of `evaluate --out FILE`, for the distillation-quality plot")
    report.add_argument("--embed-images", action="store_true",
                        help="put the plots inside index.html (base64) instead of beside it")
    report.set_defaults(handler=_cmd_report)
    update = commands.add_parser(
        "update", parents=[shared["cache"], shared["data"], shared["jobs"], shared["output"]],
        help="refresh a distilled set with newer candles (periodic, incremental or regime-triggered)",
        description="Update a distilled set with the candles after it: periodic re-distils every regime on "
                    "the latest --window candles; incremental warm-starts from the saved points for --steps "
                    "iterations; regime tests the new candles against those the set came from and re-distils "
                    "only the regimes that changed. The set's scaler, labeller and method are reused; its "
                    "lineage records the update.")
    update.add_argument("artifact", metavar="ARTIFACT", help="the distilled set (.npz) to update")
    update.add_argument("--policy", default="regime", choices=["periodic", "incremental", "regime"],
                        help="how to update (default: regime)")
    update.add_argument("--window", type=int, metavar="N",
                        help="periodic/incremental: candles of the rolling window (default: as many as the set "
                             "was distilled from)")
    update.add_argument("--steps", type=int, default=20, help="incremental: matching iterations (default: 20)")
    update.add_argument("--alpha", type=float, default=0.01, help="regime: test level (default: 0.01)")
    update.add_argument("--grow", type=float, default=2.0, metavar="X",
                        help="regime: when the mix changed, also re-distil a regime whose new rows are X times "
                             "its source rows or more (default: 2; 0 turns it off)")
    update.add_argument("--compare", action="store_true",
                        help="incremental: also run the full re-distillation and report closeness and speed-up")
    update.add_argument("--out", metavar="FILE", help="where to write the new set (default: ARTIFACT-updated.npz)")
    update.set_defaults(handler=_cmd_update)
    return parser


def _methods():
    from .distill.registry import METHODS

    return list(METHODS)


def _default_eval_methods():
    from .distill.registry import EVALUATION_METHODS

    return list(EVALUATION_METHODS)


def _int_list(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise _UsageError(f"{PROG}: {flag} takes comma-separated whole numbers, not {text!r}") from None
    if not values:
        raise _UsageError(f"{PROG}: {flag} is empty")
    return values


def _load(args):
    from .data.sources import load_candles

    if isinstance(args.data, list):  # the basket flags (repeatable --data) read by a one-source command
        if len(args.data) > 1:
            raise InputError(f"this command reads one --data source, not {len(args.data)}")
        args.data = args.data[0]
    candles = load_candles(args.data or "sample", cache_dir=args.cache_dir, sample_bars=args.sample_bars,
                           sample_timeframe=args.sample_timeframe, seed=args.seed,
                           timeframe=args.file_timeframe)
    return _until(candles, args.data_until) if getattr(args, "data_until", None) else candles


def _load_basket(args):
    """The :class:`~distillbt.data.basket.Basket` of ``--data`` (repeatable) and the flags of
    ``shared["basket"]``; a basket of one holds what :func:`_load` returns (``basket.single``)."""
    from .data.basket import MIN_CANDLES, load_basket

    sources = args.data if isinstance(args.data, list) else [args.data or "sample"]
    min_candles = getattr(args, "min_candles", None)
    basket = load_basket(sources or ["sample"], cache_dir=args.cache_dir, sample_bars=args.sample_bars,
                         sample_timeframe=args.sample_timeframe, seed=args.seed,
                         sample_instruments=getattr(args, "sample_instruments", None), timeframe=args.file_timeframe,
                         basket_timeframe=getattr(args, "basket_timeframe", None),
                         min_candles=MIN_CANDLES if min_candles is None else min_candles)
    return basket.until(args.data_until) if getattr(args, "data_until", None) else basket


def _until(candles, moment):
    import pandas as pd

    try:
        stamp = pd.Timestamp(moment)
    except (TypeError, ValueError):
        raise InputError(f"--until: {moment!r} is not a time (e.g. 2021-06-01 or 2021-06-01T12:00)") from None
    stamp = stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")
    stop = int(candles.frame.index.searchsorted(stamp, side="left"))
    if stop == 0:
        raise InputError(f"--until {moment}: no candle opens before it (the first opens "
                         f"{candles.frame.index[0].isoformat()})")
    return candles.rows(slice(0, stop), source=f"{candles.source} until {stamp.isoformat()}")


# -- commands ------------------------------------------------------------------------------
def _cmd_fetch(args) -> int:
    from .data.fetch import fetch_candles

    if args.symbol is None:
        return _cmd_fetch_many(args)
    report = fetch_candles(args.symbol, args.timeframe, since=args.since, until=args.until,
                           cache_dir=args.cache_dir, api_url=args.api_url,
                           progress=not args.no_progress)
    if _emit_json(args, {**report.candles.summary(), "fetched_candles": report.fetched_candles,
                          "requests": report.requests, "path": str(report.path)}):
        return 0
    print("\n".join(report.summary_lines()))
    return 0


def _cmd_fetch_many(args) -> int:
    """``fetch --symbols`` / ``--symbols-file``: exit 0 all fetched, 3 some failed, 2 all failed."""
    from .data.fetch import fetch_many, read_symbols_file, split_symbols

    symbols = split_symbols(args.symbols) if args.symbols is not None else read_symbols_file(args.symbols_file)
    report = fetch_many(symbols, args.timeframe, since=args.since, until=args.until, cache_dir=args.cache_dir,
                        api_url=args.api_url, progress=not args.no_progress, concurrency=args.concurrency)
    failed, code = len(report.failed), 0
    if failed:
        code = 2 if failed == len(report.results) else 3
    if not _emit_json(args, report.to_dict()):
        print("\n".join(report.summary_lines()))
    if failed:
        print(f"{PROG}: {failed} of {len(report.results)} symbols failed", file=sys.stderr)
    return code


def _cmd_data_list(args) -> int:
    from .data.cache import CandleCache

    cache = CandleCache(args.cache_dir)
    rows = []
    for entry in cache.entries():
        c = entry.candles
        rows.append({
            "source": entry.key.source, "category": entry.key.category,
            "first": c.start.isoformat() if len(c) else None,
            "last": c.end.isoformat() if len(c) else None,
            "candles": len(c), "gaps": len(c.gaps), "missing_candles": c.missing_candles,
            "path": str(entry.path),
        })
    if _emit_json(args, rows):
        return 0
    if not rows:
        print(f"no cached series under {cache.root}")
    else:
        headers = ["source", "category", "first", "last", "candles", "gaps"]
        print(_table(headers, [[r[h] for h in headers] for r in rows]))
        print(f"cache: {cache.root}")
    return 0


def _cmd_data_check(args) -> int:
    if args.source is not None:
        args.data = args.source
    candles = _load(args)
    summary = candles.summary()
    if _emit_json(args, summary):
        return 0
    label = "  [SYNTHETIC: embedded sample market]" if candles.synthetic else ""
    print(f"source:   {candles.source}{label}")
    print(f"symbol:   {candles.symbol}")
    print(f"rows:     {len(candles)}")
    print(f"range:    {summary['first']} → {summary['last']}")
    print(f"interval: {candles.timeframe}")
    print(f"gaps:     {len(candles.gaps)} ({candles.missing_candles} missing candles)")
    for gap in candles.gaps.nlargest(3, "missing").itertuples():
        print(f"          {gap.missing} missing after {gap.after.isoformat()}")
    print("valid: yes")
    return 0


def _cmd_data_basket(args) -> int:
    if args.sources:
        args.data = [*args.sources, *(args.data or [])]
    try:
        fractions = [float(v) for v in args.fractions.split(",") if v.strip()]
    except ValueError:
        raise _UsageError(f"{PROG}: --fractions takes comma-separated numbers, not {args.fractions!r}") from None
    basket = _load_basket(args)
    split = basket.calendar_split(fractions)
    if _emit_json(args, {**basket.summary(), "split": split.to_dict()}):
        return 0
    label = "  [SYNTHETIC]" if basket.synthetic else ""
    print(f"basket:    {len(basket)} instrument{'s' if len(basket) != 1 else ''} of {basket.timeframe} candles, "
          f"{basket.start.isoformat()} → {basket.end.isoformat()}{label}")
    print("periods (one calendar split for every instrument):")
    for line in split.lines():
        print(f"  {line}")

    def cell(name, period):
        have = split.candles(name, period)
        return f"{have:,} ({have / split.expected[period]:.0%})" if have else "-"

    rows = [[name, f"{len(c):,}", c.start.isoformat(), c.end.isoformat(), f"{len(c.gaps)} ({c.missing_candles:,})",
             *(cell(name, p) for p in split.names)] for name, c in basket.items()]
    print(_table(["instrument", "candles", "first", "last", "gaps (missing)", *split.names], rows))
    for name, reasons in split.short.items():
        print(f"short {name}: {'; '.join(reasons)}")
    for problem in basket.problems:
        print(f"skipped {problem}")
    return 0


def _cmd_distill(args) -> int:
    from .distill.prepare import prepare
    from .distill.runner import distill

    if args.timeframes:
        if args.episodes:
            raise InputError("--episodes is for a single-interval set: drop it or --timeframes")
        return _cmd_distill_horizons(args)
    method, method_params = _method_and_learner(args.method)
    candles = _load(args)
    data = prepare(candles)
    distilled = distill(data, method=method, size=args.size, task=args.task,
                        per_regime=args.per_regime or bool(args.regime), regimes=args.regime,
                        weighting=args.weighting, seed=args.seed, method_params=method_params, n_jobs=args.jobs,
                        backend=args.backend, scheduler=args.scheduler, progress=not args.no_progress)
    distilled = distilled.with_precision(args.precision)
    if args.episodes:
        from .distill.episodes import training_episodes

        distilled.episodes = training_episodes(data, n=args.episodes, seed=args.seed)
    path = distilled.save(args.out or f"distilled-{args.method}.npz")
    summary = {**distilled.summary(), "path": str(path), "synthetic_source": candles.synthetic}
    if distilled.episodes is not None:
        summary["episodes"] = distilled.episodes.summary()
    if _emit_json(args, summary):
        return 0
    label = " [SYNTHETIC sample market]" if candles.synthetic else ""
    train = data.split_info()["train"]
    print(f"source:       {candles.source}{label}")
    print(f"trained on:   {train['first']} → {train['last']} ({summary['source_candles']} candles)")
    print(f"method:       {args.method} ({args.task}), {summary['points']} points × "
          f"{summary['features']} features")
    for job in distilled.meta["jobs"]:
        print(f"  {job['regime']:<9} {job['points']:>4} points from {job['training_rows']:>7} rows  "
              f"{job['seconds']:.2f} s  iterations {job['n_iter']}  converged {job['converged']}")
    print(f"compression:  {summary['compression_ratio']:,.0f}x ({summary['source_candles'] * 48:,} raw "
          f"bytes of time+OHLCV float64 / {summary['payload_bytes']:,} bytes of points "
          f"in {distilled.precision})")
    if distilled.episodes is not None:
        e = summary["episodes"]
        print(f"episodes:     {e['n']} windows of {', '.join(map(str, e['length']))} bars (+{e['warmup']} warm-up), "
              f"{e['first']} → {e['last']}; {e['bytes']:,} bytes, beside the points")
    print(f"time:         {distilled.meta['seconds']:.2f} s on {args.backend} with {args.jobs} job(s)")
    print(path)
    return 0


def _method_and_learner(spelled: str):
    """``gradient@mlp`` → ("gradient", {"learner": "mlp"}): the learner a matching method matches."""
    from .distill.registry import method_class
    from .evaluate import DISTILL_LEARNERS

    method, _, learner = spelled.partition("@")
    if not learner:
        return method, None
    if learner not in DISTILL_LEARNERS:
        raise InputError(f"unknown learner {learner!r} in {spelled!r}: choose one of {', '.join(DISTILL_LEARNERS)}")
    if "learner" not in inspect.signature(method_class(method).__init__).parameters:
        raise InputError(f"{method} does not match a learner: drop @{learner}")
    return method, {"learner": learner}


def _cmd_distill_horizons(args) -> int:
    from .distill.update import distill_horizons

    timeframes = [tf.strip() for tf in args.timeframes.split(",") if tf.strip()]
    method, method_params = _method_and_learner(args.method)
    candles = _load(args)
    distilled = distill_horizons(candles, timeframes, method=method, method_params=method_params,
                                 size=args.size, task=args.task,
                                 per_regime=args.per_regime or bool(args.regime), regimes=args.regime,
                                 weighting=args.weighting, seed=args.seed, n_jobs=args.jobs, backend=args.backend,
                                 scheduler=args.scheduler, progress=not args.no_progress)
    distilled = distilled.with_precision(args.precision)
    path = distilled.save(args.out or f"distilled-{args.method}-{'-'.join(timeframes)}.npz")
    parts = {tf: distilled.part_for(tf).summary() for tf in distilled.timeframes}
    if _emit_json(args, {"timeframes": distilled.timeframes, "parts": parts, "points": distilled.size,
                          "path": str(path), "synthetic_source": candles.synthetic}):
        return 0
    label = " [SYNTHETIC sample market]" if candles.synthetic else ""
    print(f"source:       {candles.source}{label} ({candles.timeframe}, {len(candles)} candles)")
    print(f"method:       {args.method} ({args.task}), {distilled.size} points in {len(parts)} parts")
    for tf, part in parts.items():
        train = distilled.meta["horizons"][tf]["split"]["train"]
        print(f"  {tf:<5} {part['points']:>4} points from {part['source_candles']:>7} candles "
              f"({train['first']} → {train['last']}), {part['seconds']:.2f} s")
    print(f"time:         {distilled.meta['seconds']:.2f} s on {args.backend} with {args.jobs} job(s)")
    print(path)
    return 0


def _cmd_update(args) -> int:
    from .distill.artifact import DistilledSet
    from .distill.update import update

    parent = DistilledSet.load(args.artifact)
    candles = _load(args)
    result, report = update(parent, candles, policy=args.policy, window=args.window, steps=args.steps,
                            alpha=args.alpha, grow=args.grow or None, compare=args.compare, n_jobs=args.jobs, backend=args.backend,
                            progress=not args.no_progress)
    path = None
    if result is not parent:
        source = Path(args.artifact)
        path = result.save(args.out or source.with_name(f"{source.stem}-updated{source.suffix or '.npz'}"))
    if _emit_json(args, {**report.to_dict(), "path": str(path) if path else None}):
        return 0
    label = "  [SYNTHETIC: embedded sample market]" if candles.synthetic else ""
    print(f"artifact:    {args.artifact} ({parent.meta.get('method')}, {parent.size} points)")
    print(f"source:      {candles.source}{label}")
    print("\n".join(report.summary_lines()))
    print(f"lineage:     {len(result.lineage)} update(s)")
    print(path if path else "unchanged: nothing written")
    return 0


def _cmd_evaluate(args) -> int:
    from .distill.prepare import prepare
    from .evaluate import evaluate

    sizes = _int_list(args.sizes, "--sizes")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    learners = [l.strip() for l in args.learners.split(",")] if args.learners else None
    candles = _load(args)
    data = prepare(candles)
    kwargs = {"learners": learners} if learners else {}
    result = evaluate(data, methods=methods, sizes=sizes, seeds=args.seeds, per_regime=args.per_regime,
                      n_jobs=args.jobs, backend=args.backend, scheduler=args.scheduler, progress=not args.no_progress,
                      **kwargs)
    if args.out:
        Path(args.out).write_text(json.dumps(result.to_dict(), indent=1))
    if _emit_json(args, result.to_dict()):
        return 0
    label = " [SYNTHETIC sample market]" if candles.synthetic else ""
    print(f"source: {candles.source}{label}; scored on the test period "
          f"{data.split_info()['test']['first']} → {data.split_info()['test']['last']}; "
          f"mean±std over {args.seeds} seeds")
    print(result.table())
    if args.out:
        print(args.out)
    return 0



def _emit_json(args, payload) -> bool:
    """``--json``: print ``payload`` as JSON instead of the text (True); ``--json FILE``: write it
    to FILE and let the text follow (False); no flag: False."""
    if args.json is None:
        return False
    text = json.dumps(payload, default=_json_default)
    if args.json == "-":
        print(text)
        return True
    Path(args.json).write_text(text)
    return False

def _default_source(args) -> str:
    """With no --data: the one cached exchange series if there is exactly one, else the sample."""
    from .data.cache import CandleCache

    try:
        entries = CandleCache(args.cache_dir).entries()
    except DistillbtError:
        entries = []
    if len(entries) == 1:
        print(f"data: the only cached series, {entries[0].key.source}", file=sys.stderr)
        return entries[0].key.source
    print("data: the embedded sample market (synthetic); use --data for real candles", file=sys.stderr)
    return "sample"


def _cmd_screen(args) -> int:
    from .distill.artifact import DistilledSet
    from .screen import screen

    from .backtest import check_fills
    from .objectives import resolve

    if args.folder is None:
        raise _UsageError(f"{PROG} screen: give DIR, the folder of strategy files (or folder = \"DIR\" in --config)")
    folder = Path(args.folder)
    if not folder.is_dir():
        raise _UsageError(f"{PROG} screen: {folder} is not a folder of strategy files")
    _short_training(args)  # checked before any candles are read
    folder = _strategy_folder(args, folder)
    if args.top < 1:  # before loading data (more than the configurations: clamped by the screen)
        raise _UsageError(f"{PROG} screen: --top must be at least 1, not {args.top}")
    resolve(args.objective)  # before loading data: a typo costs no time
    if args.folds is not None and args.folds < 2:
        raise _UsageError(f"{PROG} screen: --folds must be at least 2, not {args.folds}")
    if args.folds is not None and args.distilled:
        raise _UsageError(f"{PROG} screen: --distilled and --folds do not mix: each fold distils from its own "
                          "training period")
    check_fills(slippage=args.slippage, fraction=args.fraction)
    if args.data is None and not args.sample_instruments:
        args.data = [_default_source(args)]
    basket = _load_basket(args)
    if basket.single is None:
        return _cmd_screen_basket(args, folder, basket)
    if args.pool is not None or args.basket_score is not None:
        raise _UsageError(f"{PROG} screen: --pool and --basket-score need a basket (several --data, a folder of "
                          "candle files, or --sample-instruments N)")
    candles = basket.single
    if args.folds is not None:
        return _cmd_screen_walk_forward(args, folder, candles)
    distilled = DistilledSet.load(args.distilled) if args.distilled else None
    result = screen(folder, candles, distilled=distilled, horizons=args.horizons,
                    cache=False if args.no_cache else (args.cache_dir or True), **_short_training(args),
                    **_screen_options(args))
    report, emitted = _write_screen_outputs(args, result)
    if emitted:
        return 0
    s = result.summary
    label = "  [SYNTHETIC: embedded sample market]" if candles.synthetic else ""
    print(f"source: {candles.source}{label}")
    for name, period in s["periods"].items():
        print(f"{name + ':':<11} {period['first']} → {period['last']} ({period['candles']} candles)")
    plain_how = {"surrogate": "surrogates", "replay": "replays", "full": "full backtests"}[args.plain]
    print(f"{s['configurations']} configurations ({s['model_configurations']} model: fitted on distilled "
          f"points, vectorised; {s['plain_configurations']} plain: {plain_how}), score = {s['score']}")
    for line in _selection_lines(s):
        print(line)
    if s.get("result_cache"):
        print(f"from the cache: {s['cached_configurations']} of {s['configurations']} configurations, "
              f"{s['cached_backtests']} full backtests ({s['result_cache']}; timings count only what ran; "
              "--no-cache screens everything)")
    if s.get("plain_surrogate"):
        ps = s["plain_surrogate"]
        how = (f"by surrogate (episodes: {ps['base_episodes']} × {ps['episode_length']} bars from training)"
               if args.plain == "surrogate" else "replayed")
        print(f"plain strategies {how}: paths {ps['paths']}")
    return _print_ranking(args, result, [report] if report is not None else [])


def _cmd_screen_walk_forward(args, folder: Path, candles) -> int:
    """``screen --folds K``: walk-forward over K anchored folds (:mod:`distillbt.walk_forward`);
    ``--report DIR`` writes each fold's report into ``DIR/fold-k``."""
    from .walk_forward import walk_forward

    result = walk_forward(folder, candles, folds=args.folds, horizons=args.horizons,
                          cache=False if args.no_cache else (args.cache_dir or True), **_short_training(args),
                          **_screen_options(args))
    payload = json.loads(json.dumps(result.to_dict(), default=_json_default))
    if args.out:
        Path(args.out).write_text(json.dumps(payload, indent=1))
    reports = []
    if args.report:
        from .report import write_report

        for number, fold in enumerate(payload["folds"], start=1):
            reports.append(write_report(fold, Path(args.report) / f"fold-{number}"))
    if _emit_json(args, payload):
        print(_strategy_output_line(result.summary), file=sys.stderr)  # stdout holds the JSON only
        return 0
    label = "  [SYNTHETIC: embedded sample market]" if candles.synthetic else ""
    print(f"source: {candles.source}{label}")
    for line in result.fold_lines():
        print(line)
    return _print_ranking(args, result, reports)


def _strategy_folder(args, folder: Path):
    """DIR with the configurations' choice of --grid, --sample-configs and --seed, discovered
    by the screen itself (inside its capture of what strategy files print)."""
    from .discovery import StrategyFolder
    from .screen_config import grid_overrides

    if args.sample_configs is not None and args.sample_configs < 1:
        raise _UsageError(f"{PROG} screen: --sample-configs must be at least 1, not {args.sample_configs}")
    return StrategyFolder(folder, grid=grid_overrides(args.grid), sample_configs=args.sample_configs, seed=args.seed)


def _selection_lines(summary: dict) -> list[str]:
    """How the configurations were chosen (constraints, --grid, --sample-configs) and the
    screen's notes (e.g. --top clamped), one line each; none when nothing was changed."""
    lines = []
    dropped = summary.get("constraint_dropped") or {}
    if any(dropped.values()):
        lines.append(f"constraints dropped {sum(dropped.values())} configurations before screening ("
                     + ", ".join(f"{name} {count}" for name, count in dropped.items()) + ")")
    for name, params in (summary.get("grid_overrides") or {}).items():
        lines.append(f"--grid {name}: " + "; ".join(f"{param} = {_shown(values)}" for param, values in params.items()))
    if summary.get("sampled_configurations") is not None:
        lines.append(f"--sample-configs {summary['sample_configs']}: {summary['sampled_configurations']} of "
                     f"{summary['configurations_before_sampling']} configurations screened (at most "
                     f"{summary['sample_configs']} per strategy, drawn at random, seeded by --seed)")
    lines += [f"note: {note}" for note in summary.get("notes") or ()]
    return lines


def _shown(values: list) -> str:
    text = [str(v) for v in values]
    return ", ".join(text) if len(text) <= 6 else f"{', '.join(text[:3])}, …, {text[-1]} ({len(text)} values)"


def _grid_option(text: str):
    """``--grid``'s type: (strategy, param, values); InputError (exit 2) naming the option."""
    from .screen_config import parse_grid_option

    return parse_grid_option(text)


def _parse_args(argv):
    """The command line, with ``screen --config FILE``'s values as the defaults of the flags not
    given (:mod:`distillbt.screen_config`): parsed once to find the file, then again."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "config", None) is None:
        return args
    from .screen_config import config_defaults, explicit_dests

    probe = build_parser()
    explicit = explicit_dests(probe.commands[args.command], lambda: probe.parse_args(argv))
    command = parser.commands[args.command]
    command.set_defaults(**config_defaults(args.config, command, explicit=explicit))
    return parser.parse_args(argv)


def _cmd_screen_basket(args, folder: Path, basket) -> int:
    """``screen`` over a basket of instruments (:func:`distillbt.basket_screen.screen_basket`)."""
    from .basket_screen import screen_basket

    for flag, value in (("--distilled", args.distilled), ("--horizons", args.horizons), ("--folds", args.folds),
                        ("--short-training", args.short_training is not None)):
        if value:
            raise _UsageError(f"{PROG} screen: {flag} is for one instrument, not a basket")
    result = screen_basket(folder, basket, pool=args.pool or "pooled", basket_score=args.basket_score or "mean",
                           **_screen_options(args))
    report, emitted = _write_screen_outputs(args, result)
    if emitted:
        return 0
    s = result.summary
    label = "  [SYNTHETIC: embedded sample market]" if basket.synthetic else ""
    print(f"source: basket of {len(s['instruments'])} instruments, {s['timeframe']}{label}")
    for name, period in s["periods"].items():
        print(f"{name + ':':<11} {period['first']} → {period['last']} ({period['candles']:,} candles on "
              f"{len(s['instruments'])} instruments)")
    for name in s["instruments"]:
        periods = s["instrument_periods"][name]
        print(f"  {name}: " + ", ".join(f"{p} {v['candles']:,}" for p, v in periods.items()) + " candles")
    plain_how = {"full": "full backtests", "replay": "replays on every instrument",
                 "surrogate": f"surrogates learned on {s['instruments'][0]}, walked on every instrument"}[args.plain]
    print(f"{s['configurations']} configurations × {len(s['instruments'])} instruments ({s['model_configurations']} "
          f"model: fitted {s['pool']} on distilled points, vectorised; {s['plain_configurations']} plain: "
          f"{plain_how}), basket score = {s['basket_score']} of each instrument's {s['objective']} ({s['score']})")
    for line in _selection_lines(s):
        print(line)
    return _print_ranking(args, result, [report] if report is not None else [])


def _short_training(args) -> dict:
    """``short_training`` when given (one instrument and walk-forward folds; a basket's
    instruments share one choice of sets)."""
    if args.short_training is None:
        return {}
    if args.short_training < 0:
        raise _UsageError(f"{PROG} screen: --short-training must be 0 or more rows")
    return {"short_training": args.short_training}


def _screen_options(args) -> dict:
    """The options every kind of screen (one instrument, a basket, walk-forward folds) takes
    from the command line, spelled once."""
    return dict(method=args.method, size=args.size, top=args.top, min_score=args.min_score, validate=args.validate,
                validate_sample=args.validate_sample, min_speedup=args.min_speedup, n_jobs=args.jobs,
                backend=args.backend, commission=args.commission, cash=args.cash, seed=args.seed,
                progress=not args.no_progress, objective=args.objective, slippage=args.slippage,
                fraction=args.fraction, plain=args.plain, strategy_log=_strategy_log_path(args),
                show_strategy_output=args.show_strategy_output)


def _write_screen_outputs(args, result) -> tuple:
    """``--out`` and ``--report`` (through JSON, so the report sees exactly what a saved results
    file would hold) and ``--json``: ``(report path or None, whether JSON went to stdout)``."""
    if args.out:
        Path(args.out).write_text(json.dumps(result.to_dict(), indent=1, default=_json_default))
    report = None
    if args.report:
        from .report import write_report

        report = write_report(json.loads(json.dumps(result.to_dict(), default=_json_default)), args.report)
    if _emit_json(args, result.to_dict()):
        print(_strategy_output_line(result.summary), file=sys.stderr)  # stdout holds the JSON only
        return report, True
    return report, False


def _strategy_log_path(args) -> Path | None:
    """Where ``screen`` writes what strategies print: beside ``--out``, ``--json FILE`` or
    ``--report DIR`` (``<stem>.strategy.log``), else None (a temporary folder)."""
    if args.out:
        return Path(args.out).with_name(Path(args.out).stem + ".strategy.log")
    if args.json not in (None, "-"):
        return Path(args.json).with_name(Path(args.json).stem + ".strategy.log")
    if args.report:
        folder = Path(args.report).resolve()
        return folder.with_name(folder.name + ".strategy.log")
    return None


def _print_ranking(args, result, reports) -> int:
    """The end of a screen's text output, the same for one instrument, a basket and
    walk-forward: the ranking, what was skipped or failed, the trust lines, where the report
    and ``--out`` went, and the strategy output line last. Returns the exit code 0."""
    print(result.table())
    for problem in getattr(result, "problems", ()):
        print(f"skipped {problem.get('instrument') or problem.get('file')}: {problem['message']}")
    for record in getattr(result, "records", ()):
        if record.error:
            print(f"failed {record.name}: {record.error}")
    for line in result.summary_lines():
        print(line)
    for report in reports:
        print(f"report: {report}")
    if args.out:
        print(args.out)
    print(_strategy_output_line(result.summary))  # always the last line
    return 0


def _strategy_output_line(summary: dict) -> str:
    """``strategy output: PATH (N lines)`` (``(empty)``; ``shown on stderr`` with
    ``--show-strategy-output``; ``none`` when silent strategies had no log file to write)."""
    lines = summary.get("strategy_output_lines", 0)
    count = "empty" if not lines else f"{lines} line{'s' if lines != 1 else ''}"
    where = summary.get("strategy_log") or ("shown on stderr" if lines else "none")
    return f"strategy output: {where} ({count})" if where != "none" else "strategy output: none"


def _cmd_report(args) -> int:
    from .report import write_report

    print(write_report(args.results, args.out, evaluation=args.evaluation, embed_images=args.embed_images))
    return 0


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _table(headers, rows) -> str:
    cells = [[str(h) for h in headers]] + [[str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    try:
        args = _parse_args(argv)
        with _logging(args.verbose, args.quiet), _executor(args) as executor:
            if executor is not None and getattr(args, "folder", None):
                executor.require_files(Path(args.folder).glob("*.py"))  # strategies on remote Dask workers
            return args.handler(args)
    except _UsageError as error:
        print(str(error), file=sys.stderr)
        return 2
    except DistillbtError as error:
        print(f"{PROG}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the last line of defence
        if os.environ.get("DISTILLBT_DEBUG"):
            traceback.print_exc()
        print(f"{PROG}: internal error: {type(error).__name__}: {_one_line(error)} "
              "(set DISTILLBT_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


def _executor(args):
    """The one executor of a command that takes ``--jobs`` (entered around the whole command, so
    every stage runs on it and Dask starts one cluster); a null context for the others."""
    if not hasattr(args, "jobs"):
        return contextlib.nullcontext()
    from .executor import Executor

    args.backend = args.backend or ("dask" if args.scheduler else "loky")
    return Executor(n_jobs=args.jobs, backend=args.backend, scheduler=args.scheduler)


@contextlib.contextmanager
def _logging(verbose: int, quiet: bool):
    """The ``distillbt`` logger to stderr, one line per message, for one command: WARNING by
    default, -v INFO, -vv DEBUG, -q ERROR. Dask's own loggers go to WARNING (ERROR with -q,
    INFO with -vv). The loggers are as they were afterwards."""
    import logging

    from .executor import LOG_FORMAT

    class StderrHandler(logging.StreamHandler):
        """Writes to whatever ``sys.stderr`` is when a message comes (tests swap it)."""

        @property
        def stream(self):
            return sys.stderr

        @stream.setter
        def stream(self, value):
            pass

    level = logging.ERROR if quiet else {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    ours, theirs = logging.getLogger("distillbt"), logging.getLogger("distributed")
    before = ours.level, theirs.level
    handler = StderrHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    ours.addHandler(handler)
    ours.setLevel(level)
    theirs.setLevel(logging.INFO if level == logging.DEBUG else max(level, logging.WARNING))
    try:
        yield
    finally:
        ours.removeHandler(handler)
        ours.setLevel(before[0])
        theirs.setLevel(before[1])


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__
