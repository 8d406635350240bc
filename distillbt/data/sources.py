"""One way to name a data source, across every command and the API.

``"sample"``
    the embedded sample market (synthetic; the default, needs no network);
``"bybit:SYMBOL:TIMEFRAME"``
    a series in the local cache, e.g. ``bybit:BTC/USDT:USDT:15m`` (fill it with ``fetch``);
anything else
    a candle file (CSV, Parquet, Feather).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import CacheError, DataSourceError
from .symbols import category_of
from .cache import CacheKey, CandleCache
from .candles import Candles

__all__ = ["load_candles", "SAMPLE", "EXCHANGES"]

SAMPLE = "sample"
#: Exchanges whose cached series can be named as ``<exchange>:SYMBOL:TIMEFRAME``.
EXCHANGES = ("bybit",)


def load_candles(
    source: str = SAMPLE,
    *,
    cache_dir=None,
    sample_bars: int = 100_000,
    sample_timeframe: str = "15m",
    seed: int = 7,
    timeframe: str | None = None,
) -> Candles:
    """Load validated candles from ``source`` (see the module docstring for the spellings).

    ``sample_bars``, ``sample_timeframe`` and ``seed`` shape the sample market; ``timeframe``
    declares a file's interval instead of inferring it. Raises
    :class:`~distillbt.errors.DataError` subclasses naming what is wrong.
    """
    source = str(source)
    if source == SAMPLE:
        from .sample import sample_market

        return sample_market(bars=sample_bars, timeframe=sample_timeframe, seed=seed)
    exchange, sep, rest = source.partition(":")
    if sep and exchange in EXCHANGES:
        symbol, _, tf = rest.rpartition(":")
        if not symbol or not tf:
            raise DataSourceError(
                f"cannot read data source {source!r}: expected {exchange}:SYMBOL:TIMEFRAME, "
                f"e.g. {exchange}:BTC/USDT:USDT:15m"
            )
        key = CacheKey(exchange, category_of(symbol), symbol, tf)
        entry = CandleCache(cache_dir).read(key)
        if entry is None or len(entry.candles) == 0:
            raise CacheError(
                f"{source} is not cached: run `distillbt fetch --symbol {symbol} --timeframe {tf} "
                f"--since YYYY-MM-DD` first (or see `distillbt data list`)"
            )
        return entry.candles
    path = Path(source)
    if not path.exists():
        raise DataSourceError(
            f"no such data source {source!r}: use 'sample', a candle file (CSV/Parquet/Feather) "
            f"or {EXCHANGES[0]}:SYMBOL:TIMEFRAME"
        )
    from .files import load_file

    return load_file(path, timeframe=timeframe)
