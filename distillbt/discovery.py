"""Find the Backtrader strategies in a folder of ``.py`` files and expand their grids.

::

    found = discover("strategies/")
    found.strategies   # [StrategySpec(name='SmaCross', module='distillbt_user_sma_cross_…', …)]
    found.errors       # [DiscoveryProblem(file='broken.py', message="ModuleNotFoundError: …")]
    configs = found.configurations()   # every grid combination of every strategy, in order
    configs[0].name    # 'SmaCross(fast=5, slow=50)'
    configs[0].strategy.cls   # the class, imported on first use in whichever process asks

What is discovered
------------------
Every ``bt.Strategy`` subclass *defined* in a ``.py`` file directly inside the folder (classes
a file imports from elsewhere are skipped, and so are files whose name starts with ``_``, which
are free to hold shared helpers). Files are read in name order, classes in definition order.
A file that fails to import (syntax error, missing package, an exception at import time) is
reported in :attr:`Discovery.errors` with the first line of its error, and so is a strategy
whose ``grid`` is invalid; the other files and strategies are still discovered.

How files are loaded
--------------------
Each file is executed as a module under a name that is unique and stable:
``distillbt_user_<stem>_<hash>``, the hash taken over the file's absolute path and its
content. The module is registered in ``sys.modules`` *before* it runs, because Backtrader looks
a strategy's module up there (a bare ``KeyError`` otherwise). The folder is on ``sys.path``
while a file runs, so ``from _helpers import x`` works. Because the name is stable, a worker
process (joblib/loky, Dask) can import the class from ``(module, file, class name)`` alone:
a :class:`StrategySpec` pickles as those three strings, never as the class itself — a class
pickled by value loses Backtrader's metaclass parameters. Hashing the content too means a file
edited between two batches gets a new module name, so long-lived workers cannot run a stale
copy.

Grids
-----
An optional class attribute ``grid`` maps parameter names to lists of values; the
configurations are the Cartesian product, the first key varying slowest, named like
``SmaCross(fast=10, slow=50)`` (parameters in grid order). Without a grid a strategy has one
configuration, its defaults, named by the class name alone. Grid keys must be parameters of
the strategy.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import itertools
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import backtrader as bt

from .errors import InputError, first_line

__all__ = [
    "StrategyError",
    "StrategySpec",
    "Configuration",
    "DiscoveryProblem",
    "Discovery",
    "discover",
    "load_strategy_file",
    "expand_grid",
    "configuration_name",
]

_MODULE_PREFIX = "distillbt_user_"


class StrategyError(InputError):
    """A strategy folder, file, class or grid cannot be used."""


@dataclass(frozen=True)
class StrategySpec:
    """Where a strategy class lives, so that any process can import it.

    Attributes
    ----------
    name : str
        The class name.
    module : str
        The module name it is registered under in ``sys.modules``.
    file : str or None
        Absolute path of the file the module is loaded from; None for an ordinary importable
        module (``import_module(module)`` finds it).
    """

    name: str
    module: str
    file: str | None = None

    @property
    def cls(self) -> type[bt.Strategy]:
        """The strategy class; imports its module (by file path when needed) on first use."""
        module = sys.modules.get(self.module)
        if module is None:
            try:
                if self.file is None:
                    module = importlib.import_module(self.module)
                else:
                    module = _exec_file(Path(self.file), self.module)
            except Exception as exc:
                where = self.file or self.module
                raise StrategyError(f"cannot import {where}: {_first_line(exc)}") from None
        cls = getattr(module, self.name, None)
        if not (isinstance(cls, type) and issubclass(cls, bt.Strategy)):
            raise StrategyError(f"{self.module} has no Backtrader strategy named {self.name!r}")
        return cls

    @classmethod
    def from_class(cls, strategy: type[bt.Strategy]) -> StrategySpec:
        """The spec of a class defined in an importable module or a discovered file.

        Raises :class:`StrategyError` for a class defined in ``__main__`` (a script or a
        notebook): worker processes cannot import it; put it in a ``.py`` file instead.
        """
        if not (isinstance(strategy, type) and issubclass(strategy, bt.Strategy)):
            raise StrategyError(f"not a Backtrader strategy class: {strategy!r}")
        module = strategy.__module__
        if module == "__main__":
            raise StrategyError(
                f"{strategy.__name__} is defined in __main__, which worker processes cannot "
                f"import; put it in a .py file and discover() it"
            )
        file = None
        if module.startswith(_MODULE_PREFIX):
            file = getattr(sys.modules.get(module), "__file__", None)
        return cls(name=strategy.__name__, module=module, file=file)


@dataclass(frozen=True)
class Configuration:
    """One strategy with one set of parameters (the rest keep their defaults)."""

    strategy: StrategySpec
    params: dict
    name: str


@dataclass(frozen=True)
class DiscoveryProblem:
    """A file (or a strategy in it) that could not be used, with a one-line reason."""

    file: str
    message: str


@dataclass
class Discovery:
    """What :func:`discover` found in a folder."""

    folder: str
    strategies: list[StrategySpec] = field(default_factory=list)
    errors: list[DiscoveryProblem] = field(default_factory=list)

    def configurations(self) -> list[Configuration]:
        """Every configuration of every strategy (grids expanded), in discovery order."""
        return [config for spec in self.strategies for config in expand_grid(spec)]


def discover(folder) -> Discovery:
    """Import every ``.py`` file in ``folder`` and collect the strategies defined there.

    Returns a :class:`Discovery`. Files that fail to import and strategies with an invalid
    ``grid`` are reported in ``.errors`` and the rest goes on. Raises :class:`StrategyError`
    when the folder is missing, holds no ``.py`` file (other than ``_``-prefixed ones), or
    no strategy was found in it.
    """
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise StrategyError(f"strategy folder not found: {folder}")
    files = sorted(p for p in path.glob("*.py") if not p.name.startswith("_") and p.is_file())
    if not files:
        raise StrategyError(f"no .py files in strategy folder {folder}")

    found = Discovery(folder=str(path.resolve()))
    for file in files:
        try:
            module = load_strategy_file(file)
        except StrategyError as exc:
            found.errors.append(DiscoveryProblem(file.name, str(exc)))
            continue
        for name, obj in vars(module).items():
            if not _defined_strategy(obj, module.__name__):
                continue
            spec = StrategySpec(name=name, module=module.__name__, file=module.__file__)
            try:
                _check_grid(obj)
            except StrategyError as exc:
                found.errors.append(DiscoveryProblem(file.name, str(exc)))
                continue
            found.strategies.append(spec)

    if not found.strategies:
        detail = f"{len(files)} file(s) read"
        if found.errors:
            first = found.errors[0]
            detail += f", {len(found.errors)} failed (first: {first.file}: {first.message})"
        raise StrategyError(f"no Backtrader strategies found in {folder} ({detail})")
    return found


def load_strategy_file(file) -> object:
    """Execute one strategy file as a module under its stable name and return the module.

    The module is (re)executed every time, so an edited file is picked up. Raises
    :class:`StrategyError` with the first line of whatever the file raised.
    """
    path = Path(file).expanduser().resolve()
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise StrategyError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return _exec_file(path, _module_name(path, source))
    except Exception as exc:
        raise StrategyError(_first_line(exc)) from None


def expand_grid(spec: StrategySpec) -> list[Configuration]:
    """The configurations of one strategy: one per combination of its ``grid``.

    Raises :class:`StrategyError` naming the offending key for a grid that is not a dict of
    non-empty lists of the strategy's parameters.
    """
    cls = spec.cls
    grid = _check_grid(cls)
    if not grid:
        return [Configuration(strategy=spec, params={}, name=spec.name)]
    keys = list(grid)
    configs = []
    for values in itertools.product(*(grid[key] for key in keys)):
        params = dict(zip(keys, values))
        configs.append(Configuration(strategy=spec, params=params,
                                     name=configuration_name(spec.name, params)))
    return configs


def configuration_name(strategy: str, params: Mapping) -> str:
    """``SmaCross(fast=10, slow=50)``: the class name and the parameters in the given order."""
    if not params:
        return strategy
    inner = ", ".join(f"{key}={_format_value(value)}" for key, value in params.items())
    return f"{strategy}({inner})"


def strategy_params(cls: type[bt.Strategy]) -> tuple[str, ...]:
    """The names of a strategy's parameters."""
    return tuple(cls.params._getkeys())


def _format_value(value) -> str:
    if isinstance(value, str):
        return repr(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars print as plain numbers
        value = value.item()
    return str(value)


def _check_grid(cls: type[bt.Strategy]) -> dict:
    grid = getattr(cls, "grid", None)
    if grid is None:
        return {}
    name = cls.__name__
    if not isinstance(grid, Mapping):
        raise StrategyError(f"{name}.grid must be a dict of lists, not {type(grid).__name__}")
    known = strategy_params(cls)
    for key, values in grid.items():
        if key not in known:
            raise StrategyError(
                f"{name}.grid: {key!r} is not a parameter of {name} "
                f"(its parameters: {', '.join(known) or 'none'})"
            )
        if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or not len(values):
            raise StrategyError(f"{name}.grid[{key!r}] must be a non-empty list of values")
    return {key: list(values) for key, values in grid.items()}


def _defined_strategy(obj, module_name: str) -> bool:
    return (isinstance(obj, type) and issubclass(obj, bt.Strategy)
            and obj.__module__ == module_name)


def _module_name(path: Path, source: bytes) -> str:
    stem = re.sub(r"\W", "_", path.stem)
    digest = hashlib.sha1(str(path).encode() + b"\0" + source).hexdigest()[:12]
    return f"{_MODULE_PREFIX}{stem}_{digest}"


def _exec_file(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs: Backtrader's metaclass looks the module up in sys.modules.
    sys.modules[name] = module
    folder = str(path.parent)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        # Remove our entry only (the module may have changed sys.path itself).
        try:
            sys.path.remove(folder)
        except ValueError:
            pass
    return module


def _first_line(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError) and exc.lineno is not None:
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    return first_line(exc, with_type=True)
