"""Candle intervals: the names distillbt accepts and their lengths."""

from __future__ import annotations

import re

from ..errors import UnknownTimeframeError

__all__ = ["TIMEFRAMES", "timeframe_ms", "timeframe_from_ms"]

_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}

#: Every interval Bybit's v5 kline endpoint serves, shortest first.
TIMEFRAMES: tuple[str, ...] = (
    "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d", "1w",
)


def timeframe_ms(timeframe: str) -> int:
    """Length of a candle interval such as ``"15m"`` or ``"4h"`` in milliseconds."""
    match = re.fullmatch(r"(\d+)([smhdw])", str(timeframe).strip())
    if not match or int(match.group(1)) == 0:
        raise UnknownTimeframeError(
            f"unknown timeframe {timeframe!r}: expected a number and a unit, e.g. 1m, 15m, 4h, 1d"
        )
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def timeframe_from_ms(ms: int) -> str:
    """The shortest name for an interval of ``ms`` milliseconds (``900000`` → ``"15m"``)."""
    for unit in ("w", "d", "h", "m", "s"):
        if ms % _UNIT_MS[unit] == 0:
            return f"{ms // _UNIT_MS[unit]}{unit}"
    return f"{ms}ms"
