"""Protective orders — a stop-loss, a take-profit limit, a trailing stop — filled by
Backtrader's rules, in numpy.

A *protective* order closes the whole position it protects: a bracket's children (sent with
a market entry, ``buy_bracket(exectype=Market, stopprice=…, limitprice=…)``, or with an entry
order, :mod:`distillbt.entry_orders`: ``exectype=Limit`` or ``Stop``) or an order the
strategy sends on the bar its entry fills (``notify_order`` on the fill, or ``next`` seeing
the new position). :class:`Protection` holds what a strategy's trades carry, one
:class:`ProtectiveOrder` per order in the order they are sent; the surrogate's walk asks it
where a trade's protective orders fill (:meth:`Protection.first_exit`) and
:func:`distillbt.vectorised.simulate` closes the position there (``exits=``).

The rules are those of Backtrader's ``BackBroker`` (``_try_exec_stop``, ``_try_exec_limit``,
``Order.trailadjust``), without slippage:

- a protective order is first tried on the bar after its entry fills (bracket children are
  activated at the start of that bar; an order sent on the fill bar is tried from the next);
- a stop that sells triggers when the bar's low reaches its price and fills at that price, or
  at the open when the bar opens beyond it (a gap); a limit that sells fills when the high
  reaches its price, at that price or at a better open; buying mirrors both;
- a trailing stop starts at the close of the bar it is sent on, less (selling) or plus
  (buying) ``trail_amount`` or that close × ``trail_percent``, and after every bar it is tried
  without filling it moves to that bar's close the same way if that is closer to the price;
- on a bar where two of a trade's orders would fill, the one sent first fills (the broker's
  pending queue is in order) and cancels the others (a bracket's children, an OCO group).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import InputError

__all__ = ["ProtectiveOrder", "Protection", "KINDS", "ANCHORS", "FEED_PRICES", "feed_prices", "priced_lines",
           "first_touch", "rule_price"]

KINDS = ("stop", "limit", "trail")
#: What a stop's or limit's price is a multiple of: the close of the bar that sent it
#: (``"sent_close"``), the entry's fill price (``"fill"``, ``order.executed.price``) or one of
#: the strategy's lines at the bar that sent it (``"line"``: the lower band, the last low,
#: the feed's prices of :data:`FEED_PRICES`).
ANCHORS = ("sent_close", "fill", "line")
#: The feed's prices at the bar that sends an order, named as lines a rule may read (a buy
#: stop at the signal bar's high, a limit at its low, a stop under the bar before's low):
#: ``name → (feed line, bars ago)``. The prefix keeps them apart from the strategy's own
#: lines, which are named after its attributes.
FEED_PRICES = {"feed:open": ("open", 0), "feed:high": ("high", 0), "feed:low": ("low", 0),
               "feed:high[-1]": ("high", 1), "feed:low[-1]": ("low", 1)}


@dataclass(frozen=True)
class ProtectiveOrder:
    """One protective order of every trade: ``kind`` (``"stop"``, ``"limit"``, ``"trail"``),
    ``sent`` — ``"with_entry"`` (a bracket child, sent on the bar that orders the entry, its
    market order or entry order) or
    ``"on_fill"`` (sent on the bar the entry fills) — and its price: ``factor × anchor``
    (the anchor ``"line"``: ``factor × line``), or with a ``line`` (one of the strategy's
    lines, by name: an ATR) and another anchor ``anchor + offset × line`` — the anchor
    ``"line"`` then being another of its lines, ``base`` (an entry at the lower band, its stop
    two ATR under it: ``base + offset × line``) — the lines read at the bar that sent it
    (stop, limit); or the trail's ``trail_amount`` / ``trail_percent`` (one of them
    non-zero)."""

    kind: str
    sent: str
    anchor: str = "sent_close"
    factor: float = 1.0
    trail_amount: float = 0.0
    trail_percent: float = 0.0
    line: str | None = None
    offset: float = 0.0
    base: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise InputError(f"protective order kind must be one of {KINDS}, not {self.kind!r}")
        if self.sent not in ("with_entry", "on_fill"):
            raise InputError(f"sent must be 'with_entry' or 'on_fill', not {self.sent!r}")
        if self.anchor not in ANCHORS:
            raise InputError(f"anchor must be one of {ANCHORS}, not {self.anchor!r}")
        if self.kind == "trail" and (self.trail_amount > 0) == (self.trail_percent > 0):
            raise InputError("a trailing stop needs one of trail_amount and trail_percent, positive")
        if self.kind != "trail" and not self.factor > 0:
            raise InputError(f"a stop's or limit's factor must be positive, not {self.factor!r}")
        if (self.anchor == "line" or self.offset) and not self.line:
            raise InputError("a price that reads a line needs the line's name")
        if self.base is not None and (self.anchor != "line" or not self.offset):
            raise InputError("a base line is the anchor of a price 'base + offset × line' (anchor 'line')")

    def level(self, side: float, sent_close: float, fill: float, line_value: float = math.nan,
              base_value: float = math.nan) -> float:
        """Its price when first tried, for a position of sign ``side`` (``line_value`` and
        ``base_value``: its lines at the bar that sent it, when it reads them)."""
        if self.kind == "trail":
            return self._trailed(-side, sent_close)
        return rule_price(self, sent_close=sent_close, fill=fill, line_value=line_value, base_value=base_value)

    def _trailed(self, direction: float, close):
        """Where a trail sent in ``direction`` (-1 sells) moves to from ``close``."""
        offset = self.trail_amount if self.trail_amount else np.multiply(close, self.trail_percent)
        return close + direction * offset


@dataclass(frozen=True)
class Protection:
    """The protective orders every trade of a strategy carries, in the order they are sent."""

    orders: tuple

    def __post_init__(self):
        if not self.orders or not all(isinstance(o, ProtectiveOrder) for o in self.orders):
            raise InputError("a Protection needs one or more ProtectiveOrder")

    def describe(self) -> str:
        def one(o):
            if o.kind == "trail":
                return f"trail {o.trail_percent:.4%}" if o.trail_percent else f"trail {o.trail_amount:g}"
            anchor = (o.base or o.line) if o.anchor == "line" else o.anchor.replace("_", " ")
            if o.line and (o.anchor != "line" or o.base):
                return f"{o.kind} at {anchor} {o.offset:+.6g} × {o.line}"
            return f"{o.kind} at {o.factor:.6g} × {anchor}"
        return ", ".join(one(o) for o in self.orders)

    @property
    def lines(self) -> list[str]:
        """The strategy's lines the prices read."""
        return sorted({name for o in self.orders for name in (o.line, o.base) if name})

    def levels(self, side: float, *, signal_close: float, entry_close: float, fill: float, line=None) -> np.ndarray:
        """The orders' prices when first tried (the bar after the entry fills), for a trade of
        sign ``side`` ordered at a bar closing at ``signal_close`` and filled at ``fill`` in a
        bar closing at ``entry_close``; ``line(name, sent)``: a line's value at the bar that
        sent an order (``sent`` as :class:`ProtectiveOrder`'s), for prices that read one."""
        return np.array([o.level(side, signal_close if o.sent == "with_entry" else entry_close, fill,
                                 line(o.line, o.sent) if o.line else math.nan,
                                 line(o.base, o.sent) if o.base else math.nan)
                         for o in self.orders])

    def after(self, side: float, levels: np.ndarray, close: np.ndarray) -> np.ndarray:
        """The prices after bars closing at ``close`` were tried without a fill (trails move)."""
        return np.array([self._path(o, side, level, close)[-1] for o, level in zip(self.orders, levels)])

    @staticmethod
    def _path(order, side: float, level: float, close: np.ndarray) -> np.ndarray:
        """``order``'s price when each of ``len(close) + 1`` bars is tried, the first at
        ``level``, the bars closing at ``close`` tried in turn without a fill (a trail moves
        to each close it did not fill on when that is closer to the price)."""
        out = np.full(len(close) + 1, float(level))
        if order.kind == "trail" and len(close):
            best = (np.maximum if side > 0 else np.minimum).accumulate(close)
            out[1:] = (np.maximum if side > 0 else np.minimum)(out[1:], order._trailed(-side, best))
        return out

    def first_exit(self, side: float, levels: np.ndarray, open_, high, low, close) -> tuple[int, float]:
        """``(row, price)`` of the first of the bars given (each tried in turn, prices
        ``levels`` at the first) where one of the orders fills, or ``(-1, nan)``."""
        n = len(close)
        if n == 0:
            return -1, float("nan")
        first, price = n, float("nan")
        for o, start in zip(self.orders, levels):
            level = self._path(o, side, start, close[:-1])
            # a long's orders sell, a short's buy
            f, p = first_touch(o.kind, -side, level[:first], open_, high, low)
            if f >= 0:  # strictly earlier than the others: on a tie the order sent first fills
                first, price = f, p
        return (first, price) if first < n else (-1, float("nan"))


def first_touch(kind: str, direction: float, level: np.ndarray, open_, high, low) -> tuple[int, float]:
    """``(row, price)`` of the first bar where an order of ``kind`` that buys (``direction``
    > 0) or sells, at price ``level[row]`` on each row tried, fills — or ``(-1, nan)``. A buy
    stop (or trail) fills when the high reaches its price, a buy limit when the low does; a
    sell mirrors both. The fill is at the price, or at the open when the bar opens beyond it
    (``BackBroker._try_exec_stop`` / ``_try_exec_limit``)."""
    n = len(level)
    below = (kind == "limit") == (direction > 0)  # fills at or below its price
    hit = np.flatnonzero((low[:n] <= level) if below else (high[:n] >= level))
    if not len(hit):
        return -1, float("nan")
    f = int(hit[0])
    return f, float(min(open_[f], level[f]) if below else max(open_[f], level[f]))


def rule_price(rule, *, sent_close: float, fill: float = math.nan, line_value: float = math.nan,
               base_value: float = math.nan) -> float:
    """The price a rule of ``anchor``, ``factor``, ``line``, ``offset`` (and ``base``) gives —
    a :class:`ProtectiveOrder`'s or an :class:`~distillbt.entry_orders.EntryOrder`'s:
    ``factor × anchor``, ``anchor + offset × line``, or ``base + offset × line`` (the anchor
    ``"line"`` with a ``base``); lines read at the bar that sent the order."""
    if rule.anchor == "line":
        return base_value + rule.offset * line_value if getattr(rule, "base", None) else rule.factor * line_value
    anchor = fill if rule.anchor == "fill" else sent_close
    return anchor + rule.offset * line_value if rule.line else rule.factor * anchor


def feed_prices(arrays, names=FEED_PRICES) -> dict:
    """The feed prices ``names`` (of :data:`FEED_PRICES`) bar by bar, from a feed's
    ``arrays`` (``{"open": …, "high": …, "low": …}``); NaN before a lagged one's first bar."""
    out = {}
    for name in names:
        alias, ago = FEED_PRICES[name]
        values = np.asarray(arrays[alias], dtype=np.float64)
        out[name] = np.concatenate((np.full(ago, np.nan), values[:len(values) - ago])) if ago else values
    return out


def priced_lines(*rules) -> list[str]:
    """The strategy's lines the prices of ``rules`` read (a :class:`Protection`, an
    :class:`~distillbt.entry_orders.EntryOrder`; None reads none)."""
    return sorted({line for rule in rules if rule is not None for line in rule.lines})
