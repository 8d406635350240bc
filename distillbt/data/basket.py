"""A basket: several instruments of one candle interval, read as one data source.

:func:`load_basket` takes a list of sources, each one of

``"sample"``
    the sample market; with ``sample_instruments=N`` (N ≥ 2) N correlated instruments sharing
    a market factor (:func:`~distillbt.data.sample.sample_basket`), named ``SAMPLE01``...;
``bybit:SYM1,SYM2,...:TF``
    cached exchange series (fill them with ``fetch --symbols``), named by their symbols;
a folder
    one instrument per candle file in it (CSV, Parquet, Feather, read as
    :func:`~distillbt.data.files.load_file` reads them), named by the file's stem;
anything else
    what :func:`~distillbt.data.sources.load_candles` takes: one instrument, named by the
    file's stem (the sample: ``sample``; an exchange series: its symbol).

What cannot be used is skipped and said in one line in :attr:`Basket.problems` (name, why): a
file that is not candles or breaks the candle contract, a series that is not cached, an
instrument with fewer than ``min_candles`` candles (when the basket has more than one). A
folder whose files have different intervals keeps those of its most common one and skips the
rest by name; sources named one by one must agree (``basket_timeframe`` resamples every
instrument to one longer interval instead). :class:`~distillbt.errors.InputError` (exit 2 from
the CLI) when no instrument is usable, or when the named sources' intervals differ.

A basket of one is today's single source: ``load_basket(["sample"]).single`` is
``load_candles("sample")``, and a lone source that fails raises the error it raises alone.

:meth:`Basket.calendar_split` cuts the basket's calendar — the union of the instruments' time
ranges — once, into training / screening / holdout by time, and says for every instrument
which candles fall in each period and where it is short.
"""

from __future__ import annotations

import math
import numbers
import os
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, first_line
from .candles import Candles
from .sources import SAMPLE, exchange_source, load_candles
from .timeframes import timeframe_ms

__all__ = [
    "Basket",
    "BasketProblem",
    "BasketSplit",
    "load_basket",
    "MIN_CANDLES",
    "PERIOD_NAMES",
    "SPLIT_FRACTIONS",
    "FULL_COVERAGE",
]

#: An instrument with fewer candles is skipped from a basket of several (the screen's feature
#: warm-up alone is 256 candles and its regime labeller's 400).
MIN_CANDLES = 1000
#: The periods of :meth:`Basket.calendar_split`, in time order, and their default shares of the
#: calendar (the screen's 50 / 30 / 20 %).
PERIOD_NAMES: tuple[str, ...] = ("training", "screening", "holdout")
SPLIT_FRACTIONS: tuple[float, ...] = (0.5, 0.3, 0.2)
#: An instrument with less than this share of a period's candle intervals is reported short.
FULL_COVERAGE = 0.99


@dataclass(frozen=True)
class BasketProblem:
    """Something of a basket's sources that was skipped: ``name`` (the instrument, or the file
    name in a folder), ``source`` (as given) and ``message`` (one line)."""

    name: str
    source: str
    message: str

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"

    def to_dict(self) -> dict:
        return {"name": self.name, "source": self.source, "message": self.message}


class Basket(Mapping):
    """Ordered mapping instrument name → :class:`~distillbt.data.candles.Candles`, all of one
    ``timeframe``, with the ``problems`` met while loading (a tuple of :class:`BasketProblem`).

    Build it with :func:`load_basket`, or directly from a mapping of validated candles (an
    :class:`~distillbt.errors.InputError` when it is empty or the intervals differ).
    """

    def __init__(self, instruments: Mapping[str, Candles], *, problems=()):
        instruments = dict(instruments)
        if not instruments:
            raise InputError("a basket needs at least one instrument")
        for name, candles in instruments.items():
            if not isinstance(candles, Candles):
                raise InputError(f"basket instrument {name!r} is not validated Candles but {type(candles).__name__}")
        _check_one_timeframe(instruments)
        self._instruments = instruments
        self.problems: tuple[BasketProblem, ...] = tuple(problems)
        self.timeframe: str = next(iter(instruments.values())).timeframe

    # -- the mapping -------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Candles:
        return self._instruments[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._instruments)

    def __len__(self) -> int:
        return len(self._instruments)

    def __repr__(self) -> str:
        return f"Basket({len(self)} × {self.timeframe}: {', '.join(self)}; {len(self.problems)} problems)"

    # -- what it is ----------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._instruments)

    @property
    def single(self) -> Candles | None:
        """The one instrument of a basket of one (today's single source), else None."""
        return next(iter(self._instruments.values())) if len(self) == 1 else None

    @property
    def synthetic(self) -> bool:
        """True when any instrument is synthetic (figures on it must say so)."""
        return any(c.synthetic for c in self.values())

    @property
    def start(self) -> pd.Timestamp:
        """Open time of the basket's first candle (any instrument)."""
        return min(c.start for c in self.values())

    @property
    def end(self) -> pd.Timestamp:
        """Open time of the basket's last candle (any instrument)."""
        return max(c.end for c in self.values())

    @property
    def source(self) -> str:
        """One line naming the basket: the source of a basket of one, else its instruments."""
        if self.single is not None:
            return self.single.source
        names = list(self)
        shown = ", ".join(names[:6]) + (f", … ({len(names) - 6} more)" if len(names) > 6 else "")
        return f"basket of {len(self)} × {self.timeframe}: {shown}"

    # -- cutting --------------------------------------------------------------------------------
    def until(self, moment) -> "Basket":
        """Every instrument's candles opening before ``moment`` (UTC; exclusive); an instrument
        with none is skipped with a problem (InputError when that leaves none)."""
        stamp = _timestamp(moment, "--until")
        kept, problems = {}, list(self.problems)
        for name, candles in self.items():
            stop = int(candles.frame.index.searchsorted(stamp, side="left"))
            if stop == 0:
                message = (f"--until {moment}: no candle opens before it (the first opens "
                           f"{candles.start.isoformat()})")
                if len(self) == 1:
                    raise InputError(message)
                problems.append(BasketProblem(name, candles.source, message))
                continue
            kept[name] = candles if stop == len(candles) else candles.rows(
                slice(0, stop), source=f"{candles.source} until {stamp.isoformat()}")
        if not kept:
            raise InputError(f"--until {moment}: no instrument of the basket has a candle before it")
        return Basket(kept, problems=problems)

    def calendar_split(self, fractions=SPLIT_FRACTIONS, *, names=None,
                       full_coverage: float = FULL_COVERAGE) -> "BasketSplit":
        """ONE split of the basket's calendar into consecutive periods, by time.

        The calendar is the union of the instruments' time ranges (each from its first candle
        to its last, gaps included), counted in candle intervals — a stretch inside no
        instrument's range, such as the years between two files of different eras, is left
        out. ``fractions`` (positive, summing to 1) cut it in time order into ``names``
        (default :data:`PERIOD_NAMES` for three fractions, else ``period1``, ``period2``...);
        boundaries fall on interval boundaries.
        Every instrument then uses the candles it has in each period — a shorter history or
        gaps give it fewer, possibly none — and is reported short in a period where it has
        less than ``full_coverage`` of the period's intervals. Returns a :class:`BasketSplit`.
        """
        fractions = _fractions(fractions)
        names = _period_names(names, len(fractions))
        if not 0 < full_coverage <= 1:
            raise InputError(f"full_coverage must be in (0, 1], not {full_coverage!r}")
        step = timeframe_ms(self.timeframe) * 1_000_000
        ranges = _union((c.start.value, c.end.value + step) for c in self.values())
        lengths = [(end - start) // step for start, end in ranges]
        slots = sum(lengths)
        edges = [0, *(int(round(f * slots)) for f in np.cumsum(fractions)[:-1]), int(slots)]
        if any(b <= a for a, b in zip(edges, edges[1:])):
            raise InputError(f"the basket spans only {slots} {self.timeframe} intervals: too few to split "
                             f"into {len(fractions)} periods of {', '.join(f'{f:g}' for f in fractions)}")
        boundaries = tuple(pd.Timestamp(_slot_time(e, ranges, lengths, step), tz="UTC") for e in edges)
        expected = {name: edges[k + 1] - edges[k] for k, name in enumerate(names)}
        positions, short = {}, {}
        for instrument, candles in self.items():
            cuts = candles.frame.index.searchsorted(list(boundaries), side="left")
            positions[instrument] = {name: (int(cuts[k]), int(cuts[k + 1])) for k, name in enumerate(names)}
            reasons = []
            for k, name in enumerate(names):
                have = int(cuts[k + 1] - cuts[k])
                if have < full_coverage * expected[name]:
                    reasons.append(f"{name} {have:,} of {expected[name]:,} candles"
                                   f"{_why_short(candles, boundaries[k], boundaries[k + 1], have, step)}")
            if reasons:
                short[instrument] = reasons
        return BasketSplit(names=names, fractions=fractions, boundaries=boundaries, timeframe=self.timeframe,
                           expected=expected, positions=positions, short=short)

    # -- reporting ---------------------------------------------------------------------------
    def rows(self) -> list[dict]:
        """One plain dict per instrument: name, source, candles, first, last, gaps."""
        return [{"name": name, "source": c.source, "symbol": c.symbol, "synthetic": c.synthetic,
                 "candles": len(c), "first": c.start.isoformat(), "last": c.end.isoformat(),
                 "gaps": len(c.gaps), "missing_candles": c.missing_candles}
                for name, c in self.items()]

    def summary(self) -> dict:
        """Plain-dict summary (for printing and JSON)."""
        return {"instruments": list(self), "timeframe": self.timeframe, "synthetic": self.synthetic,
                "first": self.start.isoformat(), "last": self.end.isoformat(), "rows": self.rows(),
                "problems": [p.to_dict() for p in self.problems]}


@dataclass(frozen=True)
class BasketSplit:
    """One calendar split of a basket (:meth:`Basket.calendar_split`).

    Attributes
    ----------
    names, fractions : tuple
        The periods in time order and their shares of the calendar.
    boundaries : tuple of Timestamp
        ``len(names) + 1`` UTC times: period k is ``[boundaries[k], boundaries[k + 1])``.
    expected : dict
        Calendar intervals per period (what an instrument covering all of it without gaps has
        there; a stretch outside every instrument's range is not counted).
    positions : dict
        Instrument → period → ``(start, stop)``: the positions in the instrument's own
        ``frame`` of its candles in that period (``start == stop`` when it has none; the
        candles before ``start`` are there for warm-up).
    short : dict
        Instrument → one line per period where it has less than the full-coverage share,
        saying how many candles it has and why (starts later, ends earlier, gaps); only
        instruments short somewhere are listed.
    """

    names: tuple[str, ...]
    fractions: tuple[float, ...]
    boundaries: tuple[pd.Timestamp, ...]
    timeframe: str
    expected: dict
    positions: dict
    short: dict

    def period(self, name: str) -> tuple[pd.Timestamp, pd.Timestamp]:
        """``(start, end)`` of period ``name``, end exclusive."""
        k = self.names.index(name)
        return self.boundaries[k], self.boundaries[k + 1]

    def candles(self, instrument: str, period: str) -> int:
        """How many candles ``instrument`` has in ``period``."""
        start, stop = self.positions[instrument][period]
        return stop - start

    def covered(self, instrument: str) -> tuple[str, ...]:
        """The periods where ``instrument`` has at least one candle."""
        return tuple(p for p in self.names if self.candles(instrument, p) > 0)

    def lines(self) -> list[str]:
        """The periods, one line each (name, share, first → end, intervals)."""
        out = []
        for k, name in enumerate(self.names):
            start, end = self.boundaries[k], self.boundaries[k + 1]
            out.append(f"{name + ':':<11} {start.isoformat()} → {end.isoformat()} "
                       f"({self.fractions[k]:.0%}, {self.expected[name]:,} {self.timeframe} intervals)")
        return out

    def to_dict(self) -> dict:
        return {
            "periods": {name: {"start": self.boundaries[k].isoformat(), "end": self.boundaries[k + 1].isoformat(),
                               "fraction": self.fractions[k], "intervals": self.expected[name]}
                        for k, name in enumerate(self.names)},
            "positions": {i: {p: list(v) for p, v in periods.items()} for i, periods in self.positions.items()},
            "short": dict(self.short),
        }


def load_basket(
    sources=SAMPLE,
    *,
    cache_dir=None,
    sample_bars: int = 100_000,
    sample_timeframe: str = "15m",
    seed: int = 7,
    sample_instruments: int | None = None,
    timeframe: str | None = None,
    basket_timeframe: str | None = None,
    min_candles: int = MIN_CANDLES,
) -> Basket:
    """Load a :class:`Basket` from ``sources`` (one source, or a list; the module docstring
    lists the spellings).

    ``sample_bars``, ``sample_timeframe``, ``seed`` and ``sample_instruments`` shape the sample
    market (N ≥ 2 instruments: a correlated basket; ``seed`` is the factor's and instrument i
    uses the i-th child seed); ``timeframe`` declares candle files' interval instead of
    inferring it; ``basket_timeframe`` resamples every instrument to that interval (those it
    cannot be a whole multiple of are skipped); ``min_candles``: fewer candles skip an
    instrument (not the lone instrument of a basket of one, which is passed on as today).
    """
    given = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    given = [str(s) for s in given] or [SAMPLE]
    if sample_instruments is not None:
        _check_count("sample_instruments", sample_instruments, minimum=1)
    _check_count("min_candles", min_candles, minimum=1)
    if basket_timeframe is not None:
        timeframe_ms(basket_timeframe)

    found: list[tuple[str, str, Candles]] = []  # (name, source, candles), in the order given
    problems: list[BasketProblem] = []
    errors: list[Exception] = []  # what the sources raised: a lone failing source re-raises its own
    for source in given:
        if source == SAMPLE:
            found += [(name, source, c) for name, c in _sample(sample_instruments, bars=sample_bars,
                                                                timeframe=sample_timeframe, seed=seed)]
            continue
        try:
            parsed = exchange_source(source)
        except InputError as error:
            problems.append(BasketProblem(source, source, first_line(error)))
            errors.append(error)
            continue
        if parsed is not None:
            exchange, symbols, tf = parsed
            for symbol in symbols:
                try:
                    found.append((symbol, source, load_candles(f"{exchange}:{symbol}:{tf}", cache_dir=cache_dir)))
                except InputError as error:
                    problems.append(BasketProblem(symbol, source, first_line(error)))
                    errors.append(error)
        elif Path(source).is_dir():
            members, skipped = _folder(Path(source), declared=timeframe, resampling=basket_timeframe is not None)
            found += [(name, source, c) for name, c in members]
            problems += skipped
        else:
            try:
                candles = load_candles(source, cache_dir=cache_dir, timeframe=timeframe)
            except InputError as error:
                problems.append(BasketProblem(Path(source).name, source, first_line(error)))
                errors.append(error)
                continue
            found.append((Path(source).stem, source, candles))

    if basket_timeframe is not None:
        found = _resampled(found, basket_timeframe, problems)
    if len(found) > 1:
        kept = []
        for name, source, candles in found:
            if len(candles) < min_candles:
                problems.append(BasketProblem(name, source, f"{len(candles):,} candles, fewer than the {min_candles:,} "
                                                            "a basket instrument needs"))
            else:
                kept.append((name, source, candles))
        found = kept
    if not found:
        if len(given) == 1 and len(errors) == 1 and len(problems) == 1:
            raise errors[0]  # a basket of one: the error that source gives alone
        shown = "; ".join(str(p) for p in problems[:3]) + ("; …" if len(problems) > 3 else "")
        raise InputError(f"no usable instrument in {', '.join(given)} ({len(problems)} skipped: {shown})")

    instruments: dict[str, Candles] = {}
    for name, _source, candles in found:
        instruments[_unique(name, instruments)] = candles
    return Basket(instruments, problems=problems)


# -- the parts ------------------------------------------------------------------------------
def _sample(instruments, *, bars, timeframe, seed) -> list[tuple[str, Candles]]:
    if not instruments or instruments == 1:
        return [(SAMPLE, load_candles(SAMPLE, sample_bars=bars, sample_timeframe=timeframe, seed=seed))]
    from .sample import sample_basket

    return [(c.symbol.split("/")[0], c) for c in sample_basket(instruments, bars=bars, timeframe=timeframe, seed=seed)]


def _folder(folder: Path, *, declared, resampling: bool):
    """Every candle file of ``folder`` as ``(stem, candles)``, and the files skipped."""
    from .files import SUPPORTED_SUFFIXES, load_file

    members, problems = [], []
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    for path in entries:
        if path.is_dir():
            problems.append(BasketProblem(path.name, str(folder), "a folder: not read (one instrument per file)"))
            continue
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            problems.append(BasketProblem(path.name, str(folder),
                                          f"not a candle file (reads {' '.join(SUPPORTED_SUFFIXES)})"))
            continue
        try:
            members.append((path.stem, path.name, load_file(path, timeframe=declared)))
        except InputError as error:
            problems.append(BasketProblem(path.name, str(folder), first_line(error)))
    if not entries:
        problems.append(BasketProblem(folder.name or str(folder), str(folder), "an empty folder: no candle files"))
    counts = Counter(c.timeframe for _, _, c in members)
    if len(counts) > 1 and not resampling:
        (main, n), (_, runner_up) = counts.most_common(2)
        if n == runner_up:
            listed = ", ".join(f"{k} × {tf}" for tf, k in counts.most_common())
            raise InputError(f"mixed timeframes in {folder}: {listed}, none the most common; keep one interval "
                             "per folder or resample them all to one (--basket-timeframe TF)")
        for _, file_name, candles in members:
            if candles.timeframe != main:
                problems.append(BasketProblem(file_name, str(folder),
                                              f"{candles.timeframe} candles, the folder's other instruments are "
                                              f"{main} (--basket-timeframe resamples them to one interval)"))
        members = [m for m in members if m[2].timeframe == main]
    return [(stem, candles) for stem, _, candles in members], problems


def _resampled(found, basket_timeframe: str, problems: list) -> list:
    from .resample import resample_candles

    out = []
    for name, source, candles in found:
        try:
            out.append((name, source, resample_candles(candles, basket_timeframe)))
        except InputError as error:
            problems.append(BasketProblem(name, source, first_line(error)))
    return out


def _check_one_timeframe(instruments: Mapping[str, Candles]) -> None:
    groups: dict[str, list[str]] = {}
    for name, candles in instruments.items():
        groups.setdefault(candles.timeframe, []).append(name)
    if len(groups) > 1:
        listed = "; ".join(f"{tf}: {', '.join(names[:3])}{', …' if len(names) > 3 else ''}"
                           for tf, names in groups.items())
        raise InputError(f"mixed timeframes in the basket ({listed}): every instrument needs the same interval "
                         "(--basket-timeframe TF resamples them to one longer interval)")


def _union(spans) -> list[tuple[int, int]]:
    """Half-open ``[start, end)`` spans merged where they overlap or touch, in time order."""
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def _slot_time(slot: int, ranges, lengths, step: int) -> int:
    """The time (ns) of calendar interval ``slot`` counted across ``ranges``; the end of the
    last range for ``slot`` = all of them."""
    for (start, _end), length in zip(ranges, lengths):
        if slot < length:
            return start + slot * step
        slot -= length
    return ranges[-1][1]


def _unique(name: str, taken) -> str:
    if name not in taken:
        return name
    k = 2
    while f"{name}#{k}" in taken:
        k += 1
    return f"{name}#{k}"


def _why_short(candles: Candles, start: pd.Timestamp, end: pd.Timestamp, have: int, step_ns: int) -> str:
    if candles.start >= end:
        return f": none yet, its history starts {candles.start.isoformat()}"
    if candles.end < start:
        return f": none, its history ends {candles.end.isoformat()}"
    parts = []
    if candles.start > start:
        parts.append(f"starts {candles.start.isoformat()}")
    if candles.end.value + step_ns < end.value:
        parts.append(f"ends {candles.end.isoformat()}")
    return f" ({', '.join(parts) or 'gaps'})"


def _fractions(fractions) -> tuple[float, ...]:
    try:
        values = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise InputError(f"fractions must be numbers, e.g. (0.5, 0.3, 0.2), not {fractions!r}") from None
    if not values or any(not math.isfinite(f) or f <= 0 for f in values) or abs(sum(values) - 1) > 1e-6:
        raise InputError(f"fractions must be positive and sum to 1, not {fractions!r}")
    return values


def _period_names(names, n: int) -> tuple[str, ...]:
    if names is None:
        return PERIOD_NAMES if n == len(PERIOD_NAMES) else tuple(f"period{k + 1}" for k in range(n))
    names = tuple(str(v) for v in names)
    if len(names) != n or len(set(names)) != n:
        raise InputError(f"need {n} distinct period names for {n} fractions, not {names!r}")
    return names


def _check_count(name: str, value, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InputError(f"{name} must be a whole number >= {minimum}, not {value!r}")


def _timestamp(moment, flag: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(moment)
    except (TypeError, ValueError):
        raise InputError(f"{flag}: {moment!r} is not a time (e.g. 2021-06-01 or 2021-06-01T12:00)") from None
    if stamp is pd.NaT:
        raise InputError(f"{flag}: {moment!r} is not a time (e.g. 2021-06-01 or 2021-06-01T12:00)")
    return stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")
