"""The indicator-bank columns the surrogates read, computed once and shared by a batch.

Two caches: the screening period's columns (only those some configuration's tree splits on,
computed on first request) and each episode's columns per warm-up — computed from the first bar
a configuration with that warm-up was fed, so they are what its indicators saw.
"""

from __future__ import annotations

import numpy as np

from ..indicators import IndicatorBank, bank_warmup

__all__ = ["ColumnCache"]


class ColumnCache:
    """Bank columns of the screening period ``screen = (start, stop)`` of ``frame`` and of the
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
        """Columns of the screening period computed so far."""
        return len(self._screen)

    def screen_columns(self, names_used, width, positions) -> np.ndarray:
        """A ``(screening bars, width)`` float32 array with the columns ``names_used`` at
        ``positions`` (zeros elsewhere: the tree never reads them)."""
        F = np.zeros((self.stop - self.start, width), dtype=np.float32, order="F")
        for name, j in zip(names_used, positions):
            if name not in self._screen:
                lead = min(self.start, bank_warmup([name]))
                self._screen[name] = IndicatorBank([name]).transform(
                    {k: self.frame[k].to_numpy()[self.start - lead:self.stop] for k in ("high", "low", "close")}
                )[lead:, 0]
            F[:, j] = self._screen[name]
        return F

    def episode_bank(self, e, warmup, features) -> np.ndarray:
        """Episode ``e``'s columns ``features``, computed from the first bar a configuration
        with ``warmup`` bars was fed. Cached per (episode, warm-up), computed on first request."""
        columns = self._episode.setdefault((e, int(warmup)), {})
        missing = [n for n in features if n not in columns]
        if missing:
            eps = self.episodes
            r = eps.rows(e)
            sw = int(eps.warmup[e])
            w = min(int(warmup), sw)
            ohlcv = eps.ohlcv[r.start + sw - w:r.stop]
            values = IndicatorBank(missing).transform({"high": ohlcv[:, 1], "low": ohlcv[:, 2], "close": ohlcv[:, 3]})
            columns.update((n, values[w:, j]) for j, n in enumerate(missing))
        return np.column_stack([columns[n] for n in features])

    def bank_of(self, plan):
        """``e → episode e's columns`` for one configuration's plan."""
        return lambda e: self.episode_bank(e, plan.warmup, plan.features)
