"""What a strategy's non-market orders are, read from a recorded run: protective orders and
entry orders the fast path fills (:mod:`distillbt.protective`, :mod:`distillbt.entry_orders`),
or a reason it does not model them.

:func:`protective_trades` reads one run's orders (Backtrader ``Order`` objects, as the broker
left them) against its positions and prices; :func:`identify` takes the trades of all of a
configuration's runs and finds the one :class:`~distillbt.protective.Protection` that
prices every one of them — each stop or limit a constant multiple of the close of the bar
that sent it or of the entry's fill price, or one of those plus a constant multiple of one of
the strategy's lines at that bar (an ATR) — the bar's open, high and low and the bar
before's high and low count as lines (:data:`~distillbt.protective.FEED_PRICES`) —, each
trail a constant amount or percentage — or
says why there is none. The multiples are read off the recorded prices, never from the
strategy's parameters or source: the rule must hold, to rounding, on every trade recorded.
:func:`entry_orders` and :func:`identify_entry` do the same for Stop, Limit and StopLimit
orders (and OCO pairs of them) sent while flat, entries, whose rule also says how many bars
they work.
"""

from __future__ import annotations

import math

import backtrader as bt
import numpy as np

from ..entry_orders import EntryOrder
from ..protective import ANCHORS, Protection, ProtectiveOrder

__all__ = ["protective_trades", "identify", "fits", "entry_orders", "identify_entry", "fits_entry", "TOLERANCE"]

#: Largest relative spread of a price rule's multiple over the trades recorded (rounding).
TOLERANCE = 1e-9
_KINDS = {bt.Order.Stop: "stop", bt.Order.Limit: "limit", bt.Order.StopTrail: "trail"}


def _bar(dates: np.ndarray, dt: float) -> int:
    return int(np.searchsorted(dates, dt))


def protective_trades(orders, positions, dates, open_, close, lines=dict, fills=None) -> tuple[list, str | None]:
    """``(trades, reason)`` for one run: per trade carrying protective orders, a tuple of
    ``(kind, sent, {anchor: value}, price, trail_amount, trail_percent, {line: value})`` per
    order in the order sent; ``reason`` (None, or one line) when some order is not one the
    fast path fills. ``orders``: the run's non-market orders and bracket children, Rejected
    ones (sent in the warm-up) left out; ``positions`` (signed units), ``dates`` (Backtrader
    date numbers), ``open_`` and ``close`` per bar of the run; ``lines()``: the strategy's
    lines by name (:func:`~.own_lines.graph_lines`' names), arrays over the run (asked only
    when there are orders); ``fills``: ``{bar: price}`` of the entries made by entry orders
    (:func:`entry_orders`; the others fill at the open). Entry orders are left to
    :func:`entry_orders`."""
    n = len(positions)
    fills = fills or {}
    sign = np.sign(positions)
    groups: dict = {}  # entry fill bar -> [(ref, order, sent)]
    for order in orders:
        name = bt.Order.ExecTypes[order.exectype]
        parent = getattr(order, "parent", None)
        if parent is not None and parent.exectype != bt.Order.Market and parent.exectype not in _ENTRY_KINDS:
            return [], f"{bt.Order.ExecTypes[parent.exectype]} entries (with a bracket)"
        sent_bar = _bar(dates, order.created.dt)
        if parent is None and not sign[sent_bar]:
            continue  # sent while flat: an entry order (entry_orders reads it)
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
            if parent.exectype == bt.Order.Market and entry != sent_bar + 1:
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
        groups.setdefault(entry, []).append((order.ref, order, sent, sent_bar))
    trades = []
    arrays = lines() if groups else {}
    shown = unshown = 0  # trades of several orders, not a bracket's, whose fills showed (or not) OCO
    for entry, group in sorted(groups.items()):
        group.sort(key=lambda g: g[0])
        filled = {_bar(dates, o.executed.dt) for _, o, _, _ in group if o.status == bt.Order.Completed}
        why = next(filter(None, (_outcome(o, entry, sign, dates, filled) for _, o, _, _ in group)), None)
        if why:
            return [], why
        together = _cancelled_together([o for _, o, _, _ in group], dates) if len(group) > 1 else True
        if together is False:
            return [], "several stop or limit orders on a trade that do not cancel each other (bracket or OCO)"
        shown, unshown = shown + (len(group) > 1 and together is True), unshown + (together is None)
        trade = []
        for _, order, sent, at in group:  # at: the bar that sent it (a bracket's: its entry's)
            anchors = {"sent_close": float(close[at]), "fill": float(fills.get(entry, open_[entry]))}
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
            return None, (f"{kind} prices that are no fixed multiple of the close, the entry price, a line "
                          "of the strategy or the bar's prices, nor the close or entry price plus a multiple of "
                          "a line")
        if len(fitting) > 1 and len(seen) < 2:
            return None, f"one trade only: too few to tell what its {kind} price follows"
        orders.append(ProtectiveOrder(kind, sent, **fitting[0]))
    return Protection(tuple(orders)), None


def _constant(values: np.ndarray) -> bool:
    return bool(np.isfinite(values).all() and values.mean() != 0
                and np.ptp(values) <= TOLERANCE * abs(values.mean()))


def _rules(seen) -> list[dict]:
    """Every rule that prices all of ``seen`` (one order slot over the trades), simplest
    first: a multiple of an anchor, then an anchor plus a multiple of a line, then a line plus
    a multiple of another (``base``: an entry's band, a stop some ATR under it)."""
    fitting = []
    names = sorted(set.intersection(*(set(s[6]) for s in seen))) if seen else []
    anchors = [a for a in ANCHORS[:2] if all(a in s[2] for s in seen)]
    with np.errstate(all="ignore"):
        for anchor in anchors:
            ratios = np.array([s[3] for s in seen]) / np.array([s[2][anchor] for s in seen])
            if _constant(ratios):
                fitting.append(dict(anchor=anchor, factor=float(ratios.mean())))
        for name in names:
            ratios = np.array([s[3] for s in seen]) / np.array([s[6][name] for s in seen])
            if _constant(ratios) and ratios.mean() > 0:
                fitting.append(dict(anchor="line", line=name, factor=float(ratios.mean())))
    if fitting:
        return fitting
    for anchor in anchors:
        distance = np.array([s[3] - s[2][anchor] for s in seen])
        for name in names:
            with np.errstate(all="ignore"):
                multiples = distance / np.array([s[6][name] for s in seen])
            if _constant(multiples):
                fitting.append(dict(anchor=anchor, line=name, offset=float(multiples.mean())))
    if fitting:
        return fitting
    for base in names:
        distance = np.array([s[3] - s[6][base] for s in seen])
        for name in names:
            if name == base:
                continue
            with np.errstate(all="ignore"):
                multiples = distance / np.array([s[6][name] for s in seen])
            if _constant(multiples):
                fitting.append(dict(anchor="line", line=name, base=base, offset=float(multiples.mean())))
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
            if o.base and o.base not in lines:
                return False
            expected = o.level(1.0, anchors["sent_close"], anchors["fill"], lines.get(o.line, math.nan),
                               lines.get(o.base, math.nan))
            if not abs(price - expected) <= TOLERANCE * abs(expected):
                return False
    return True


_ENTRY_KINDS = {bt.Order.Stop: "stop", bt.Order.Limit: "limit", bt.Order.StopLimit: "stoplimit"}


def entry_orders(orders, positions, decided, dates, close, lines=dict) -> tuple[list, str | None]:
    """``(orders, reason)`` for one run: per entry (a non-market order sent while flat,
    without a parent — or two sent together, one buying and one selling, one-cancels-other),
    in the order sent, a dict — ``kind``, ``side`` (+1 buys), ``sent`` (its bar), ``anchors``
    (``{"sent_close": …}``), ``price``, ``limit`` (a StopLimit's, else None), ``lines`` (the
    strategy's lines at ``sent``), ``end`` (``"filled"``, ``"cancelled"``, ``"expired"`` or
    ``"working"`` at the end of the run, or ``"refused"``: it reached its price with more to
    pay than the cash, and the broker dropped it), ``tried`` (the bars it was tried on before
    it filled, was refused or withdrawn; the bars left in the run when still working),
    ``fill`` (its bar, -1), ``fill_price``, ``fill_side`` and ``resent`` (cancelled at a close
    that sends the next); an OCO pair's second order is its ``other``
    (``kind``, ``side``, ``price``, ``limit``, ``anchors``, ``lines``), the first to fill
    fills the pair. ``reason`` (None, or one line) when the fast path does not model them.
    ``decided``: the position decided at each close (size plus market orders pending); the
    rest as :func:`protective_trades`'."""
    n = len(positions)
    sign = np.sign(positions)
    found = []
    for order in sorted(orders, key=lambda o: o.ref):
        if getattr(order, "parent", None) is not None:
            continue
        sent = _bar(dates, order.created.dt)
        if sign[sent]:
            continue  # sent while a position is held: protective_trades reads it
        name = bt.Order.ExecTypes[order.exectype]
        kind = _ENTRY_KINDS.get(order.exectype)
        if kind is None:
            return [], f"{name} entries"
        if order.status == bt.Order.Completed:
            end, fill = "filled", _bar(dates, order.executed.dt)
            if fill <= sent or sign[fill] != (1 if order.isbuy() else -1) or sign[fill - 1]:
                return [], f"{name} entries that do not open the position they order"
            if abs(order.executed.size) != abs(order.created.size):
                return [], f"{name} entries filled in part"
            tried = fill - sent
        elif order.status in (bt.Order.Canceled, bt.Order.Expired):
            end, fill = ("cancelled", -1) if order.status == bt.Order.Canceled else ("expired", -1)
            # cancelled at a close: tried up to that bar; expired: found so before the bar is tried
            tried = _bar(dates, order.executed.dt) - sent - (end == "expired")
        elif order.status == bt.Order.Margin and order.executed.dt:
            # it reached its price with more to pay than the cash: the broker drops it there
            end, fill, tried = "refused", -1, _bar(dates, order.executed.dt) - sent
        elif order.alive():
            end, fill, tried = "working", -1, n - 1 - sent
        else:
            return [], f"{name} entries that end {order.getstatusname()}"
        side = 1.0 if order.isbuy() else -1.0
        found.append(dict(kind=kind, side=side, sent=sent, anchors={"sent_close": float(close[sent])},
                          price=float(order.created.price),
                          limit=float(order.created.pricelimit) if kind == "stoplimit" else None,
                          end=end, tried=int(tried), fill=fill, fill_side=side,
                          fill_price=float(order.executed.price) if fill >= 0 else math.nan))
    if not found:
        return [], None
    found, why = _paired(found)
    if why:
        return [], why
    sent = [o["sent"] for o in found]
    working = np.zeros(n, dtype=bool)
    for o in found:
        last = o["sent"] + o["tried"] + (o["end"] in ("cancelled", "expired"))
        # a new one sent at the close that cancels it: the strategy decides again there
        o["resent"] = o["end"] == "cancelled" and last - 1 in sent
        working[o["sent"] + 1:min(last, n)] = True
    if np.any(decided[working] != 0):
        return [], "market orders while an entry order works"
    opened = np.flatnonzero((sign != 0) & (np.concatenate(([0.0], sign[:-1])) == 0))
    if set(opened.tolist()) - {o["fill"] for o in found}:
        return [], "entries both by market orders and by Stop or Limit orders"
    arrays = lines()
    for o in found:
        for one in (o, o.get("other")):
            if one is not None:
                one["lines"] = {k: float(v[o["sent"]]) for k, v in arrays.items()}
    return found, None


def _paired(found) -> tuple[list, str | None]:
    """The entry orders of one run with each pair sent together — one buying, one selling,
    the first to fill cancelling the other on its bar (OCO) — as one entry, its second order
    its ``other``; or a reason when orders sent together are not such a pair."""
    out = []
    for sent in sorted({o["sent"] for o in found}):
        group = [o for o in found if o["sent"] == sent]
        if len(group) == 1:
            out.append(group[0])
            continue
        if len(group) > 2 or group[0]["side"] == group[1]["side"]:
            return [], "several entry orders sent at once, not one buying and one selling"
        first, second = group
        done = [o for o in group if o["end"] in ("filled", "refused")]
        if done:
            other = second if done[0] is first else first
            if len(done) > 1 or other["end"] != "cancelled" or other["tried"] != done[0]["tried"]:
                return [], "entry orders sent together that do not cancel each other (OCO)"
        elif (first["end"], first["tried"]) != (second["end"], second["tried"]):
            return [], "entry orders sent together and withdrawn apart"
        pair = dict(first, other={k: second[k] for k in ("kind", "side", "price", "limit", "anchors")})
        if done:
            pair.update({k: done[0][k] for k in ("end", "tried", "fill", "fill_price", "fill_side")})
        out.append(pair)
    return out, None


def identify_entry(recorded) -> tuple[EntryOrder | None, str | None]:
    """``(entry order, reason)``: the :class:`~distillbt.entry_orders.EntryOrder` every entry
    in ``recorded`` (:func:`entry_orders`' lists, runs together) follows — one kind, one price
    rule (and one for an OCO pair's other order), one lifetime — None without any; or a
    reason the fast path does not fill them."""
    if not recorded:
        return None, None
    if len({"other" in o for o in recorded}) > 1:
        return None, "entries by one order and by OCO pairs both"
    withdrawn = {o["tried"] for o in recorded if o["end"] in ("cancelled", "expired")}
    if len(withdrawn) > 1:
        return None, "entry orders withdrawn after different numbers of bars"
    lifetime = withdrawn.pop() if withdrawn else None
    if lifetime is not None and lifetime < 1:
        return None, "entry orders withdrawn before they are tried"
    if lifetime is not None and any(o["tried"] > lifetime for o in recorded
                                    if o["end"] in ("filled", "working", "refused")):
        return None, "entry orders that work for different numbers of bars"
    rule, why = _entry_price_rule(recorded)
    if why:
        return None, why
    rule["again"] = any(o.get("resent") for o in recorded)
    if rule["again"] and any(o["end"] == "expired" for o in recorded):
        return None, "entry orders that expire, and others withdrawn at the close that sends the next"
    if "other" in recorded[0]:
        if len({o["side"] for o in recorded}) > 1:
            return None, "OCO entries sent buy first on some bars and sell first on others"
        other, why = _entry_price_rule([o["other"] for o in recorded])
        if why:
            return None, f"{why} (the OCO pair's second order)"
        rule["other"] = EntryOrder(**other)
    return EntryOrder(lifetime=lifetime, **rule), None


def _entry_price_rule(orders) -> tuple[dict | None, str | None]:
    """``EntryOrder``'s kind, price rule and StopLimit ``limit_factor`` that every one of
    ``orders`` follows, or a reason."""
    kinds = {o["kind"] for o in orders}
    if len(kinds) > 1:
        return None, "entry orders of more than one kind (Stop, Limit, StopLimit)"
    kind = next(iter(kinds))
    limit_factor = None
    if kind == "stoplimit":
        ratios = np.array([o["limit"] / o["price"] for o in orders])
        if not _constant(ratios):
            return None, "StopLimit entries whose limit is no fixed multiple of their stop"
        limit_factor = float(ratios.mean())
    seen = [(None, None, o["anchors"], o["price"], 0.0, 0.0, o["lines"]) for o in orders]
    fitting = [rule for rule in _rules(seen) if "base" not in rule]  # (an entry's price: one line or the close)
    if not fitting:
        if len({o["side"] for o in orders}) == 2:  # a long's and a short's prices mirror each other
            return None, "entry prices that differ by side (a rule per side)"
        return None, ("entry prices that are no fixed multiple of the close, a line of the strategy or the bar's "
                      "prices, nor the close plus a multiple of a line")
    if len(fitting) > 1 and len(orders) < 2:
        return None, "one entry order only: too few to tell what its price follows"
    return dict(kind=kind, limit_factor=limit_factor, **fitting[0]), None


def fits_entry(entry: EntryOrder | None, recorded) -> bool:
    """Whether ``entry`` prices and times every entry in ``recorded`` (elsewhere recorded)."""
    if not recorded:
        return True
    if entry is None:
        return False
    for o in recorded:
        if ("other" in o) != (entry.other is not None) or not _priced(entry, o) or \
                (entry.other is not None and not _priced(entry.other, o["other"])):
            return False
        if entry.lifetime is not None and (o["tried"] > entry.lifetime if o["end"] in ("filled", "working", "refused")
                                           else o["tried"] != entry.lifetime):
            return False
        if entry.lifetime is None and o["end"] in ("cancelled", "expired"):
            return False
        if o.get("resent") and not entry.again:
            return False
    return True


def _priced(entry: EntryOrder, o) -> bool:
    """Whether one recorded order is of ``entry``'s kind and at its prices."""
    if o["kind"] != entry.kind or (entry.line and entry.line not in o["lines"]):
        return False
    expected = entry.level(o["anchors"]["sent_close"], o["lines"].get(entry.line, math.nan))
    if not abs(o["price"] - expected) <= TOLERANCE * abs(expected):
        return False
    return entry.kind != "stoplimit" or abs(o["limit"] - entry.limit_factor * o["price"]) <= TOLERANCE * abs(o["limit"])
