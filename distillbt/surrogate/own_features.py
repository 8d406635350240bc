"""The columns a plain configuration's surrogate reads from its strategy's own lines.

A strategy's rule compares the lines it builds in ``__init__`` — ``self.rsi < self.p.low``,
``self.data.close > self.bands.top``, ``self.macd.macd > self.macd.signal``, a
``CrossOver`` — so the surrogate's tree learns it best from exactly those lines and their
differences: one axis-aligned split is then the rule, at its exact threshold.
:class:`OwnFeatures` builds the configuration's graph once (:func:`~.own_lines.
strategy_graph`, on a small fixed sample) and makes, from its **top-level lines** (those the
strategy holds, or that its ``__init__`` created directly):

- ``own:<line>`` — a line without price units (RSI, CCI, a ``CrossOver``, a ``bt.And``…), as
  it is; ``own:<line>@1`` — its value a bar earlier (a level crossed since the last bar);
- ``own:<line>/c`` — a line in price units that is not a price level (ATR, MACD, a
  momentum), divided by the close: the same sign, stationary across price levels; and, for
  those and price levels (a moving average, a band), ``own:<line>.d1/c``, its change since
  the last bar (a rising average);
- ``own:<a>/<b>`` and ``own:<b>/<a>`` — the ratios (− 1) of two price levels, the candle's
  open, high, low and close included (``close > top``, ``fast > slow``, ``close > sma * (1 +
  band)``), and ``own:<a>/<b>@1``, a bar earlier (a cross decided in ``next``);
  ``own:<a>-<b>`` for two lines without units of comparable ranges (``%K > %D``), and
  ``own:<a>-<b>/c`` for two in price units (MACD and its signal), each also a bar earlier;
- for a strategy whose ``next`` reads the feed's past prices (``close[-1]``, ``high[-2]``:
  streaks, inside bars, a break of the last bar's high), ``own:<p>/<p>(-1)`` — the one-bar
  change of price ``p`` (− 1), and ``own:<p>/<p>(-1)@k`` the change ``k`` bars earlier
  (``close[-k] < close[-k-1]``), as many as the bars it reads back, and ``own:<q>/<p>(-1)``
  for the candle's other prices against ``p`` a bar earlier (``close > high[-1]``), and
  ``own:<q>/<p>@k`` for two such prices of one candle ``k`` bars back (a body: ``close[-1] <
  open[-1]``). Which
  prices, and how far back, :func:`past_prices` reads from the strategy's source; such a
  strategy needs no indicator of its own.

Which lines carry price units is measured, not guessed: the graph is evaluated on the sample
and on the same sample with every price doubled; a line that doubles carries them, one that
stays put does not, and one that doubles *and* tracks the close is a price level.

Lines are computed by :class:`~.own_lines.GraphEvaluator` (numpy) on any candles with the
graph built once; a graph holding a node nobody vectorised is rebuilt on those candles and
computed by Backtrader's own ``once()`` (``how`` says which).
"""

from __future__ import annotations

import ast
import functools
import itertools
import re
import textwrap
from dataclasses import dataclass

import numpy as np

from ..backtest import feed_arrays
from ..errors import InputError, first_line
from .own_lines import GraphEvaluator, NotVectorised, backtrader_lines, delayed, strategy_graph, top_level_lines

__all__ = ["OwnFeatures", "PREFIX", "is_own", "factor_ratios", "past_prices", "past_windows", "windows_read"]

PREFIX = "own:"
DATA_LINES = ("open", "high", "low", "close")
#: Bars of one-bar changes read back when ``next`` indexes a price by a computed ago
#: (``close[-i]`` in a loop): the source does not say how far.
COMPUTED_AGO_BARS = 4
#: The most bars of one-bar changes given columns: a pattern of candles reads a few bars back;
#: a price read farther back (``close[-10]``) is a window of the bank's (a momentum, a channel:
#: :func:`past_windows`).
MOST_PAST_BARS = 4


def _past_reads(source: str | None) -> tuple[tuple[str, int | None], ...]:
    """``(price, ago)`` of every index of a feed price a bar or more back in ``source``
    (``self.data.close[-1]``, ``d.low[-2]``, ``c[-i]`` after ``c = self.data.close``); the
    ago None when it is computed. Read once per source (:func:`_parsed_past_reads`): every
    configuration of a grid, in every worker that plans one, asks twice."""
    return _parsed_past_reads(source) if source else ()


@functools.lru_cache(maxsize=256)
def _parsed_past_reads(source: str) -> tuple[tuple[str, int | None], ...]:
    names = _price_aliases(source)
    words = "|".join(map(re.escape, sorted(set(DATA_LINES) | set(names))))
    out = []
    for word, ago in re.findall(r"(?<!\w)(" + words + r")\s*\[\s*-\s*([^\]]+?)\s*\]", source):
        out.append((names.get(word, word), int(ago) if ago.isdigit() else None))
    return tuple((line, ago) for line, ago in out if ago != 0)


def _price_aliases(source: str) -> dict[str, str]:
    """``{name: price}`` of the names a strategy's source binds to the feed's prices
    (``c = self.data.close``, ``high, low = self.data.high, self.data.low``); none when it
    does not parse."""
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return {}

    def price(node):
        if isinstance(node, ast.Attribute) and node.attr in DATA_LINES and isinstance(node.value, ast.Attribute) \
                and node.value.attr.startswith("data"):
            return node.attr
        return None

    def bound(target, value):  # (name, value) pairs, a tuple unpacked element by element
        if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
            return zip(target.elts, value.elts)
        return [(target, value)]

    return {name.id: price(value) for node in ast.walk(tree) if isinstance(node, ast.Assign)
            for target in node.targets for name, value in bound(target, node.value)
            if isinstance(name, ast.Name) and price(value)}


def past_prices(source: str | None) -> dict[str, int]:
    """``{price: bars}``: the feed prices a strategy's source indexes a bar or more back
    (:func:`_past_reads`) and how many bars of one-bar changes cover what it reads — the
    farthest literal ago up to :data:`MOST_PAST_BARS` (one farther is a window:
    :func:`past_windows`), :data:`COMPUTED_AGO_BARS` for a computed one. Empty without a
    source."""
    out: dict[str, int] = {}
    for line, ago in _past_reads(source):
        bars = COMPUTED_AGO_BARS if ago is None else ago if ago <= MOST_PAST_BARS else 0
        out[line] = max(out.get(line, 0), bars)
    return {line: bars for line, bars in out.items() if bars}


def past_windows(source: str | None) -> list[int]:
    """The literal agos of 2 bars or more at which a strategy's source reads a feed price
    (``close[0] > close[-10]``, ``min(low[-1], low[-2], low[-3])``): windows whose momentum
    and channel the bank's columns at that period hold."""
    return sorted({ago for _, ago in _past_reads(source) if ago is not None and ago >= 2})


def windows_read(reads: dict) -> list[str]:
    """The bank's columns over windows of the feed's prices that a strategy's code read whole
    (``reads``: ``{line: agos}``) with the close now: ``mom:k`` when it read ``close[-k]``,
    ``dc_up:k`` (``dc_lo:k``) when it read every high (low) from 1 to ``k`` bars back —
    ``close[0] < min(low[-1], low[-2], low[-3])`` is ``dc_lo:3 < 0``."""
    if 0 not in reads.get("close", ()):
        return []
    out = [f"mom:{-ago}" for ago in reads.get("close", ()) if ago <= -2]
    for kind, line in (("dc_up", "high"), ("dc_lo", "low")):
        agos, k = set(reads.get(line, ())), 1
        while -(k + 1) in agos:
            k += 1
        out += [f"{kind}:{j}" for j in range(2, k + 1) if -1 in agos]
    return out


#: Bars of the sample the graph is built and measured on (longer than any usual warm-up).
SAMPLE_BARS = 3_000


def factor_ratios(thresholds) -> list[float]:
    """The ratios (− 1) a factor near 1 sets between two price levels: ``close < 0.98 * sma``
    is ``close/sma − 1 < −0.02`` and ``sma/close − 1 > 1/0.98 − 1``."""
    factors = [float(t) for t in thresholds if 0.5 < float(t) < 2.0 and float(t) != 1.0]
    return [f - 1.0 for f in factors] + [1.0 / f - 1.0 for f in factors]


def is_own(name: str) -> bool:
    return name.startswith(PREFIX)


@dataclass(frozen=True)
class _Column:
    a: str
    b: str | None = None
    per_close: bool = False
    ratio: bool = False
    lag: int = 0
    slope: bool = False
    #: ``b`` read this many bars before ``a`` (``close/close(-1)``: a one-bar change).
    shift: int = 0


@functools.lru_cache(maxsize=1)
def _sample_arrays() -> tuple[dict, dict]:
    """A fixed sample of the embedded market and the same one with every price doubled."""
    from ..data.sample import sample_market

    frame = sample_market(bars=SAMPLE_BARS, seed=0).frame
    arrays = feed_arrays(frame.index.asi8, *(frame[k].to_numpy() for k in ("open", "high", "low", "close", "volume")))
    doubled = dict(arrays, **{k: 2.0 * arrays[k] for k in DATA_LINES})
    return arrays, doubled


class OwnFeatures:
    """The own-line columns of one configuration (module docstring).

    ``names`` lists them; :meth:`columns` computes some of them over any candles;
    ``minperiod`` is the longest minimum period of the lines they read, ``converge`` the bars
    a full backtest feeds before its first scored bar so that they have converged (10x that,
    at least 200, as :func:`~distillbt.indicators.bank_warmup`); ``how`` is ``"numpy"`` or
    ``"backtrader once"`` (``reason`` names the node that forced it).
    ``past``: ``{price: bars}`` of the feed's past prices its ``next`` reads
    (:func:`past_prices`), given their columns.
    Raises :class:`~distillbt.errors.InputError` when the strategy's ``__init__`` fails or
    builds no line and reads no past price.
    """

    def __init__(self, strategy_cls, params: dict, *, past: dict | None = None):
        self.strategy_cls, self.params = strategy_cls, dict(params or {})
        self.past = {line: int(bars) for line, bars in (past or {}).items() if line in DATA_LINES and bars > 0}
        sample, doubled = _sample_arrays()
        try:
            self._graph = strategy_graph(strategy_cls, self.params, sample)
        except InputError:
            raise
        except Exception as error:  # noqa: BLE001 - the strategy's own __init__ raised
            raise InputError(f"{strategy_cls.__name__}: building its indicators failed: "
                             f"{first_line(error, with_type=True)}") from error
        self._line = top_level_lines(self._graph)
        if not self._line and not self.past:
            raise InputError(f"{strategy_cls.__name__} builds no indicator line in __init__")
        #: The lines the strategy holds as attributes (``atr``, ``bb.top``), by own-line name.
        self.line_names = [name for name in self._line if not name.startswith("/")]
        self._group = {name: name.split(".")[0] for name in self._line}
        self.how, self.reason = "numpy", None
        try:
            base = self._evaluate(sample, list(self._line))
            twice = self._evaluate(doubled, list(self._line))
        except NotVectorised as missing:
            self.how, self.reason = "backtrader once", str(missing)
            base = self._evaluate(sample, list(self._line))
            twice = self._evaluate(doubled, list(self._line))
        self.kind = {name: _kind(base[name], twice[name], sample["close"]) for name in self._line}
        usable = [n for n in self._line if self.kind[n] != "constant"]
        first = [int(np.argmax(~np.isnan(base[n]))) for n in usable if (~np.isnan(base[n])).any()]
        self.minperiod = max(first + [max(self.past.values(), default=0)], default=0) + 1
        self.converge = max(200, 10 * self.minperiod)
        self.specs = self._specs(usable, base)
        self.names = list(self.specs)
        #: Columns of the lines in price units (ATR, a deviation), for trade distances in their multiples.
        self.unit_columns = [f"{PREFIX}{n}/c" for n in usable if self.kind[n] == "units"]

    # -- which columns
    def _specs(self, usable, sample) -> dict:
        specs = {}
        levels = [n for n in usable if self.kind[n] == "level"]
        units = [n for n in usable if self.kind[n] == "units"]
        plain = [n for n in usable if self.kind[n] == "plain"]
        for n in plain:
            specs[f"{PREFIX}{n}"] = _Column(n)
            specs[f"{PREFIX}{n}@1"] = _Column(n, lag=1)
        for n in units:  # a price level's own value is its ratio to the close, below
            specs[f"{PREFIX}{n}/c"] = _Column(n, per_close=True)
        for n in levels + units:
            specs[f"{PREFIX}{n}.d1/c"] = _Column(n, per_close=True, slope=True)
        for a, b in itertools.combinations(levels + list(DATA_LINES), 2):
            if a in DATA_LINES and b in DATA_LINES:
                continue
            # both ratios: ``close > sma * (1 + band)`` is ``close/sma - 1 > band`` exactly
            specs[f"{PREFIX}{a}/{b}"] = _Column(a, b, ratio=True)
            specs[f"{PREFIX}{b}/{a}"] = _Column(b, a, ratio=True)
            specs[f"{PREFIX}{a}/{b}@1"] = _Column(a, b, ratio=True, lag=1)
        spread = {n: np.nanquantile(sample[n], [0.05, 0.95]) for n in plain + units}
        for group, per_close in ((plain, False), (units, True)):
            for a, b in itertools.combinations(group, 2):
                if not _comparable(spread[a], spread[b]):
                    continue  # %K against a cross: no rule compares those
                for lag in (0, 1):
                    specs[f"{PREFIX}{a}-{b}" + ("/c" if per_close else "") + ("@1" if lag else "")] = \
                        _Column(a, b, per_close=per_close, lag=lag)
        for p, bars in self.past.items():
            for lag in range(bars):
                specs[f"{PREFIX}{p}/{p}(-1)" + (f"@{lag}" if lag else "")] = _Column(p, p, ratio=True, lag=lag, shift=1)
            for q in DATA_LINES:
                if q != p:
                    specs[f"{PREFIX}{q}/{p}(-1)"] = _Column(q, p, ratio=True, shift=1)
        # two prices of one candle, at each bar back both are read (a body: ``close[-1] < open[-1]``)
        for a, b in itertools.combinations([p for p in DATA_LINES if p in self.past], 2):
            for lag in range(min(self.past[a], self.past[b]) + 1):
                specs[f"{PREFIX}{b}/{a}" + (f"@{lag}" if lag else "")] = _Column(b, a, ratio=True, lag=lag)
        return specs

    def snap_candidates(self, name: str, thresholds) -> list[float]:
        """Natural split values of column ``name``: 0 for differences, ratios, slopes and
        lines in price units around 0 (MACD), and ± the configuration's fractional parameters
        for ratios (a band); the numeric parameters, their negatives and 0 for a line without
        units (``rsi < low``, ``williams > -20``, a cross)."""
        spec = self.specs[name]
        if spec.ratio:  # a band (± 0.02) or a factor near 1 (0.98: close/sma − 1 = −0.02)
            return sorted({0.0} | {s * float(t) for t in thresholds if 0 < abs(float(t)) < 1 for s in (1, -1)}
                          | set(factor_ratios(thresholds)))
        if spec.per_close:
            return [0.0]
        return sorted({0.0} | {float(t) for t in thresholds} | {-float(t) for t in thresholds}
                      | ({float(x) for x in range(5, 100, 5)} if spec.b is None else set()))

    def read_columns(self, reads: dict) -> list[str]:
        """The columns of lines the strategy's own code reads, at the bars the column takes
        them from (``reads``: ``{line: agos}`` from :class:`~.replay.ReadTracingCerebro`):
        ``own:rsi`` when it reads ``self.rsi[0]``, ``own:rsi@1`` when it reads
        ``self.rsi[-1]``, ``own:sma.d1/c`` when it reads both, a ratio or difference when it
        reads both lines (the close included: ``own:close/sma``). A rule written on what
        ``next`` reads is a function of these (and of the state it keeps itself)."""
        out = []
        for name, spec in self.specs.items():
            if spec.slope:
                wanted = [(spec.a, 0), (spec.a, -1)]
            else:
                wanted = [(spec.a, -spec.lag)] + ([(spec.b, -spec.lag - spec.shift)] if spec.b is not None else [])
            if all(ago in reads.get(line, ()) for line, ago in wanted):
                out.append(name)
        return out

    def anonymous(self, name: str) -> bool:
        """Whether own column ``name`` reads a line the strategy does not hold as an
        attribute (``/SMA#0``: made in ``__init__`` and passed on, not read in ``next``)."""
        spec = self.specs.get(name)
        return spec is not None and any(x is not None and x.startswith("/") for x in (spec.a, spec.b))

    # -- computing them
    def columns(self, arrays: dict, names) -> np.ndarray:
        """``(bars, len(names))`` float32 of the columns ``names`` over ``arrays`` (the
        columns of :func:`~distillbt.backtest.feed_arrays`), NaN in each line's warm-up."""
        names = list(names)
        specs = [self.specs[n] for n in names]
        wanted = list(dict.fromkeys(x for s in specs for x in (s.a, s.b) if x is not None and x not in DATA_LINES))
        lines = self._evaluate(arrays, wanted)
        close = np.asarray(arrays["close"], dtype=np.float64)
        out = np.empty((len(close), len(names)), dtype=np.float32, order="F")
        with np.errstate(all="ignore"):
            for j, s in enumerate(specs):
                v = lines[s.a] if s.a in lines else np.asarray(arrays[s.a], dtype=np.float64)
                if s.b is not None:
                    other = lines[s.b] if s.b in lines else np.asarray(arrays[s.b], dtype=np.float64)
                    other = delayed(other, s.shift) if s.shift else other
                    v = v / other - 1.0 if s.ratio else v - other
                if s.slope:
                    v = v - delayed(v, 1)
                if s.per_close:
                    v = v / close
                out[:, j] = delayed(v, s.lag)
        return out

    def lines(self, arrays: dict, names) -> dict:
        """The strategy's lines ``names`` (of :attr:`line_names`) over ``arrays``, float64
        (NaN in each one's warm-up): where a price reads a line, the line itself."""
        return self._evaluate(arrays, list(names))

    def _evaluate(self, arrays: dict, names) -> dict:
        if self.how == "numpy":
            evaluator = GraphEvaluator(self._graph, arrays)
            return {n: evaluator.line(self._line[n]) for n in names}
        # A node nobody vectorised: Backtrader's own pass over a graph built on these candles.
        computed = backtrader_lines(strategy_graph(self.strategy_cls, self.params, arrays))
        return {n: computed[n] for n in names}


def _kind(base: np.ndarray, twice: np.ndarray, close: np.ndarray) -> str:
    """``"level"`` (doubles with prices and tracks the close), ``"units"`` (doubles: ATR,
    MACD), ``"plain"`` (does not: RSI, a cross) or ``"constant"`` (nothing to learn)."""
    ok = ~np.isnan(base) & ~np.isnan(twice)
    if not ok.any() or np.nanmax(base[ok]) == np.nanmin(base[ok]):
        return "constant"
    b, t = base[ok], twice[ok]
    if np.allclose(t, 2.0 * b, rtol=1e-6, atol=1e-9 * np.abs(b).max()):
        return "level" if np.median(np.abs(b / close[ok] - 1.0)) < 0.2 else "units"
    return "plain"


def _comparable(a, b) -> bool:
    """Whether two lines' 5–95 % ranges overlap and are of a similar width (within 4x)."""
    wa, wb = a[1] - a[0], b[1] - b[0]
    if not (wa > 0 and wb > 0):
        return False
    return a[0] <= b[1] and b[0] <= a[1] and max(wa, wb) <= 4 * min(wa, wb)
