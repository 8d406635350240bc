"""distillbt: fast Backtrader strategy screening on distilled market data.

The public API, importable from here (heavy modules such as ccxt load on first use)::

    from distillbt import load_candles, sample_market, load_file, fetch_candles
"""

from ._lazy import lazy_attributes
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


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
