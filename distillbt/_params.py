"""scikit-learn's parameter protocol, once, for every estimator-like class of distillbt."""

from __future__ import annotations

import inspect

from .errors import InputError

__all__ = ["ParamsMixin"]


class ParamsMixin:
    """``get_params``/``set_params``/``repr`` from the keyword arguments of ``__init__``.

    Subclasses store each ``__init__`` argument under its own name (and do nothing else there).
    """

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's keyword arguments and their current values."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def set_params(self, **params):
        """Set constructor arguments (unknown names raise InputError); returns self."""
        known = self.get_params()
        for name, value in params.items():
            if name not in known:
                raise InputError(f"unknown parameter {name!r} for {type(self).__name__}; known: {', '.join(known)}")
            setattr(self, name, value)
        return self

    #: Show only the arguments that differ from their defaults (for classes with many options).
    _repr_changed_only = False

    def __repr__(self) -> str:
        params = self.get_params()
        if self._repr_changed_only:
            defaults = type(self)().get_params()
            params = {k: v for k, v in params.items() if v != defaults[k]}
        args = ", ".join(f"{k}={v!r}" for k, v in params.items())
        return f"{type(self).__name__}({args})"
