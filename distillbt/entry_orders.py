"""Entries by Stop, Limit and StopLimit orders — a buy stop above the range, a limit under
the close — filled by Backtrader's rules, in numpy.

An *entry order* is a Stop, Limit or StopLimit order a strategy sends while flat
(``self.buy(exectype=bt.Order.Stop, price=…)``), which opens the position when the bar's
prices reach it. Its
price is a constant multiple of the close of the bar that sent it or of one of the
strategy's lines there — or of that bar's open, high or low, or the bar before's high or
low (:data:`~distillbt.protective.FEED_PRICES`: a buy stop at the signal bar's high) — or
that close plus a constant multiple of a line (an ATR); it works
for a fixed number of bars (``valid=`` a few bars ahead, or the strategy cancelling it after
them) or until it fills. :class:`EntryOrder` holds that rule, read off a strategy's recorded
orders (:mod:`distillbt.surrogate.order_log`); the surrogate's walk sends one where the
strategy decides to enter and asks it where it fills (:meth:`EntryOrder.first_fill`), and
:func:`distillbt.vectorised.simulate` opens the position there (``entries=``).

Backtrader's rules (``BackBroker._try_exec_stop`` / ``_try_exec_limit``), without slippage:

- the order is first tried on the bar after the one that sent it, and on each bar after
  until it fills, for ``lifetime`` bars: an order ``valid`` until the datetime of the
  ``lifetime``-th bar expires on the next one before it is tried, and one the strategy
  cancels at the close of that bar is never tried again — either way the strategy decides
  again, flat, at the close of the bar after; a strategy that cancels it and sends the next
  in one ``next()`` (a stop moved every bar) decides again at the close that cancels it
  (``again``);
- a buy stop fills when the high reaches its price, at that price or at the open when the
  bar opens above it; a buy limit when the low reaches it, at the price or a lower open; a
  sell mirrors both;
- a buy StopLimit (``plimit`` a fixed multiple of its stop price here) is triggered by the
  first bar whose high reaches its stop. Opening at or over the stop, that bar is tried as a
  limit from its open; otherwise it fills at the stop when its limit is at or over the stop,
  or — on a bar that closes under its open — at its limit when the limit is at or over the
  close (``BackBroker._try_exec_stoplimit``, which reads the bar's path from its open and
  close). Unfilled, it is a limit from the next bar on. A sell mirrors it;
- it is sized when it is sent, by the sizer's share of the cash at that close (as a market
  order is: ``PercentSizer``), and fills in the bar at its price;
- an OCO pair — a buy and a sell sent together (``oco=``), a breakout either way — is filled
  by whichever of the two fills first (on a bar where both would, the one sent first: the
  broker tries its pending orders in order), which cancels the other;
- while it works the strategy decides nothing (a strategy that waits for its order).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .protective import first_touch, rule_price

__all__ = ["EntryOrder", "ENTRY_KINDS", "ENTRY_ANCHORS"]

ENTRY_KINDS = ("stop", "limit", "stoplimit")
#: What an entry order's price is a multiple of: the close of the bar that sent it, or one
#: of the strategy's lines there (``"line"``: the upper band, the highest high, the feed's
#: prices of :data:`~distillbt.protective.FEED_PRICES`).
ENTRY_ANCHORS = ("sent_close", "line")


@dataclass(frozen=True)
class EntryOrder:
    """The entry order every entry of a strategy is made with: ``kind`` (``"stop"``,
    ``"limit"``, ``"stoplimit"``), its price — ``factor × anchor``, or with a ``line`` and the
    anchor ``"sent_close"``, ``close + offset × line`` (the line read at the bar that sent
    it) — a StopLimit's limit, ``limit_factor ×`` that price, and ``lifetime``, the bars it is
    tried on before it is withdrawn (None: until it fills), and ``again``: the strategy
    decides again at the close that withdraws it (else at the close after). ``other``: for
    an OCO pair, the order sent with it for the other side (its ``lifetime`` unused)."""

    kind: str
    anchor: str = "sent_close"
    factor: float = 1.0
    line: str | None = None
    offset: float = 0.0
    lifetime: int | None = None
    limit_factor: float | None = None
    other: EntryOrder | None = None
    again: bool = False

    def __post_init__(self):
        if self.kind not in ENTRY_KINDS:
            raise InputError(f"entry order kind must be one of {ENTRY_KINDS}, not {self.kind!r}")
        if self.anchor not in ENTRY_ANCHORS:
            raise InputError(f"entry order anchor must be one of {ENTRY_ANCHORS}, not {self.anchor!r}")
        if not self.factor > 0:
            raise InputError(f"an entry order's factor must be positive, not {self.factor!r}")
        if (self.anchor == "line" or self.offset) and not self.line:
            raise InputError("a price that reads a line needs the line's name")
        if (self.kind == "stoplimit") != (self.limit_factor is not None) or \
                (self.limit_factor is not None and not self.limit_factor > 0):
            raise InputError("a StopLimit entry, and it alone, needs a positive limit_factor")
        if self.again and self.lifetime is None:
            raise InputError("an entry order decided again as it is withdrawn needs a lifetime")
        if self.lifetime is not None and not (isinstance(self.lifetime, int) and self.lifetime >= 1):
            raise InputError(f"an entry order's lifetime must be a positive number of bars or None, "
                             f"not {self.lifetime!r}")

    @property
    def lines(self) -> list[str]:
        """The strategy's lines its prices read."""
        return sorted({*([self.line] if self.line else []), *(self.other.lines if self.other else [])})

    def describe(self) -> str:
        if self.anchor == "line":
            price = f"{self.factor:.6g} × {self.line}"
        elif self.line:
            price = f"close {self.offset:+.6g} × {self.line}"
        else:
            price = f"{self.factor:.6g} × close"
        life = f"for {self.lifetime} bars" if self.lifetime else "until filled"
        life += ", decided again as withdrawn" if self.again else ""
        limit = f", limit {self.limit_factor:.6g} × stop" if self.kind == "stoplimit" else ""
        other = f", OCO with a {self.other.describe().split(', ')[0]} the other way" if self.other else ""
        return f"{self.kind} entry at {price}{limit}{other}, {life}"

    def level(self, sent_close: float, line_value: float = math.nan) -> float:
        """Its price, for an order sent at a bar closing at ``sent_close`` (``line_value``: its
        line there, when it reads one)."""
        return rule_price(self, sent_close=sent_close, line_value=line_value)

    def send(self, side: float, sent_close: float, line, open_, high, low, close) -> tuple[int, float, float]:
        """``(row, price, side filled)`` of the entry sent for a position of sign ``side`` at a
        bar closing at ``sent_close`` (``line(name)``: a line's value there), over the bars
        after it (``(-1, nan, side)`` when it does not fill in its lifetime). An OCO pair sends
        its ``other`` order the other way; the first to fill opens the position."""
        level = self.level(sent_close, line(self.line) if self.line else math.nan)
        row, price = self.first_fill(side, level, open_, high, low, close)
        if self.other is None:
            return row, price, side
        mirrored = dataclasses.replace(self.other, lifetime=self.lifetime)
        level = mirrored.level(sent_close, line(mirrored.line) if mirrored.line else math.nan)
        row2, price2 = mirrored.first_fill(-side, level, open_, high, low, close)
        if row2 >= 0 and (row < 0 or row2 < row):  # on one bar, the order sent first fills
            return row2, price2, -side
        return row, price, side

    def first_fill(self, side: float, level: float, open_, high, low, close) -> tuple[int, float]:
        """``(row, price)`` of the first of the bars given (the bars after the one that sent
        it, each tried in turn; at most ``lifetime`` of them are read) where an order opening
        a position of sign ``side`` at ``level`` fills, or ``(-1, nan)``."""
        n = len(open_) if self.lifetime is None else min(len(open_), self.lifetime)
        if not n or not np.isfinite(level):
            return -1, float("nan")
        if self.kind != "stoplimit":
            return first_touch(self.kind, side, np.full(n, float(level)), open_, high, low)
        return _stoplimit_fill(side, float(level), float(level) * self.limit_factor,
                               open_[:n], high[:n], low[:n], close[:n])


def _stoplimit_fill(side, stop, limit, open_, high, low, close) -> tuple[int, float]:
    """Where a StopLimit opening a position of sign ``side`` fills (module docstring)."""
    t, _ = first_touch("stop", side, np.full(len(open_), stop), open_, high, low)
    if t < 0:
        return -1, float("nan")
    o, c = float(open_[t]), float(close[t])
    buy = side > 0

    def reached(a, b):  # a at or beyond b, in the order's direction (a buy's limit over a price)
        return a >= b if buy else a <= b

    if reached(o, stop):  # opened through the stop: a limit from the open
        if reached(limit, o):
            return t, o
        if reached(limit, float(low[t] if buy else high[t])):
            return t, limit
    elif reached(limit, stop):
        return t, stop
    elif (o > c if buy else o <= c) and reached(limit, c):
        return t, limit
    f, price = first_touch("limit", side, np.full(len(open_) - t - 1, limit), open_[t + 1:], high[t + 1:],
                           low[t + 1:])
    return (t + 1 + f, price) if f >= 0 else (-1, float("nan"))
