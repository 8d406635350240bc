"""What a strategy's non-market orders are, read from a recorded run: protective orders the
fast path fills (:mod:`distillbt.protective`), or a reason it does not model them.

:func:`protective_trades` reads one run's orders (Backtrader ``Order`` objects, as the broker
left them) against its positions and prices; :func:`identify` takes the trades of all of a
configuration's runs and finds the one :class:`~distillbt.protective.Protection` that
prices every one of them — each stop or limit a constant multiple of the close of the bar
that sent it or of the entry's fill price, or one of those plus a constant multiple of one of
the strategy's lines at that bar (an ATR), each trail a constant amount or percentage — or
says why there is none. The multiples are read off the recorded prices, never from the
strategy's parameters or source: the rule must hold, to rounding, on every trade recorded.
"""

from __future__ import annotations

import math

import backtrader as bt
import numpy as np

from ..protective import ANCHORS, Protection, ProtectiveOrder

__all__ = ["protective_trades", "identify", "fits", "TOLERANCE"]

#: Largest relative spread of a price rule's multiple over the trades recorded (rounding).
TOLERANCE = 1e-9
_KINDS = {bt.Order.Stop: "stop", bt.Order.Limit: "limit", bt.Order.StopTrail: "trail"}


def _bar(dates: np.ndarray, dt: float) -> int:
    return int(np.searchsorted(dates, dt))


def protective_trades(orders, positions, dates, open_, close, lines=dict) -> tuple[list, str | None]:
    """``(trades, reason)`` for one run: per trade carrying protective orders, a tuple of
    ``(kind, sent, {anchor: value}, price, trail_amount, trail_percent, {line: value})`` per
    order in the order sent; ``reason`` (None, or one line) when some order is not one the
    fast path fills. ``orders``: the run's non-market orders and bracket children, Rejected
    ones (sent in the warm-up) left out; ``positions`` (signed units), ``dates`` (Backtrader
    date numbers), ``open_`` and ``close`` per bar of the run; ``lines()``: the strategy's
    lines by name (:func:`~.own_lines.graph_lines`' names), arrays over the run (asked only
    when there are orders)."""
    n = len(positions)
    sign = np.sign(positions)
    groups: dict = {}  # entry fill bar -> [(ref, order, sent)]
    for order in orders:
        name = bt.Order.ExecTypes[order.exectype]
        parent = getattr(order, "parent", None)
        if parent is not None and parent.exectype != bt.Order.Market:
            return [], f"{bt.Order.ExecTypes[parent.exectype]} entries (with a bracket)"
        sent_bar = _bar(dates, order.created.dt)
        if parent is None and not sign[sent_bar]:
            return [], f"{name} entries"  # sent while flat: it opens the position
        kind = _KINDS.get(order.exectype)
        if kind is None:
            return [], f"{name} orders"
        if order.valid:
            return [], f"protective {name} orders that expire"
        if kind == "trail" and order.params.price is not None:
            return [], "trailing stops from a price of their own"
        if parent is not None:
            if parent.status != bt.Order.Completed:
                continue  # its entry never filled: neither did it
            entry, sent = _bar(dates, parent.executed.dt), "with_entry"
            if entry != sent_bar + 1:
                return [], "bracket entries that do not fill at the next open"
        else:
            entry, sent = sent_bar, "on_fill"
            if sent_bar and sign[sent_bar - 1] == sign[sent_bar]:
                return [], f"{name} orders sent later in a trade than the bar its entry fills"
        held = positions[entry] if entry < n else 0.0
        if (order.isbuy() and held >= 0) or (order.issell() and held <= 0):
            return [], "stop or limit orders that open positions"
        if abs(abs(order.size) - abs(held)) > TOLERANCE * abs(held):
            return [], "stop or limit orders that close part of a position"
        groups.setdefault(entry, []).append((order.ref, order, sent))
    trades = []
    arrays = lines() if groups else {}
    shown = unshown = 0  # trades of several orders, not a bracket's, whose fills showed (or not) OCO
    for entry, group in sorted(groups.items()):
        group.sort(key=lambda g: g[0])
        filled = {_bar(dates, o.executed.dt) for _, o, _ in group if o.status == bt.Order.Completed}
        why = next(filter(None, (_outcome(o, entry, sign, dates, filled) for _, o, _ in group)), None)
        if why:
            return [], why
        together = _cancelled_together([o for _, o, _ in group], dates) if len(group) > 1 else True
        if together is False:
            return [], "several stop or limit orders on a trade that do not cancel each other (bracket or OCO)"
        shown, unshown = shown + (len(group) > 1 and together is True), unshown + (together is None)
        trade = []
        for _, order, sent in group:
            at = entry - 1 if sent == "with_entry" else entry
            anchors = {"sent_close": float(close[at]), "fill": float(open_[entry])}
            trade.append((_KINDS[order.exectype], sent, anchors,
                          float(order.created.price), float(order.trailamount or 0.0),
                          float(order.trailpercent or 0.0), {k: float(v[at]) for k, v in arrays.items()}))
        trades.append(tuple(trade))
    if unshown and not shown:
        return [], "several stop or limit orders on a trade, never seen to cancel each other"
    entries = np.flatnonzero((sign != 0) & (np.concatenate(([0.0], sign[:-1])) != sign))
    entries = entries[entries < n - 1]  # one filled at the last bar: its orders are never notified
    trades = [t for e, t in zip(sorted(groups), trades) if e < n - 1]
    if trades and len(trades) != len(entries):
        return [], f"protective orders on {len(trades)} of {len(entries)} trades"
    return trades, None


def _outcome(order, entry, sign, dates, filled) -> str | None:
    """None when ``order`` ended with its trade: it closed it, was cancelled as the trade
    closed (by the strategy at the close that orders the exit, or by its bracket or OCO
    sibling filling: ``filled``, the bars its siblings filled on), or is still working at the
    end of the run while the trade is open."""
    n, held = len(sign), sign[entry]
    changed = np.flatnonzero(sign[entry:] != held)
    end = entry + int(changed[0]) if len(changed) else n  # the bar the trade closes in (n: still open)
    if order.status == bt.Order.Completed:
        bar = _bar(dates, order.executed.dt)
        return None if bar == end and sign[bar] == 0 else "stop or limit orders that do not close their trade"
    if order.alive():
        return None if end == n else "stop or limit orders left working after their trade"
    if order.status == bt.Order.Canceled:
        bar = _bar(dates, order.executed.dt) if order.executed.dt else None
        if bar is None or bar == end - 1 or (bar == end and end in filled):
            return None
        return "stop or limit orders cancelled before or after their trade closes"
    return f"stop or limit orders that end {order.getstatusname()}"


def _cancelled_together(orders, dates) -> bool | None:
    """Whether a trade's orders cancel each other when one fills (a bracket's children, an
    OCO group — the broker keeps no OCO link on the order, so its effect is what is read):
    True for a bracket or a fill that cancelled the others on its bar, False for one that
    did not, None when none filled."""
    parents = {getattr(getattr(o, "parent", None), "ref", None) for o in orders}
    if len(parents) == 1 and None not in parents:
        return True
    filled = [o for o in orders if o.status == bt.Order.Completed]
    if not filled:
        return None
    bar = _bar(dates, filled[0].executed.dt)
    return len(filled) == 1 and all(o.status == bt.Order.Canceled and o.executed.dt
                                    and _bar(dates, o.executed.dt) == bar for o in orders if o is not filled[0])


def identify(trades) -> tuple[Protection | None, str | None]:
    """``(protection, reason)``: the :class:`~distillbt.protective.Protection` every trade in
    ``trades`` (:func:`protective_trades`' lists, runs together) carries, None without
    trades; or a reason the fast path does not fill them."""
    if not trades:
        return None, None
    shapes = {tuple((kind, sent) for kind, sent, *_ in trade) for trade in trades}
    if len(shapes) > 1:
        return None, "protective orders that differ from trade to trade"
    orders = []
    for k, (kind, sent) in enumerate(next(iter(shapes))):
        seen = [trade[k] for trade in trades]
        if kind == "trail":
            amounts = {(s[4], s[5]) for s in seen}
            if len(amounts) > 1:
                return None, "trailing stops whose distance differs from trade to trade"
            amount, percent = amounts.pop()
            orders.append(ProtectiveOrder(kind, sent, trail_amount=amount, trail_percent=percent))
            continue
        fitting = _rules(seen)
        if not fitting:
            return None, (f"{kind} prices that are no fixed multiple of the close, the entry price or a line "
                          "of the strategy, nor the close or entry price plus a multiple of a line")
        if len(fitting) > 1 and len(seen) < 2:
            return None, f"one trade only: too few to tell what its {kind} price follows"
        orders.append(ProtectiveOrder(kind, sent, **fitting[0]))
    return Protection(tuple(orders)), None


def _constant(values: np.ndarray) -> bool:
    return bool(np.isfinite(values).all() and values.mean() != 0
                and np.ptp(values) <= TOLERANCE * abs(values.mean()))


def _rules(seen) -> list[dict]:
    """Every rule that prices all of ``seen`` (one order slot over the trades), simplest
    first: a multiple of an anchor, then an anchor plus a multiple of a line."""
    fitting = []
    names = sorted(set.intersection(*(set(s[6]) for s in seen))) if seen else []
    with np.errstate(all="ignore"):
        for anchor in ANCHORS[:2]:
            ratios = np.array([s[3] for s in seen]) / np.array([s[2][anchor] for s in seen])
            if _constant(ratios):
                fitting.append(dict(anchor=anchor, factor=float(ratios.mean())))
        for name in names:
            ratios = np.array([s[3] for s in seen]) / np.array([s[6][name] for s in seen])
            if _constant(ratios) and ratios.mean() > 0:
                fitting.append(dict(anchor="line", line=name, factor=float(ratios.mean())))
    if fitting:
        return fitting
    for anchor in ANCHORS[:2]:
        distance = np.array([s[3] - s[2][anchor] for s in seen])
        for name in names:
            with np.errstate(all="ignore"):
                multiples = distance / np.array([s[6][name] for s in seen])
            if _constant(multiples):
                fitting.append(dict(anchor=anchor, line=name, offset=float(multiples.mean())))
    return fitting


def fits(protection: Protection | None, trades) -> bool:
    """Whether ``protection`` prices every trade in ``trades`` (recorded elsewhere: the spot
    check's windows) as it did those it was identified on."""
    if not trades:
        return True
    if protection is None:
        return False
    for trade in trades:
        if tuple((kind, sent) for kind, sent, *_ in trade) != tuple((o.kind, o.sent) for o in protection.orders):
            return False
        for (kind, _, anchors, price, amount, percent, lines), o in zip(trade, protection.orders):
            if kind == "trail":
                if (amount, percent) != (o.trail_amount, o.trail_percent):
                    return False
                continue
            if o.line and o.line not in lines:
                return False
            expected = o.level(1.0, anchors["sent_close"], anchors["fill"], lines.get(o.line, math.nan))
            if not abs(price - expected) <= TOLERANCE * abs(expected):
                return False
    return True
