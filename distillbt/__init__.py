"""distillbt: fast Backtrader strategy screening on distilled market data.

The public API, importable from here (heavy modules such as ccxt load on first use)::

    from distillbt import load_candles, sample_market, load_file, fetch_candles
"""

from importlib import import_module

from .data.candles import Candles, validate_candles
from .errors import *  # noqa: F401,F403 - the exception hierarchy is public API
from .errors import __all__ as _errors_all

__version__ = "0.1.0"

# name -> module that defines it; loaded on first access so `import distillbt` stays cheap.
_LAZY = {
    "load_candles": ".data.sources",
    "sample_market": ".data.sample",
    "REGIMES": ".data.sample",
    "load_file": ".data.files",
    "fetch_candles": ".data.fetch",
    "FetchReport": ".data.fetch",
    "BybitClient": ".data.bybit",
    "CandleCache": ".data.cache",
    "CacheKey": ".data.cache",
}

__all__ = ["Candles", "validate_candles", "__version__", *_LAZY, *_errors_all]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'distillbt' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
