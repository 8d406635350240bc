"""The exception hierarchy.

Modelled on ccxt's: the class tells the caller what to do. Everything distillbt raises on
purpose is a :class:`DistillbtError`; the CLI turns those into one line on stderr and exit
code 2. ``retryable`` says whether calling again later can succeed.

::

    DistillbtError
    ├── EngineUnsupported           the bar loop asked for cannot run this strategy; Backtrader's can
    ├── InputError                  the caller's input is wrong; retrying will not help
    │   ├── DataError               candles or a data source cannot be used
    │   │   ├── CandleValidationError   a rule of the candle contract is broken (.rule, .row, .time)
    │   │   ├── DataSourceError         unknown/missing/unreadable source, unsupported format
    │   │   └── CacheError              a cache entry is missing or damaged
    │   ├── UnknownSymbolError      the exchange does not list the symbol
    │   └── UnknownTimeframeError   the exchange has no such interval
    └── ExchangeError               the exchange failed us
        ├── ExchangeRejectedError   it answered with a definite error (retryable = False)
        └── ExchangeUnavailableError  transient failures outlasted every retry (retryable = True)
"""

from __future__ import annotations

__all__ = [
    "first_line",
    "DistillbtError",
    "EngineUnsupported",
    "InputError",
    "DataError",
    "CandleValidationError",
    "DataSourceError",
    "CacheError",
    "UnknownSymbolError",
    "UnknownTimeframeError",
    "ExchangeError",
    "ExchangeRejectedError",
    "ExchangeUnavailableError",
]


class DistillbtError(Exception):
    """Base class of every error distillbt raises on purpose."""

    retryable = False


class EngineUnsupported(DistillbtError):
    """A faster bar loop than Backtrader's own (e.g. the replay of
    :mod:`distillbt.surrogate.replay`) does not reproduce something the strategy uses (named);
    the caller runs the strategy in Backtrader instead."""


class InputError(DistillbtError):
    """The input is wrong (a file, an argument, a symbol); retrying will not help."""


class DataError(InputError):
    """Candles or a data source cannot be used."""


class CandleValidationError(DataError):
    """Candles break a rule of the candle contract.

    ``rule`` names the rule (e.g. ``"high>=max(open,close)"``), ``row`` is the 0-based
    position of the first offending candle (None when the rule is about the whole input) and
    ``time`` its timestamp.
    """

    def __init__(self, message: str, *, rule: str, row: int | None = None, time=None):
        super().__init__(message)
        self.rule = rule
        self.row = row
        self.time = time


class DataSourceError(DataError):
    """A data source is unknown, missing, unreadable or in an unsupported format."""


class CacheError(DataError):
    """A cache entry is missing or damaged."""


class UnknownSymbolError(InputError):
    """The exchange does not list this symbol."""


class UnknownTimeframeError(InputError):
    """The exchange (or distillbt) has no such candle interval."""


class ExchangeError(DistillbtError):
    """The exchange failed to give us what we asked for."""


class ExchangeRejectedError(ExchangeError):
    """The exchange answered with a definite error (bad request, permission...)."""


class ExchangeUnavailableError(ExchangeError):
    """Transient failures (rate limits, timeouts, 5xx, garbled answers) outlasted the retries."""

    retryable = True


def first_line(error: BaseException, *, with_type: bool = False, limit: int | None = None) -> str:
    """An exception as one line: the first non-empty line of its message (``limit``: at most
    that many characters), prefixed by its type with ``with_type``; its type alone when the
    message is empty. The one helper for shortening an exception to its first line (the CLI
    joins every line of a message instead: its own errors are one line by construction)."""
    line = next((part.strip() for part in str(error).splitlines() if part.strip()), "")
    if limit is not None:
        line = line[:limit]
    if not line:
        return type(error).__name__
    return f"{type(error).__name__}: {line}" if with_type else line
