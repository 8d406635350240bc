"""Backtrader indicators whose values come from a recursion of their own, for the numpy
evaluation of a strategy's lines (:mod:`.own_lines`): ``ParabolicSAR``, the dynamic smoothing
of ``KAMA`` (``ExponentialSmoothingDynamic``), ``Accum`` (``CumSum``, ``WilliamsAD``), the
Laguerre filter and RSI, the zero-lag error-correcting indicator (``ZLInd``/``EC``, inside
``DMA``) and the lines-coupler that ``PivotPoint`` and its siblings add for plotting.

Each handler reproduces Backtrader's own definition — its seed, the first bar it computes at
(the node's minimum period) and its arithmetic, operation for operation — so the values equal
Backtrader's ``once()`` to the last bit or so. A recursion that cannot be vectorised runs as a
tight loop over Python floats (the same IEEE operations Backtrader performs on its
``array('d')`` buffers), without Backtrader's per-bar machinery.

``LOOP_INDICATORS`` maps an indicator class to ``handler(evaluator, node)``, which returns one
array per line of the node (in the node's line order); the evaluator masks the bars before the
node's minimum period. A subclass without a ``next``/``once`` of its own (``KAMA``'s
envelope…) is served by its base's entry; Backtrader's aliases (``PSAR``, ``LRSI``, ``ZLInd``,
``CumSum``…) are entries of their own (:func:`_with_aliases`).
"""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING

import backtrader as bt
import numpy as np
from backtrader import lineiterator as btli
from backtrader.indicators import basicops, lrsi, psar, zlind

if TYPE_CHECKING:  # the evaluator imports this module: no import back at run time
    from .own_lines import GraphEvaluator

__all__ = ["LOOP_INDICATORS"]


def _not_vectorised(reason: str):
    from .own_lines import NotVectorised  # here: own_lines imports this module
    raise NotVectorised(reason)


def _floats(ev: GraphEvaluator, line) -> list:
    """A line's values as a list of Python floats (what Backtrader's loops compute on)."""
    return ev.line(line).tolist()


def _first(node) -> int:
    """The bar a node computes its first value at: its minimum period, 0-based."""
    return max(0, int(node._minperiod) - 1)


def _parabolic_sar(ev: GraphEvaluator, node):
    """Backtrader's ``ParabolicSAR``: the trend is started at the second bar (``len == 2``),
    whatever the period (a period above 2 only hides the first values): the SAR at the
    mid-price, the acceleration at ``af``, the trend *reversed* from that of the last two
    closes (``close >= close[-1]`` starts short, with the previous low as extreme price) so
    that the first bar's test flips it; then Wilder's rule, the SAR kept beyond the last two
    lows (highs) of the trend."""
    if int(node.p.period) < 2:  # Backtrader's nextstart then reads a state never made
        _not_vectorised(f"{type(node).__name__} with period < 2")
    high, low, close = (_floats(ev, getattr(node.data, name)) for name in ("high", "low", "close"))
    n = len(close)
    out = [math.nan] * n
    if n < 2:
        return [np.asarray(out)]
    step, top = node.p.af, node.p.afmax
    sar = (high[1] + low[1]) / 2.0
    af = step
    if close[1] >= close[0]:
        tr, ep = False, low[0]
    else:
        tr, ep = True, high[0]
    for i in range(1, n):
        hi, lo = high[i], low[i]
        if (tr and sar >= lo) or (not tr and sar <= hi):  # reverse the trend
            tr = not tr
            sar = ep
            ep = hi if tr else lo
            af = step
        out[i] = sar
        if tr:
            if hi > ep:
                ep = hi
                af = min(af + step, top)
        elif lo < ep:
            ep = lo
            af = min(af + step, top)
        sar = sar + af * (ep - sar)  # tomorrow's
        if tr:
            lo1 = low[i - 1]
            if sar > lo or sar > lo1:
                sar = min(lo, lo1)
        else:
            hi1 = high[i - 1]
            if sar < hi or sar < hi1:
                sar = max(hi, hi1)
    return [np.asarray(out)]


def _exp_smoothing_dynamic(ev: GraphEvaluator, node):
    """Backtrader's ``ExponentialSmoothingDynamic`` (``KAMA``'s): at the node's first bar the
    mean (``math.fsum``) of the ``period`` values ending there — the first bar is the later of
    the data's and the alpha line's minimum periods, so KAMA's seed is the mean of closes 1..period,
    not 0..period-1 —, then ``prev * alpha1[i] + data[i] * alpha[i]`` with the node's own
    ``alpha1 = 1 - alpha`` line."""
    x = ev.line(node.data)
    period, start, n = int(node.p.period), _first(node), len(x)
    out = np.full(n, np.nan)
    if start >= n:
        return [out]
    prev = math.fsum(x[start - period + 1:start + 1].tolist()) / period
    alpha, alpha1 = (ev.line(a)[start + 1:].tolist() for a in (node.alpha, node.alpha1))
    values = [prev]
    append = values.append
    for a1, xi, a in zip(alpha1, x[start + 1:].tolist(), alpha):
        prev = prev * a1 + xi * a
        append(prev)
    out[start:] = values
    return [out]


def _accum(ev: GraphEvaluator, node):
    """Backtrader's ``Accum`` (``CumSum``): ``seed + data`` at the first bar, then the running
    sum, added one value at a time (numpy's ``add.accumulate`` adds in the same order)."""
    x = ev.line(node.data)
    start = _first(node)
    out = np.full(len(x), np.nan)
    if start < len(x):
        head = node.p.seed + float(x[start])
        out[start:] = np.add.accumulate(np.concatenate([[head], x[start + 1:]]))
    return [out]


def _laguerre(x: list, gamma, start: int):
    """The four Laguerre stages of Ehlers' filter as Backtrader computes them: all at 0.0 at the
    node's first bar (not at the data's first), then the same float operations bar by bar."""
    g = gamma
    g1, mg = 1.0 - g, -g
    l0 = l1 = l2 = l3 = 0.0
    for i in range(start, len(x)):
        l0_1, l1_1, l2_1 = l0, l1, l2
        l0 = g1 * x[i] + g * l0_1
        l1 = mg * l0 + l0_1 + g * l1_1
        l2 = mg * l1 + l1_1 + g * l2_1
        l3 = mg * l2 + l2_1 + g * l3
        yield i, l0, l1, l2, l3


def _laguerre_rsi(ev: GraphEvaluator, node):
    """Backtrader's ``LaguerreRSI``: the up and down moves between the four stages; 1.0 where
    both are 0."""
    x = _floats(ev, node.data)
    out = [math.nan] * len(x)
    for i, l0, l1, l2, l3 in _laguerre(x, node.p.gamma, _first(node)):
        cu = cd = 0.0
        if l0 >= l1:
            cu = l0 - l1
        else:
            cd = l1 - l0
        if l1 >= l2:
            cu += l1 - l2
        else:
            cd += l2 - l1
        if l2 >= l3:
            cu += l2 - l3
        else:
            cd += l3 - l2
        den = cu + cd
        out[i] = 1.0 if not den else cu / den
    return [np.asarray(out)]


def _laguerre_filter(ev: GraphEvaluator, node):
    """Backtrader's ``LaguerreFilter``: ``(l0 + 2 l1 + 2 l2 + l3) / 6``."""
    x = _floats(ev, node.data)
    out = [math.nan] * len(x)
    for i, l0, l1, l2, l3 in _laguerre(x, node.p.gamma, _first(node)):
        out[i] = (l0 + (2 * l1) + (2 * l2) + l3) / 6
    return [np.asarray(out)]


_GAIN_NOISE = 1e-9  # below this share of the prices, the gains' errors are rounding: try them all


def _zero_lag(ev: GraphEvaluator, node):
    """Backtrader's ``ZeroLagIndicator`` (``ZLInd``, ``EC``): at each bar, of the gains
    ``k / 10`` for ``k`` in ``-gainlimit..gainlimit``, the first whose error-corrected EMA
    ``alpha * (ema + gain * (price - ec[-1])) + alpha1 * ec[-1]`` is nearest the price; the
    EMA itself at the first bar (``ec[-1]`` is NaN there, so no gain is ever nearer). The
    error is ``|affine in gain|``: only the grid points around its zero can win, so those are
    the ones tried — all of them where the slope is within rounding of zero."""
    price, ema = _floats(ev, node.data), _floats(ev, node.ema)
    alpha, alpha1 = node.ema.alpha, node.ema.alpha1
    low, high = node.limits[0], node.limits[1] - 1  # range(*limits)
    start, n = _first(node), len(price)
    out = [math.nan] * n
    ec1 = math.nan
    for i in range(start, n):
        p, e = price[i], ema[i]
        d = p - ec1
        ks = range(low, high + 1)
        slope = alpha * d
        scale = abs(p) + abs(e) + abs(ec1)
        if math.isfinite(slope) and math.isfinite(e) and abs(slope) * 0.1 > _GAIN_NOISE * scale:
            zero = 10.0 * (p - alpha * e - alpha1 * ec1) / slope
            k0 = math.floor(min(max(zero, low), high))
            ks = range(max(low, k0 - 2), min(high, k0 + 3) + 1)
        least, best = sys.maxsize, e  # Backtrader's MAXINT
        for k in ks:
            gain = k / 10
            ec = alpha * (e + gain * d) + alpha1 * ec1
            error = abs(p - ec)
            if error < least:
                least, best = error, ec
        out[i] = ec1 = best
    return [np.asarray(out)]


def _coupler(ev: GraphEvaluator, node):
    """A ``LinesCoupler`` (``PivotPoint(_autoplot=True)`` adds one to plot on the data's own
    timeframe): it copies in ``next`` only, and being a line iterator but no indicator it gets
    no ``once`` from it, so Backtrader's vectorised pass leaves its lines NaN."""
    return [np.full(ev.n, np.nan) for _ in range(node.fullsize())]


def _own_lines_only(base, handler):
    """``handler`` for ``base`` and its subclasses that add no line: a subclass whose
    ``__init__`` derives lines of its own from the loop's (the envelope mixin:
    ``ZLIndEnvelope``…) has them computed by Backtrader *before* its loop runs, NaN at every bar
    in either mode; Backtrader's ``once()`` keeps that. And a class that Backtrader runs in
    ``once()`` through its ``next`` (``once_via_next``: PSAR, the Laguerre ones, ZLInd) on an
    *indicator* as data: ``once_via_next`` advances its datas, but an indicator advances only
    behind its own clock (the feed), which nothing advances there, so each bar reads the
    indicator's last value — NaN at every bar but the last, in a ``runonce=True`` backtest
    too (``runonce=False`` computes it right): Backtrader's ``once()`` keeps that as well."""
    size = len(base.lines.getlinealiases())
    via_next = base.once is bt.Indicator.once_via_next

    def guarded(ev: GraphEvaluator, node):
        if node.lines.size() != size:
            _not_vectorised(f"{type(node).__name__}: lines derived from {base.__name__}'s own loop")
        if via_next and any(isinstance(data, bt.Indicator) for data in node.datas):
            _not_vectorised(f"{type(node).__name__} on an indicator: Backtrader's once() never "
                            "advances it")
        return handler(ev, node)
    guarded.__doc__ = handler.__doc__
    return guarded


def _with_aliases(table: dict) -> dict:
    """``table`` plus each class's aliases (``PSAR``, ``LRSI``, ``ZLInd``, ``CumSum``…):
    Backtrader makes an alias a subclass *before* its base is complete, so the alias gets a
    ``once = once_via_next`` of its own, and the evaluator would take it for a loop of its own."""
    out = {}
    for cls, handler in table.items():
        out[cls] = handler
        module = sys.modules[cls.__module__]
        for name in getattr(cls, "alias", ()):
            alias = getattr(module, name, None)
            if isinstance(alias, type) and issubclass(alias, cls) and "next" not in vars(alias):
                out[alias] = handler
    return out


#: Indicator class → handler; merged into the evaluator's table by :mod:`.own_lines`.
LOOP_INDICATORS = _with_aliases({
    psar.ParabolicSAR: _own_lines_only(psar.ParabolicSAR, _parabolic_sar),
    basicops.ExponentialSmoothingDynamic: _own_lines_only(basicops.ExponentialSmoothingDynamic,
                                                          _exp_smoothing_dynamic),
    basicops.Accum: _own_lines_only(basicops.Accum, _accum),
    lrsi.LaguerreRSI: _own_lines_only(lrsi.LaguerreRSI, _laguerre_rsi),
    lrsi.LaguerreFilter: _own_lines_only(lrsi.LaguerreFilter, _laguerre_filter),
    zlind.ZeroLagIndicator: _own_lines_only(zlind.ZeroLagIndicator, _zero_lag),
    btli.MultiCoupler: _coupler,  # its subclasses take the coupled object's lines
})
