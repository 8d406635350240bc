"""The regime names every labeller uses, and their integer codes (positions in the names)."""

from __future__ import annotations

from ..data.sample import REGIMES

__all__ = ["REGIME_NAMES", "BULL", "BEAR", "SIDEWAYS", "VOLATILE", "CRASH"]

#: The regime names every labeller uses, in this order (same as the sample market's).
REGIME_NAMES: tuple[str, ...] = REGIMES

#: Codes of the regimes: their positions in :data:`REGIME_NAMES` (the categorical codes of the
#: labels ``predict`` returns).
BULL, BEAR, SIDEWAYS, VOLATILE, CRASH = (REGIME_NAMES.index(n) for n in
                                         ("bull", "bear", "sideways", "volatile", "crash"))
