"""What the report's plots need beyond the screen's scores, collected while the screen runs.

:func:`collect_series` turns a screen's candles, prepared data, distilled sets and survivors'
full backtests into small JSON-able arrays (``ScreenResult.series``, saved under ``"series"``
in the results JSON): price and regime labels of the whole history, the survivors' equity on
real history beside the close price and buy-and-hold, the survivors' closed trades, per-regime
feature histograms of the training period beside the distilled points, and a few real episodes
per regime. Every time series is cut to at most :data:`MAX_POINTS` points and every survivor's
trades to the first :data:`MAX_TRADES` of each period, so a results file stays small whatever
the history's length.

This module imports no plotting library: the screen calls it, and the report reads what it
saved (or, for results saved without it, :func:`series_from_candles` recomputes the price,
regimes and episodes from the candles).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["collect_series", "series_from_candles", "downsample_positions", "trade_rows", "MAX_POINTS",
           "MAX_TRADES", "DISTRIBUTION_FEATURES"]

MAX_POINTS = 2000
#: Trades kept per survivor and period (the first ones; the totals count them all).
MAX_TRADES = 300
#: Features drawn in the real-vs-distilled plot: one each of return, volatility, volume, trend.
DISTRIBUTION_FEATURES = ("ret_1", "vol_16", "volume_z_16", "ma_dist_64")
_BINS = 40
_EPISODE_CANDLES = 40


def series_from_candles(periods: dict, candles) -> dict:
    """Price, regimes and episodes recomputed from ``candles`` for results saved without them.

    ``periods``: the results' ``summary["periods"]`` (name → ``first``/``last`` times). Raises
    ``ValueError`` when the candles do not cover the training period."""
    from .distill.prepare import prepare

    frame = candles.frame
    bounds = {}
    for name, period in periods.items():
        first, last = pd.Timestamp(period["first"]), pd.Timestamp(period["last"])
        bounds[name] = (int(frame.index.searchsorted(first)), int(frame.index.searchsorted(last, side="right")))
    train = bounds.get("training")
    if train is None or train[1] - train[0] < 2:
        raise ValueError("the candles given do not cover the results' training period")
    fractions = np.array([b - a for a, b in bounds.values()], dtype="float64")
    data = prepare(candles, fractions=tuple(fractions / fractions.sum()))
    labels = pd.Series(np.asarray(data.regime, dtype=object), index=data.times)
    price, regimes = _timeline(frame, labels, bounds)
    return {"price": price, "regimes": regimes, "episodes": _episodes(frame, data)}


def downsample_positions(n: int, limit: int = MAX_POINTS) -> np.ndarray:
    """At most ``limit`` evenly spaced positions of ``range(n)``, first and last included."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


def _list(values, digits: int = 6) -> list:
    """Floats rounded to ``digits`` significant digits; NaN/inf → None (JSON has no NaN)."""
    out = []
    for v in np.asarray(values, dtype="float64"):
        out.append(float(f"{v:.{digits}g}") if np.isfinite(v) else None)
    return out


def _round(value, digits: int = 6):
    """One float as :func:`_list` rounds it (None for NaN/inf)."""
    return _list([value], digits)[0]


def _iso(index) -> list[str]:
    return [t.isoformat() for t in index]


def collect_series(candles, *, data, sets: dict, records: list, curves: dict, periods: dict,
                   screening_curves: dict, holdout_curves: dict, cash: float,
                   full_results: dict | None = None, holdout_results: dict | None = None) -> dict:
    """The report's series for one screen (see the module docstring).

    ``periods``: name → candle positions ``(start, stop)``; ``screening_curves`` and
    ``holdout_curves``: configuration name → equity of its full backtest on that period (the
    survivors'); ``curves``: the screen's equity per configuration (for plain strategies
    screened by a full backtest, that backtest). ``full_results`` and ``holdout_results``:
    configuration name → :func:`~distillbt.backtest.run_backtest` result on the screening and
    holdout periods; the survivors' closed trades are taken from them (``"trades"``, see
    :func:`trade_rows`), and left out when neither is given.
    """
    frame = candles.frame
    out = {"max_points": MAX_POINTS}
    labels = pd.Series(np.asarray(data.regime, dtype=object), index=data.times)
    out["price"], out["regimes"] = _timeline(frame, labels, periods)
    out["equity"] = _equity(frame, records, curves, periods, screening_curves, holdout_curves, cash)
    if full_results is not None or holdout_results is not None:
        out["trades"] = _survivor_trades(records, full_results or {}, holdout_results or {})
    out["distributions"] = _distributions(data, sets)
    out["episodes"] = _episodes(frame, data)
    return out


def trade_rows(trades, limit: int = MAX_TRADES) -> dict:
    """A backtest's closed trades (``run_backtest(...)["trades"]``) as JSON-able rows.

    Returns ``{"count", "kept", "pnl_total", "wins", "rows"}``: the totals count every trade,
    ``rows`` holds the first ``limit``, each ``entry_time``/``exit_time`` (ISO, UTC),
    ``entry_price``, ``exit_price``, ``size`` (the largest signed size reached: negative is
    short), ``pnl`` (net of commission), ``pnl_pct`` (that P&L as a percentage of the position's
    value at entry) and ``bars`` held.
    """
    trades = list(trades or [])
    rows = []
    for trade in trades[:limit]:
        size, entry = float(trade["size"]), float(trade["entry_price"])
        notional = abs(size) * entry
        pnl = float(trade["pnl"])
        rows.append({
            "entry_time": pd.Timestamp(trade["entry_time"]).isoformat(),
            "exit_time": pd.Timestamp(trade["exit_time"]).isoformat(),
            "entry_price": _round(entry, 8), "exit_price": _round(trade["exit_price"], 8),
            "size": _round(size, 8), "pnl": _round(pnl, 8),
            "pnl_pct": _round(100.0 * pnl / notional if notional > 0 else np.nan, 5),
            "bars": int(trade["bars"]),
        })
    pnls = np.array([float(t["pnl"]) for t in trades], dtype="float64")
    return {"count": len(trades), "kept": len(rows), "pnl_total": _round(pnls.sum(), 8),
            "wins": int((pnls > 0).sum()), "rows": rows}


def _survivor_trades(records, full_results: dict, holdout_results: dict) -> dict:
    """Survivor name → period → :func:`trade_rows`; a period whose full backtest is not at
    hand (failed, or not kept by the screen) is missing."""
    out = {}
    for record in records:
        if not record["survivor"]:
            continue
        periods = {}
        for period, results in (("screening", full_results), ("holdout", holdout_results)):
            result = results.get(record["name"])
            if result is not None and not result.get("error") and result.get("trades") is not None:
                periods[period] = trade_rows(result["trades"])
        out[record["name"]] = periods
    return out


def _timeline(frame, labels: pd.Series, periods: dict) -> tuple[dict, dict]:
    n = len(frame)
    keep = downsample_positions(n)
    price = {"times": _iso(frame.index[keep]), "close": _list(frame["close"].to_numpy()[keep])}
    # Each drawn point carries the most frequent regime of the candles it stands for, so short
    # regimes between two drawn points are not lost to the stride's luck.
    full = labels.reindex(frame.index)
    names = [str(n) for n in pd.unique(full.dropna())]
    codes = np.full(n, -1, dtype=np.int64)
    for k, name in enumerate(names):
        codes[(full == name).to_numpy()] = k
    bins = np.searchsorted(keep, np.arange(n), side="right") - 1
    counts = np.zeros((len(keep), len(names) + 1), dtype=np.int64)
    np.add.at(counts, (bins, codes + 1), 1)  # column 0 counts unlabelled candles
    winner = counts[:, 1:].argmax(axis=1) if names else np.zeros(len(keep), dtype=np.int64)
    labelled = counts[:, 1:].sum(axis=1) > 0 if names else np.zeros(len(keep), dtype=bool)
    drawn = [names[w] if ok else None for w, ok in zip(winner, labelled)]
    shares = {}
    for name, (start, stop) in {"all": (0, n), **periods}.items():
        part = full.iloc[start:stop].dropna()
        shares[name] = {str(k): round(float(v), 6) for k, v in part.value_counts(normalize=True).items() if v > 0}
    return price, {"labels": drawn, "aligned_with": "price.times", "shares": shares,
                   "labeller": "fitted on the training period; labels are causal"}


def _equity(frame, records, curves, periods, full_screen, holdout, cash) -> dict:
    (s_start, s_stop), (h_start, h_stop) = periods["screening"], periods["holdout"]
    positions = np.r_[np.arange(s_start, s_stop), np.arange(h_start, h_stop)]
    n_screen = s_stop - s_start
    keep = downsample_positions(len(positions))
    out_curves = {}
    for record in records:
        if not record["survivor"]:
            continue
        name = record["name"]
        line = np.full(len(positions), np.nan)
        # Configurations screened by an estimate (vectorised, surrogate) were backtested in full
        # afterwards; plain ones screened by a full backtest already have it in ``curves``.
        screen_leg = full_screen.get(name, curves.get(name) if record["path"] == "full" else None)
        if screen_leg is not None and len(screen_leg):
            leg = np.asarray(screen_leg, dtype="float64")[-n_screen:]
            line[n_screen - len(leg): n_screen] = leg
        hold_leg = holdout.get(name)
        if hold_leg is not None and len(hold_leg):
            leg = np.asarray(hold_leg, dtype="float64")[-(len(positions) - n_screen):]
            # The holdout backtest starts again from the cash; chaining it onto the screening
            # leg's last value shows one account over both periods.
            last = line[n_screen - 1]
            scale = last / cash if np.isfinite(last) and cash else 1.0
            line[len(positions) - len(leg):] = leg * scale
        out_curves[name] = _list(line[keep], 8)
    close = frame["close"].to_numpy()[positions]
    return {
        "times": _iso(frame.index[positions[keep]]),
        "curves": out_curves,
        "close": _list(close[keep], 8),
        "buy_and_hold": _list(cash * close[keep] / close[0], 8),
        "holdout_start": frame.index[h_start].isoformat(),
        "cash": cash,
        "note": "full Backtrader backtests on real candles; the holdout leg is chained onto the screening "
                "leg's final value; buy and hold = cash × close / first close, no costs",
    }


def _distributions(data, sets: dict) -> dict:
    names = list(data.feature_names)
    features = [f for f in DISTRIBUTION_FEATURES if f in names] or names[:4]
    cols = [names.index(f) for f in features]
    train = data.parts["train"]
    X = data.X[train][:, cols]
    regimes = np.asarray(data.regime[train], dtype=object)
    real = {}
    edges = {}
    for j, feature in enumerate(features):
        lo, hi = np.quantile(X[:, j], [0.005, 0.995])
        edges[feature] = np.linspace(lo, hi if hi > lo else lo + 1.0, _BINS + 1)
    for regime in pd.unique(regimes):
        if regime is None or (isinstance(regime, float) and np.isnan(regime)):
            continue
        rows = X[regimes == regime]
        real[str(regime)] = {
            f: {"edges": _list(edges[f], 5),
                "counts": np.histogram(rows[:, j], bins=edges[f])[0].astype(int).tolist()}
            for j, f in enumerate(features)}
    distilled = {}
    for task, dset in sets.items():
        set_names = list(dset.meta.get("feature_names") or names)
        if not all(f in set_names for f in features):
            continue
        idx = [set_names.index(f) for f in features]
        distilled[task] = {
            "method": dset.meta.get("method"), "features": features,
            "X": [_list(row, 5) for row in np.asarray(dset.X)[:, idx]],
            "weight": _list(dset.weight, 6), "regime": [str(r) for r in dset.regime],
        }
    return {"features": features, "scale": "standardised with the training period's mean and std",
            "real": real, "distilled": distilled}


def _episodes(frame, data, per_regime: int = 2) -> list:
    """Up to ``per_regime`` windows of ``_EPISODE_CANDLES`` candles per regime of the training period,
    from its longest runs: a long run gives several windows spread along it, and a further run
    is used only if it is long enough to fill a window (a 2-candle run would show other regimes)."""
    train = data.parts["train"]
    labels = np.asarray(data.regime[train], dtype=object)
    times = data.times[train]
    if not len(labels):
        return []
    change = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    stops = np.r_[change[1:], len(labels)]
    runs: dict = {}
    for a, b in zip(change, stops):
        regime = labels[a]
        if regime is None or (isinstance(regime, float) and np.isnan(regime)):
            continue
        runs.setdefault(str(regime), []).append((int(a), int(b)))
    out = []
    for regime, spans in runs.items():
        centres: list = []
        for a, b in sorted(spans, key=lambda ab: -(ab[1] - ab[0])):
            if centres and b - a < _EPISODE_CANDLES:
                break
            k = min(per_regime - len(centres), max(1, (b - a) // _EPISODE_CANDLES))
            centres += [(a + (b - a) * (2 * j + 1) // (2 * k), b - a) for j in range(k)]
            if len(centres) >= per_regime:
                break
        for centre, length in centres:
            middle = frame.index.get_loc(times[centre])
            start = max(0, middle - _EPISODE_CANDLES // 2)
            part = frame.iloc[start: start + _EPISODE_CANDLES]
            out.append({"regime": regime, "start": part.index[0].isoformat(), "run_candles": length,
                        "ohlc": [_list(row, 7) for row in part[["open", "high", "low", "close"]].to_numpy()]})
    order = {"bull": 0, "bear": 1, "sideways": 2, "volatile": 3, "crash": 4}
    return sorted(out, key=lambda e: (order.get(e["regime"], 9), e["start"]))
