"""Candles: the contract, validation, files, the sample market, Bybit and the cache."""
