"""A plain strategy's own indicator lines, computed without Backtrader's bar loop.

A strategy's rule reads the lines it builds in ``__init__`` — ``bt.ind.RSI(period=9)``,
``self.sma - self.sma(-5)``, ``bt.ind.CrossOver(fast, slow)``, ``bt.And(a > b, c < 30)`` — so
its surrogate learns best from exactly those lines, at their exact values. :func:`own_lines`
builds the strategy's indicator graph the way Backtrader does (the strategy's own
``__init__`` on a feed of the given candles, stopped before its first bar) and computes every
line of it:

- **vectorised** (:class:`GraphEvaluator`): Backtrader's line arithmetic (``LinesOperation``,
  ``LineOwnOperation``, delays ``x(-n)``), its functions (``bt.If``, ``bt.And``, ``bt.Or``,
  ``bt.Max``, ``bt.Min``, ``bt.DivByZero``, ``bt.DivZeroByZero``, ``bt.Cmp``) and the few
  indicators that compute in a loop of their own (``Average``, ``ExponentialSmoothing`` — EMA,
  SMMA and everything built on them —, ``WeightedAverage``, the window operations of
  ``OperationN``: ``Highest``, ``Lowest``, ``SumN``…, ``NonZeroDifference``) in numpy with
  Backtrader's definitions: seeds, smoothing and the NaN warm-up of each line's minimum
  period. Every other indicator in Backtrader (RSI, Stochastic, MACD, ATR, ADX/DMI,
  Bollinger, CCI, Williams %R, ROC, Aroon, Envelope, StdDev, DEMA/TEMA/HMA, the Ultimate
  Oscillator…) is built in its ``__init__`` from those, so it is evaluated through its own
  graph, not re-implemented;
- **recursions** (:mod:`.own_loops`): ``ParabolicSAR``, ``KAMA``'s dynamic smoothing,
  ``Accum``, the Laguerre filter and RSI, the zero-lag indicator, as tight loops over Python
  floats with Backtrader's arithmetic;
- **by Backtrader's own** ``once()`` (:func:`backtrader_lines`): when the graph holds a node
  nobody vectorised (a custom indicator with its own ``next``, a line bound twice such as
  an oscillator's), every line is computed by Backtrader's vectorised pass over the
  candles, still without the bar loop.

Lines are named after the strategy attribute that holds them (``rsi``, ``macd.signal``,
``cross``) and, for intermediate nodes, ``<attribute>/<Class>#<k>``.
"""

from __future__ import annotations

import math
import operator
import sys
from dataclasses import dataclass

import backtrader as bt
import numpy as np
from backtrader import functions as btfunc
from backtrader import linebuffer as btlb
from backtrader.indicators import basicops

from ..backtest import NumpyFeed
from ..errors import InputError, first_line

__all__ = ["own_lines", "backtrader_lines", "backtrader_pass", "strategy_graph", "graph_lines", "top_level_lines",
           "graph_nodes",
           "node_lines", "delayed", "GraphEvaluator", "NotVectorised", "OwnLines"]


class NotVectorised(LookupError):
    """A node of the graph has no numpy definition here (its class is named)."""


class _Built(Exception):  # noqa: N818 - a signal, not an error: the strategy is built
    def __init__(self, strategy):
        super().__init__("built")
        self.strategy = strategy


@dataclass
class OwnLines:
    """The lines of one strategy over the candles given: ``lines`` name → float64 array (one
    value per candle, NaN before each line's minimum period) and ``how`` they were computed
    (``"numpy"`` or ``"backtrader once"``, with ``reason`` naming the node that forced the
    latter)."""

    lines: dict
    how: str
    reason: str | None = None


def strategy_graph(strategy_cls, params: dict, arrays: dict):
    """The strategy's instance with its indicator graph built on a feed of ``arrays`` (the
    columns of :func:`distillbt.backtest.feed_arrays`), preloaded, stopped before its
    ``start``: nothing computed yet."""
    stop_at_start = type(strategy_cls.__name__, (strategy_cls,), {"start": _raise_built,
                                                                 "__module__": strategy_cls.__module__})
    cerebro = bt.Cerebro(stdstats=False, runonce=True, preload=True, maxcpus=1)
    cerebro.adddata(NumpyFeed(arrays=arrays, name="data"))
    cerebro.addstrategy(stop_at_start, **(params or {}))
    try:
        cerebro.run()
    except _Built as built:
        return built.strategy
    raise InputError(f"{strategy_cls.__name__}: Backtrader did not start the strategy")


def _raise_built(self):
    raise _Built(self)


def graph_nodes(strategy) -> list[tuple[str, object]]:
    """Every indicator and line action of the graph, depth first, each with a name: the
    strategy attribute holding it, else its parent's name / class#k."""
    by_id = {}
    for attr, value in vars(strategy).items():
        if not attr.startswith("_") and isinstance(value, (bt.Indicator, btlb.LineActions)):
            by_id.setdefault(id(value), attr)
    out, seen = [], set()

    def visit(node, parent: str, k: int):
        if id(node) in seen:
            return
        seen.add(id(node))
        name = by_id.get(id(node)) or f"{parent}/{type(node).__name__}#{k}"
        out.append((name, node))
        for j, child in enumerate(getattr(node, "_lineiterators", {}).get(bt.LineIterator.IndType, [])):
            visit(child, name, j)

    for k, node in enumerate(strategy._lineiterators[bt.LineIterator.IndType]):
        visit(node, "", k)
    return out


def node_lines(node) -> list[tuple[str, object]]:
    """``(line name, line buffer)`` of a node: an indicator's named lines, a line action itself."""
    if isinstance(node, btlb.LineActions):
        return [("", node)]
    aliases = node.lines.getlinealiases()
    return [(alias, node.lines[i]) for i, alias in enumerate(aliases)]


def _line_names(strategy, nodes) -> list[tuple[str, object]]:
    """``(name, line)`` of every line of the graph, plus the single lines the strategy holds
    as attributes (``self.k = bt.ind.Stochastic().percK`` → ``k``)."""
    out = []
    for name, node in nodes:
        lines = node_lines(node)
        for alias, line in lines:
            out.append((name if len(lines) == 1 or not alias else f"{name}.{alias}", line))
    known = {id(line) for _, line in out}
    for attr, value in vars(strategy).items():
        if (not attr.startswith("_") and isinstance(value, btlb.LineBuffer)
                and not isinstance(value, btlb.LineActions) and id(value) in known):
            out.append((attr, value))
    return out


def backtrader_pass(strategy) -> None:
    """Fill every line buffer of a built strategy's graph by Backtrader's own vectorised pass
    (each indicator's ``_once``), without the bar loop."""
    for indicator in strategy._lineiterators[bt.LineIterator.IndType]:
        indicator._once()


def backtrader_lines(strategy) -> dict:
    """Every line of a built strategy's graph (:func:`strategy_graph`) computed by Backtrader's
    own vectorised pass (:func:`backtrader_pass`)."""
    backtrader_pass(strategy)
    return {name: np.array(line.array, dtype=np.float64)
            for name, line in _line_names(strategy, graph_nodes(strategy))}


def own_lines(strategy_cls, params: dict, arrays: dict, *, prefer: str = "numpy") -> OwnLines:
    """The strategy's own lines over ``arrays`` (module docstring): vectorised when every node
    of its graph has a numpy definition, else by Backtrader's ``once()`` (``prefer="backtrader"``
    forces the latter)."""
    try:
        strategy = strategy_graph(strategy_cls, params, arrays)
    except InputError:
        raise
    except Exception as error:  # noqa: BLE001 - the strategy's own __init__ raised
        raise InputError(f"{strategy_cls.__name__}: building its indicators failed: "
                         f"{first_line(error, with_type=True)}") from error
    nodes = graph_nodes(strategy)
    if prefer == "numpy":
        evaluator = GraphEvaluator(strategy, arrays, nodes)
        try:
            return OwnLines({name: evaluator.line(line) for name, line in _line_names(strategy, nodes)}, "numpy")
        except NotVectorised as missing:
            reason = str(missing)
    else:
        reason = "asked for"
    return OwnLines(backtrader_lines(strategy), "backtrader once", reason)


def graph_lines(strategy) -> list[tuple[str, object]]:
    """``(name, line)`` of every line of a built strategy's graph, named as :func:`own_lines`
    names them."""
    return _line_names(strategy, graph_nodes(strategy))


def top_level_lines(strategy) -> dict:
    """``{name: line}`` of the graph's top-level lines (those the strategy holds, or that its
    ``__init__`` created directly), each once: under the attribute holding it if one does
    (``self.adx = dmi.adx``: a line the rule reads), else under its anonymous ``/…`` name."""
    by_line: dict = {}
    for name, line in graph_lines(strategy):
        if "/" in name[1:]:
            continue
        held = by_line.get(id(line))
        if held is None or (held[0].startswith("/") and not name.startswith("/")):
            by_line[id(line)] = (name, line)
    return dict(by_line.values())


# -- the numpy evaluation ---------------------------------------------------------------------
_BINARY = {
    operator.add: np.add, operator.sub: np.subtract, operator.mul: np.multiply,
    operator.truediv: np.true_divide, operator.floordiv: np.floor_divide, operator.pow: np.power,
    operator.mod: np.mod,
    operator.gt: np.greater, operator.ge: np.greater_equal, operator.lt: np.less, operator.le: np.less_equal,
    operator.eq: np.equal, operator.ne: np.not_equal,
}
_UNARY = {operator.neg: np.negative, operator.abs: np.abs, operator.pos: np.positive, abs: np.abs}


class GraphEvaluator:
    """Lines of a built strategy's graph in numpy (module docstring). :meth:`line` gives one
    line's values, computing what it depends on first; raises :class:`NotVectorised` naming
    the first node it has no definition for."""

    def __init__(self, strategy, arrays: dict, nodes=None):
        self.n = len(arrays["close"])
        self.values: dict[int, np.ndarray] = {}
        data = strategy.datas[0]
        for alias in data.lines.getlinealiases():
            if alias in arrays:
                self.values[id(getattr(data.lines, alias))] = np.asarray(arrays[alias], dtype=np.float64)
        self._computing: set[int] = set()  # lines being computed (a cycle is not vectorised)
        self.bound_from: dict[int, object] = {}  # a line → the line whose values are bound to it
        self.owner: dict[int, object] = {}  # an indicator's line → the indicator
        for _, node in nodes if nodes is not None else graph_nodes(strategy):
            for _, line in node_lines(node):
                self.owner.setdefault(id(line), node)
                for target in line.bindings:
                    self.bound_from[id(target)] = line

    # -- dispatch
    def line(self, obj) -> np.ndarray:
        line = btlb.LineActions.arrayize(obj) if isinstance(obj, bt.LineRoot) else obj
        if isinstance(line, btlb.PseudoArray):
            return np.full(self.n, float(line.wrapped), dtype=np.float64)
        key = id(line)
        if key not in self.values:
            if key in self._computing:  # a line bound twice (OscillatorMixIn, PPO, HeikinAshi)
                raise NotVectorised(f"a line of {type(line).__name__} that depends on itself")
            self._computing.add(key)
            try:
                self._compute(line, key)
            finally:
                self._computing.discard(key)
        return self.values[key]

    def _compute(self, line, key) -> None:
        if key not in self.values:
            if key in self.bound_from:
                self.values[key] = self.line(self.bound_from[key])
            elif isinstance(line, btlb.LineActions):
                self.values[key] = self._masked(line, self._action(line))
            elif key in self.owner:
                self._indicator(self.owner[key])
            else:
                raise NotVectorised(f"a line of {type(line).__name__} outside the strategy's graph")

    def _masked(self, node, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 0:
            values = np.full(self.n, float(values))
        first = max(0, int(node._minperiod) - 1)
        if first:
            values = values.copy()
            values[:first] = np.nan  # Backtrader computes nothing before the minimum period
        return values

    def _operand(self, x):
        return self.line(x) if isinstance(x, bt.LineRoot) else x

    # -- line actions: arithmetic, delays, functions
    def _action(self, node) -> np.ndarray:
        kind = type(node)
        if kind is btlb.LinesOperation:
            function = _BINARY.get(node.operation)
            if function is None or getattr(node, "btime", False):
                raise NotVectorised(f"line operation {getattr(node.operation, '__name__', node.operation)!r}")
            a, b = self._operand(node.a), self._operand(node.b)
            with np.errstate(all="ignore"):
                return function(a, b).astype(np.float64)
        if kind is btlb.LineOwnOperation:
            function = _UNARY.get(node.operation)
            if function is None:
                raise NotVectorised(f"line operation {getattr(node.operation, '__name__', node.operation)!r}")
            return function(self.line(node.a))
        if kind is btlb._LineDelay:
            return delayed(self.line(node.a), -int(node.ago))
        handler = _FUNCTIONS.get(kind)
        if handler is None:
            raise NotVectorised(f"{kind.__name__}")
        return handler(self, node)

    # -- indicators with a loop of their own; the others through their own graph
    def _indicator(self, node) -> None:
        kind = type(node)
        handler = next((h for k, h in _INDICATORS.items() if kind is k), None)
        if handler is None:
            for k, h in _INDICATORS.items():
                if issubclass(kind, k) and _computes_like(kind, k):
                    handler = h
                    break
        lines = node_lines(node)
        if handler is None:
            if _own_loop(kind) or any(id(line) not in self.bound_from for _, line in lines):
                raise NotVectorised(f"{kind.__name__} computes in a loop of its own")
            for _, line in lines:
                self.line(line)
            return
        values = handler(self, node)
        for (_, line), column in zip(lines, values):
            self.values[id(line)] = self._masked(node, column)


def _own_loop(kind) -> bool:
    """Whether an indicator class (below ``bt.Indicator``) has a next/once of its own."""
    for cls in kind.__mro__:
        if cls is bt.Indicator:
            return False
        if "next" in cls.__dict__ or "once" in cls.__dict__:
            return True
    return False


def _computes_like(kind, base) -> bool:
    """Whether ``kind`` inherits ``base``'s computation unchanged (no next/once of its own)."""
    for cls in kind.__mro__:
        if cls is base:
            return True
        if "next" in cls.__dict__ or "once" in cls.__dict__:
            return False
    return False


def delayed(x: np.ndarray, k: int) -> np.ndarray:
    """``x`` delayed by ``k`` bars (``x(-k)`` in Backtrader), NaN where there is no value."""
    if k == 0:
        return x
    out = np.full_like(x, np.nan)
    if k > 0:
        out[k:] = x[:-k]
    else:
        out[:k] = x[-k:]
    return out


def _windows(x: np.ndarray, period: int) -> np.ndarray:
    """``(n, period)`` trailing windows (rows before the first full window are NaN rows)."""
    padded = np.concatenate([np.full(period - 1, np.nan), x])
    return np.lib.stride_tricks.sliding_window_view(padded, period)


#: Windows up to this length are summed window by window (exact ties), longer ones by
#: differences of a running sum.
SHORT_WINDOW = 32


def _rolling_sum(x: np.ndarray, p: int) -> np.ndarray:
    """Sums of the trailing ``p`` values, as Backtrader's ``math.fsum`` of each window to within
    an ulp: differences of an extended-precision running sum (a plain float64 one loses
    digits that ``sma - sma(-5)`` would then show), from the input's first value on."""
    valid = ~np.isnan(x)
    out = np.full(len(x), np.nan)
    if not valid.any():
        return out
    first = int(np.argmax(valid))
    if not valid[first:].all() or p <= SHORT_WINDOW:
        # window by window: a gap inside, or a short window, whose sums must be exact where
        # fsum's are (a Stochastic's %K saturated at 100 for 3 bars averages to 100.0, and
        # a CrossOver of %K and %D then sees the tie Backtrader sees)
        return _windows(x, p).sum(axis=1)
    running = np.concatenate([[0.0], np.cumsum(x[first:], dtype=np.longdouble)])
    if len(running) > p:
        out[first + p - 1:] = (running[p:] - running[:-p]).astype(np.float64)
    return out


def _average(ev: GraphEvaluator, node):
    x, p = ev.line(node.data), int(node.p.period)
    return [_rolling_sum(x, p) / p]


def _smoothed(x: np.ndarray, period: int, alpha: float) -> np.ndarray:
    """Backtrader's ExponentialSmoothing: the SMA of the first ``period`` values as the seed at
    ``period - 1``, then ``prev * (1 - alpha) + x * alpha`` at each step (:func:`_recursion`)."""
    out = np.full(len(x), np.nan)
    valid = np.flatnonzero(~np.isnan(x))
    if not len(valid):
        return out
    first = int(valid[0])  # an input with its own warm-up: the seed waits for it
    seed_at = first + period - 1
    if seed_at >= len(x):
        return out
    prev = math.fsum(x[first:seed_at + 1].tolist()) / period
    out[seed_at] = prev
    out[seed_at + 1:] = _recursion(x[seed_at + 1:], prev, alpha)
    return out


def _recursion(x: np.ndarray, prev: float, alpha: float) -> np.ndarray:
    """``y[i] = y[i-1] * (1 - alpha) + x[i] * alpha`` from ``y[-1] = prev``: the same two
    products and their sum at each step as Backtrader's loop, so the same floats bit for bit
    (tested), whether by ``scipy.signal.lfilter``'s direct form in C (as the indicator bank's
    ``distillbt.indicators._smooth``, whose seed is a numpy mean, not Backtrader's ``fsum``) or
    by a Python loop. ``lfilter`` when this process has imported ``scipy.signal`` already (the
    screen's own process has); the loop otherwise: a worker that only records and replays never
    imports scipy, whose import costs more than the loops it would spare there."""
    alpha1 = 1.0 - alpha
    if not len(x):
        return x.copy()
    lfilter = getattr(sys.modules.get("scipy.signal"), "lfilter", None)
    if lfilter is not None:
        return lfilter([alpha], [1.0, -alpha1], x, zi=[alpha1 * prev])[0]
    values, result = x.tolist(), [0.0] * len(x)
    for i, value in enumerate(values):
        prev = prev * alpha1 + value * alpha
        result[i] = prev
    return np.asarray(result)


def _exp_smoothing(ev: GraphEvaluator, node):
    return [_smoothed(ev.line(node.data), int(node.p.period), float(node.alpha))]


def _weighted_average(ev: GraphEvaluator, node):
    x, p = ev.line(node.data), int(node.p.period)
    return [float(node.p.coef) * (_windows(x, p) @ np.asarray(node.p.weights, dtype=np.float64))]


_WINDOW_FUNCTIONS = {max: np.max, min: np.min}
_WINDOW_SUMS = (math.fsum, sum)


def _operation_n(ev: GraphEvaluator, node):
    """A window function over the last ``period`` values (Highest, Lowest, SumN, …): numpy for
    max/min/sum, else the node's own function on each window from its minimum period."""
    x, p = ev.line(node.data), int(node.p.period)
    w = _windows(x, p)
    function = node.func
    plain = getattr(function, "__func__", function)
    if plain in _WINDOW_SUMS:
        return [_rolling_sum(x, p)]
    fast = _WINDOW_FUNCTIONS.get(plain)
    if fast is not None:
        return [fast(w, axis=1)]
    out = np.full(len(x), np.nan)
    start = max(0, int(node._minperiod) - 1)
    rows = range(start, len(x))
    where = _WINDOW_INDEX.get(plain)
    extreme = _WINDOW_FUNCTIONS.get(getattr(node.p, "_evalfunc", None))
    if where is not None and extreme is not None and len(x) > start:
        # Aroon's FindFirstIndexHighest & co: the window's extreme is one of its values, so
        # equality finds it exactly; a window holding a NaN keeps Python's max/min (and its
        # NaN rules), one by one
        win = w[start:]
        out[start:] = where(win == extreme(win, axis=1)[:, None], p)
        rows = start + np.flatnonzero(np.isnan(win).any(axis=1))
    for i in rows:
        out[i] = function(w[i].tolist())
    return [out]


def _first_index(hit: np.ndarray, p: int) -> np.ndarray:
    """``FindFirstIndex.func``: bars back from the window's last value to its latest hit."""
    return np.argmax(hit[:, ::-1], axis=1).astype(np.float64)


def _last_index(hit: np.ndarray, p: int) -> np.ndarray:
    """``FindLastIndex.func``: bars back from the window's last value to its earliest hit."""
    return (p - 1 - np.argmax(hit, axis=1)).astype(np.float64)


#: OperationN functions that find where a window's max or min (``_evalfunc``) sits.
_WINDOW_INDEX = {basicops.FindFirstIndex.func: _first_index, basicops.FindLastIndex.func: _last_index}


def _nonzero_difference(ev: GraphEvaluator, node):
    """Backtrader's NonZeroDifference: a - b, or the last non-zero one where it is 0 (a NaN
    difference is not 0: Python's truth of NaN)."""
    a, b = ev.line(node.data0), ev.line(node.data1)
    diff = np.asarray(a - b, dtype=np.float64)
    out = np.full(len(diff), np.nan)
    start = max(0, int(node._minperiod) - 1)
    if start >= len(diff):
        return [out]
    tail = diff[start:]
    kept = tail != 0  # NaN != 0 is True
    kept[0] = True  # nextstart: the first difference as it is
    last = np.maximum.accumulate(np.where(kept, np.arange(len(tail)), 0))
    out[start:] = tail[last]
    return [out]


def _if(ev: GraphEvaluator, node):
    cond = ev.line(node.cond)
    return np.where(cond.astype(bool) | np.isnan(cond), ev.line(node.a), ev.line(node.b))


def _reduce_logic(function):
    def handler(ev: GraphEvaluator, node):
        arrays = [ev.line(a) for a in node.args]
        truth = [np.where(np.isnan(a), True, a != 0) for a in arrays]  # bool(nan) is True
        out = truth[0]
        for t in truth[1:]:
            out = function(out, t)
        return out.astype(np.float64)
    return handler


def _extreme(function):
    def handler(ev: GraphEvaluator, node):
        arrays = [ev.line(a) for a in node.args]
        out = arrays[0]
        for a in arrays[1:]:
            # Python's max/min keep the first argument when a comparison with NaN is False
            out = np.where(function(a, out), a, out)
        return out
    return handler


def _div_by_zero(ev: GraphEvaluator, node):
    a, b = ev.line(node.a), ev.line(node.b)
    with np.errstate(all="ignore"):
        return np.where(b != 0, a / np.where(b != 0, b, 1.0), float(node.zero))


def _div_zero_by_zero(ev: GraphEvaluator, node):
    a, b = ev.line(node.a), ev.line(node.b)
    with np.errstate(all="ignore"):
        quotient = a / np.where(b == 0.0, 1.0, b)
    return np.where(b == 0.0, np.where(a == 0.0, float(node.dual), float(node.single)), quotient)


def _cmp(ev: GraphEvaluator, node):
    a, b = ev.line(node.a), ev.line(node.b)
    return (a > b).astype(np.float64) - (a < b).astype(np.float64)


_FUNCTIONS = {
    btfunc.If: _if,
    btfunc.And: _reduce_logic(np.logical_and),
    btfunc.Or: _reduce_logic(np.logical_or),
    btfunc.Max: _extreme(np.greater),
    btfunc.Min: _extreme(np.less),
    btfunc.DivByZero: _div_by_zero,
    btfunc.DivZeroByZero: _div_zero_by_zero,
    btfunc.Cmp: _cmp,
}

#: Indicators that compute in a loop of their own, in numpy. A subclass that keeps the loop
#: (e.g. ``Highest`` of ``OperationN``) is served by its base's entry.
_INDICATORS = {
    basicops.Average: _average,
    basicops.ExponentialSmoothing: _exp_smoothing,
    basicops.WeightedAverage: _weighted_average,
    basicops.OperationN: _operation_n,
    bt.indicators.NonZeroDifference: _nonzero_difference,
}

from .own_loops import LOOP_INDICATORS

_INDICATORS.update(LOOP_INDICATORS)  # the recursions: PSAR, KAMA… (imported last)
