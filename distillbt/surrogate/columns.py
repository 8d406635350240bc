"""The columns the surrogates read, computed once and shared by a batch.

Bank columns (:mod:`distillbt.indicators`) are the same for every configuration that names
them; own-line columns (:mod:`.own_features`) belong to one configuration's plan. Two caches:
the screening period's bank columns (only those some configuration's tree splits on, computed
on first request; own-line columns there are computed per walk, never kept: a batch's would
not fit in memory) and each episode's columns per warm-up (and per configuration for own
lines) — computed from the first bar a configuration with that warm-up was fed, so they are
what its indicators saw.
"""

from __future__ import annotations

import numpy as np

from ..backtest import feed_arrays
from ..indicators import IndicatorBank, bank_warmup
from ..protective import FEED_PRICES, feed_prices
from .own_features import DATA_LINES, is_own
from .trade_state import TradeInputs

__all__ = ["ColumnCache", "frame_arrays", "plan_columns", "trade_inputs", "bar_before"]


def frame_arrays(frame, start: int, stop: int) -> dict:
    """:func:`~distillbt.backtest.feed_arrays` of ``frame``'s rows ``[start, stop)``."""
    rows = slice(start, stop)
    return feed_arrays(frame.index.asi8[rows], *(frame[k].to_numpy()[rows] for k in
                                                 ("open", "high", "low", "close", "volume")))


def plan_columns(plan, names, bank: callable, arrays: callable, lead: int = 0) -> np.ndarray:
    """``(bars, len(names))`` float32 of a plan's columns ``names``: bank ones from
    ``bank(bank names)`` (an array in that order), own-line ones computed over
    ``arrays(lead)`` (feed arrays with ``lead`` bars before the first row kept)."""
    names = list(names)
    own_j = [j for j, n in enumerate(names) if is_own(n)]
    bank_j = [j for j, n in enumerate(names) if not is_own(n)]
    parts = {}
    if bank_j:
        parts["bank"] = bank([names[j] for j in bank_j])
    if own_j:
        parts["own"] = plan.own.columns(arrays(lead), [names[j] for j in own_j])[lead:]
    n = len(next(iter(parts.values()))) if parts else 0
    out = np.empty((n, len(names)), dtype=np.float32, order="F")
    if bank_j:
        out[:, bank_j] = parts["bank"]
    if own_j:
        out[:, own_j] = parts["own"]
    return out


def trade_inputs(plan, prices, columns, lines=None, previous=None) -> TradeInputs:
    """:class:`~.trade_state.TradeInputs` of ``prices`` (open, high, low, close arrays) with
    ``columns`` (the plan's feature columns over the same bars) giving its price-unit lines
    and ``lines`` (:func:`held_lines`) the strategy's lines protective orders are priced from;
    ``previous``: the four prices of the bar before the first (None: unknown)."""
    units = {} if plan.own is None else {u: columns[:, plan.features.index(u)] for u in plan.own.unit_columns}
    return TradeInputs(*(np.asarray(p, dtype=np.float64) for p in prices), units=units, lines=lines or {},
                       previous=(np.nan,) * 4 if previous is None else tuple(float(p) for p in previous))


def bar_before(frame, start: int):
    """Open, high, low and close of ``frame``'s row ``start - 1`` (None at the first row)."""
    return None if start < 1 else tuple(frame[k].to_numpy()[start - 1] for k in DATA_LINES)


def held_lines(plan, names, arrays: callable, lead: int) -> dict:
    """The strategy's lines ``names`` (float64, by name; the feed's prices too,
    :data:`~distillbt.protective.FEED_PRICES`) over the rows :func:`plan_columns` keeps of
    ``arrays(lead)``; none asked, none computed."""
    if not names:
        return {}
    feed = arrays(lead)
    own = [n for n in names if n not in FEED_PRICES]
    out = {n: v[lead:] for n, v in feed_prices(feed, [n for n in names if n in FEED_PRICES]).items()}
    if own:
        out.update((k, v[lead:]) for k, v in plan.own.lines(feed, own).items())
    return out


def period_lines(plan, names, frame, start: int, stop: int) -> dict:
    """:func:`held_lines` over rows ``[start, stop)`` of ``frame``, computed from as far back
    as the plan's own lines need to converge."""
    lags = [FEED_PRICES[n][1] for n in names if n in FEED_PRICES]
    lead = min(start, max([plan.own.converge if len(lags) < len(names) else 0, *lags]))
    return held_lines(plan, names, lambda lead_: frame_arrays(frame, start - lead_, stop), lead)


class ColumnCache:
    """Columns of the screening period ``screen = (start, stop)`` of ``frame`` and of the
    ``episodes`` (replace :attr:`episodes` when they are extended: earlier columns stay valid,
    episode indices do not change)."""

    def __init__(self, frame, screen: tuple[int, int], episodes):
        self.frame = frame
        self.start, self.stop = (int(x) for x in screen)
        self.episodes = episodes
        self._screen: dict = {}
        self._episode: dict = {}

    @property
    def screen_size(self) -> int:
        """Bank columns of the screening period computed so far."""
        return len(self._screen)

    def _bank_column(self, name) -> np.ndarray:
        if name not in self._screen:
            lead = min(self.start, bank_warmup([name]))
            self._screen[name] = IndicatorBank([name]).transform(
                {k: self.frame[k].to_numpy()[self.start - lead:self.stop] for k in ("high", "low", "close")}
            )[lead:, 0]
        return self._screen[name]

    def screen_columns_of(self, plan):
        """``(names_used, width, positions) → (screening bars, width)`` float32 array with
        ``plan``'s columns ``names_used`` at ``positions`` (zeros elsewhere: the tree never
        reads them)."""
        def screen_columns(names_used, width, positions) -> np.ndarray:
            F = np.zeros((self.stop - self.start, width), dtype=np.float32, order="F")
            names_used, positions = list(names_used), list(positions)
            own = [(n, j) for n, j in zip(names_used, positions) if is_own(n)]
            for name, j in zip(names_used, positions):
                if not is_own(name):
                    F[:, j] = self._bank_column(name)
            if own:
                lead = min(self.start, plan.own.converge)
                values = plan.own.columns(frame_arrays(self.frame, self.start - lead, self.stop), [n for n, _ in own])
                F[:, [j for _, j in own]] = values[lead:]
            return F
        return screen_columns

    def episode_bank(self, e, plan) -> np.ndarray:
        """Episode ``e``'s columns of ``plan``, computed from the first bar a configuration
        with its warm-up was fed. Cached per (episode, warm-up) — and configuration, for own
        lines —, computed on first request."""
        eps, warmup = self.episodes, int(plan.warmup)
        r = eps.rows(e)
        sw = int(eps.warmup[e])
        w = min(warmup, sw)
        rows = slice(r.start + sw - w, r.stop)
        bank_columns = self._episode.setdefault((e, warmup), {})

        def bank(names):
            missing = [n for n in names if n not in bank_columns]
            if missing:
                ohlcv = eps.ohlcv[rows]
                values = IndicatorBank(missing).transform({"high": ohlcv[:, 1], "low": ohlcv[:, 2],
                                                           "close": ohlcv[:, 3]})
                bank_columns.update((n, values[w:, j]) for j, n in enumerate(missing))
            return np.column_stack([bank_columns[n] for n in names])

        if plan.own is None:
            return bank(plan.features)
        key = (e, warmup, id(plan))
        if key not in self._episode:
            self._episode[key] = plan_columns(plan, plan.features, bank,
                                              lambda _lead: feed_arrays(eps.time_ns[rows], *eps.ohlcv[rows].T), w)
        return self._episode[key]

    def forget(self, plan) -> None:
        """Drop the episode columns cached for ``plan``'s own lines (a worker that fits one
        configuration after another keeps only the bank's, which they share)."""
        for key in [k for k in self._episode if len(k) == 3 and k[2] == id(plan)]:
            del self._episode[key]

    def trade_of(self, plan, lines=()):
        """``e → episode e's`` :class:`~.trade_state.TradeInputs` over its scored bars (with
        the strategy's ``lines``, by name)."""
        def inputs(e):
            eps = self.episodes
            r, sw = eps.rows(e), int(eps.warmup[e])
            w = min(int(plan.warmup), sw)
            ohlcv = eps.ohlcv[r.start + sw:r.stop]
            rows = slice(r.start + sw - w, r.stop)
            return trade_inputs(plan, ohlcv[:, :4].T, self.episode_bank(e, plan), held_lines(
                plan, lines, lambda _lead: feed_arrays(eps.time_ns[rows], *eps.ohlcv[rows].T), w),
                previous=eps.ohlcv[r.start + sw - 1, :4] if sw else None)
        return inputs

    def screen_trade_of(self, plan, lines=()):
        """``() →`` the screening period's :class:`~.trade_state.TradeInputs` for ``plan``
        (with the strategy's ``lines``, by name)."""
        def inputs():
            units = plan.own.unit_columns if plan.own is not None else []
            width = len(plan.features)
            columns = self.screen_columns_of(plan)(units, width, [plan.features.index(u) for u in units])
            prices = [self.frame[k].to_numpy()[self.start:self.stop] for k in ("open", "high", "low", "close")]
            return trade_inputs(plan, prices, columns, period_lines(plan, lines, self.frame, self.start, self.stop),
                                previous=bar_before(self.frame, self.start))
        return inputs

    def bank_of(self, plan):
        """``e → episode e's columns`` for one configuration's plan."""
        return lambda e: self.episode_bank(e, plan)
