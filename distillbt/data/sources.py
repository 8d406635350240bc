"""One way to name a data source, across every command and the API.

``"sample"``
    the embedded sample market (synthetic; the default, needs no network);
``"bybit:SYMBOL:TIMEFRAME"``
    a series in the local cache, e.g. ``bybit:BTC/USDT:USDT:15m`` (fill it with ``fetch``);
anything else
    a candle file (CSV, Parquet, Feather).

Several instruments at once (``bybit:SYM1,SYM2:TF``, a folder of candle files, the sample
market with ``sample_instruments``) make a basket: :func:`distillbt.data.basket.load_basket`.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import CacheError, DataSourceError
from .symbols import category_of
from .cache import CacheKey, CandleCache
from .candles import Candles

__all__ = ["load_candles", "exchange_source", "SAMPLE", "EXCHANGES"]

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
    parsed = exchange_source(source)
    if parsed is not None:
        exchange, symbols, tf = parsed
        if len(symbols) > 1:
            raise DataSourceError(
                f"{source} names {len(symbols)} symbols: that is a basket, which this command does not "
                f"take; give one symbol ({exchange}:{symbols[0]}:{tf})"
            )
        symbol = symbols[0]
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
    if path.is_dir():
        raise DataSourceError(
            f"{source} is a folder: a basket of candle files (one instrument per file), which this "
            f"command does not take; give one file (see `distillbt data basket {source}`)"
        )
    from .files import load_file

    return load_file(path, timeframe=timeframe)


def exchange_source(source: str) -> tuple[str, list[str], str] | None:
    """``(exchange, symbols, timeframe)`` of a cached-series source such as
    ``bybit:BTC/USDT:USDT:15m`` or, for several symbols, ``bybit:BTC/USDT:USDT,ETH/USDT:USDT:15m``;
    None when ``source`` does not name an exchange of :data:`EXCHANGES`. Raises
    :class:`~distillbt.errors.DataSourceError` when the rest is not ``SYMBOL[,SYMBOL...]:TIMEFRAME``."""
    exchange, sep, rest = str(source).partition(":")
    if not sep or exchange not in EXCHANGES:
        return None
    listed, _, tf = rest.rpartition(":")
    symbols = [part.strip() for part in listed.split(",")]
    if not listed or not tf or not all(symbols):
        raise DataSourceError(
            f"cannot read data source {source!r}: expected {exchange}:SYMBOL:TIMEFRAME, "
            f"e.g. {exchange}:BTC/USDT:USDT:15m (or {exchange}:BTC/USDT:USDT,ETH/USDT:USDT:15m for several)"
        )
    return exchange, symbols, tf
