"""Package attributes that load their module on first use (PEP 562)."""

from __future__ import annotations

import sys
from importlib import import_module


def lazy_attributes(package: str, where: dict, public: list):
    """``(__getattr__, __dir__)`` for ``package``: ``where`` maps a name to the (relative)
    module that defines it; the value is imported on first access and kept in the package.

    ::

        __getattr__, __dir__ = lazy_attributes(__name__, {"sample_market": ".data.sample"}, __all__)
    """

    def __getattr__(name):
        if name in where:
            value = getattr(import_module(where[name], package), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(public)

    return __getattr__, __dir__
