"""ccxt unified symbols: what they say without asking an exchange."""

from __future__ import annotations

from ..errors import UnknownSymbolError

__all__ = ["category_of"]


def category_of(symbol: str) -> str:
    """Bybit category of a ccxt unified symbol.

    ``BTC/USDT`` → ``spot``, ``BTC/USDT:USDT`` → ``linear`` (settled in the quote currency),
    ``BTC/USD:BTC`` → ``inverse`` (settled in the base currency).
    """
    pair, _, settle = symbol.partition(":")
    base, slash, quote = pair.partition("/")
    if not (base and slash and quote) or "-" in settle:
        raise UnknownSymbolError(
            f"unknown symbol {symbol!r}: use a ccxt unified symbol, e.g. BTC/USDT (spot), "
            "BTC/USDT:USDT (linear), BTC/USD:BTC (inverse)"
        )
    if not settle:
        return "spot"
    return "linear" if settle == quote else "inverse"
