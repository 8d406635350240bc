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

Choosing configurations (like backtesting.py's ``optimize(constraint=…, max_tries=…)``)
------------------------------------------------------------------------------------------
::

    class SmaCross(bt.Strategy):
        params = (("fast", 10), ("slow", 50))
        grid = {"fast": [5, 10, 20, 50], "slow": [20, 50, 100]}
        constraint = staticmethod(lambda p: p.fast < p.slow)   # a plain lambda works too

    found = discover("strategies/", grid={"SmaCross": {"fast": range(5, 55, 5)}},
                     sample_configs=20, seed=1)
    found.configurations()      # SmaCross(fast=…, slow=…) with fast < slow, 20 drawn at random
    found.selection_summary()   # {"constraint_dropped": {"SmaCross": 8}, …}

In this order, per strategy class:

1. **grid overrides** (``discover(grid=…)``, ``screen --grid``): ``{class name: {param:
   values}}`` (or ``{"Class.param": values}``) replaces that parameter's values in the class's
   ``grid``, or adds the parameter (last in the name); every class of that name is affected.
   An unknown class or parameter, or an empty list, raises :class:`StrategyError`.
2. **constraint**: an optional class attribute ``constraint``, a function of the
   configuration's parameters as an attribute object (``p.fast``; its defaults included, so
   ``p.slow`` works without ``slow`` in the grid; ``p["fast"]`` too) — a ``staticmethod``, a
   plain function or lambda (read off the class, so never bound) or a ``classmethod``.
   Configurations for which it returns false are dropped before anything runs
   (``constraint_dropped``). A constraint that raises makes that strategy a problem in
   :attr:`Discovery.errors` (one line naming it and the configuration); the rest goes on.
3. **sampling** (``sample_configs=N``, ``screen --sample-configs N``): a strategy with more
   than N configurations left keeps N of them drawn at random (uniformly, without
   replacement, kept in grid order), seeded by ``seed`` and the class name, so the draw of
   one strategy does not change when other files are added.

The choice is made once per :class:`Discovery` (:meth:`Discovery.select`), the first time its
configurations are asked for; :meth:`Discovery.selection_summary` gives the counts the screen
puts in its summary. :class:`StrategyFolder` holds a folder and these options without
importing anything yet, so that :func:`distillbt.screen.screen` can import the files inside
its capture of what strategies print.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import itertools
import os
import random
import re
import sys
from collections.abc import Iterable, Mapping
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
    "Selection",
    "StrategyFolder",
    "ConstraintParams",
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


@dataclass(frozen=True)
class Selection:
    """The configurations :meth:`Discovery.select` chose, and how many were left out.

    Attributes
    ----------
    configurations : list of Configuration
        What is screened, in discovery order (each strategy's in grid order).
    constraint_dropped : dict
        Class name → configurations its ``constraint`` dropped (strategies with a constraint
        only; 0 when it kept them all).
    before_sampling : int
        Configurations left after the constraints, before ``sample_configs`` drew from them.
    sampled : int or None
        Configurations kept after the draw; None when nothing was drawn (no ``sample_configs``).
    """

    configurations: list
    constraint_dropped: dict
    before_sampling: int
    sampled: int | None = None


@dataclass
class Discovery:
    """What :func:`discover` found in a folder, and how its configurations are chosen
    (``grid`` overrides, ``sample_configs`` and ``seed``; module docstring)."""

    folder: str
    strategies: list[StrategySpec] = field(default_factory=list)
    errors: list[DiscoveryProblem] = field(default_factory=list)
    #: Class name → parameter → values, replacing or adding to each class's ``grid``.
    grid: dict = field(default_factory=dict)
    #: At most this many configurations per strategy, drawn at random (None: all).
    sample_configs: int | None = None
    seed: int = 0
    _selection: Selection | None = field(default=None, init=False, repr=False, compare=False)

    def configurations(self) -> list[Configuration]:
        """Every chosen configuration of every strategy (grids expanded and overridden,
        constraints applied, sampled), in discovery order (:meth:`select`)."""
        return list(self.select().configurations)

    def select(self) -> Selection:
        """The configurations and the counts of those left out; computed once (the strategies'
        constraints run then). A strategy whose ``grid`` is invalid or whose ``constraint``
        raises gets no configuration and a :class:`DiscoveryProblem` in :attr:`errors`."""
        if self._selection is not None:
            return self._selection
        chosen, dropped, before = [], {}, 0
        for spec in self.strategies:
            try:
                configs, n_dropped = _constrained(spec, self.grid.get(spec.name))
            except StrategyError as exc:
                self.errors.append(DiscoveryProblem(Path(spec.file).name if spec.file else spec.module, str(exc)))
                continue
            if n_dropped is not None:
                dropped[spec.name] = dropped.get(spec.name, 0) + n_dropped
            before += len(configs)
            if self.sample_configs is not None and len(configs) > self.sample_configs:
                # seeded by the class name too: one strategy's draw ignores the other files
                rng = random.Random(f"{self.seed}:{spec.name}")
                configs = [configs[i] for i in sorted(rng.sample(range(len(configs)), self.sample_configs))]
            chosen += configs
        sampled = len(chosen) if self.sample_configs is not None else None
        self._selection = Selection(chosen, dropped, before, sampled)
        return self._selection

    def selection_summary(self) -> dict:
        """What the screen's summary says about the choice: ``constraint_dropped`` (class →
        count), ``grid_overrides`` (class → parameter → values), ``sample_configs``,
        ``configurations_before_sampling`` and ``sampled_configurations`` (None without
        ``sample_configs``)."""
        selection = self.select()
        return {"constraint_dropped": dict(selection.constraint_dropped),
                "grid_overrides": {name: {key: list(values) for key, values in params.items()}
                                   for name, params in self.grid.items()},
                "sample_configs": self.sample_configs,
                "configurations_before_sampling": selection.before_sampling,
                "sampled_configurations": selection.sampled}


@dataclass(frozen=True)
class StrategyFolder:
    """A strategy folder and how its configurations are chosen, not discovered yet.

    ``screen(StrategyFolder("strategies/", grid=…, sample_configs=20), candles)`` discovers it
    where the screen imports strategy files (inside its capture of what they print). Its
    fields are :func:`discover`'s arguments; :meth:`discover` runs it; ``str()`` is the path.
    """

    path: str | os.PathLike
    grid: Mapping | None = None
    sample_configs: int | None = None
    seed: int | None = None

    def discover(self) -> Discovery:
        """:func:`discover` with these options."""
        return discover(self.path, grid=self.grid, sample_configs=self.sample_configs, seed=self.seed)

    def __str__(self) -> str:
        return str(self.path)


def discover(folder, *, grid: Mapping | None = None, sample_configs: int | None = None,
             seed: int | None = None) -> Discovery:
    """Import every ``.py`` file in ``folder`` and collect the strategies defined there.

    Returns a :class:`Discovery`. Files that fail to import and strategies with an invalid
    ``grid`` or a ``constraint`` that is not callable are reported in ``.errors`` and the rest
    goes on. Raises :class:`StrategyError` when the folder is missing, holds no ``.py`` file
    (other than ``_``-prefixed ones), or no strategy was found in it.

    ``grid``: overrides of the classes' grids, ``{class name: {param: values}}`` or
    ``{"Class.param": values}`` (values: any non-empty iterable, e.g. ``range(5, 55, 5)``);
    an unknown class or parameter or an empty list raises :class:`StrategyError`.
    ``sample_configs``: keep at most that many configurations per strategy, drawn at random
    (seeded by ``seed``, default 0) after the constraints. ``folder`` may be a :class:`StrategyFolder`
    (its options are used where these are not given). See the module docstring.
    """
    if isinstance(folder, StrategyFolder):
        grid = folder.grid if grid is None else grid
        sample_configs = folder.sample_configs if sample_configs is None else sample_configs
        seed = folder.seed if seed is None else seed
        folder = folder.path
    if sample_configs is not None and (isinstance(sample_configs, bool) or not isinstance(sample_configs, int)
                                       or sample_configs < 1):
        raise StrategyError(f"--sample-configs must be a whole number of at least 1, not {sample_configs!r}")
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
                _constraint_of(obj)
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
    found.grid = _check_overrides(grid, found)
    found.sample_configs, found.seed = sample_configs, int(seed or 0)
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


def expand_grid(spec: StrategySpec, overrides: Mapping | None = None) -> list[Configuration]:
    """The configurations of one strategy: one per combination of its ``grid`` (with
    ``overrides``, param → values, replacing or adding parameters; no constraint applied).

    Raises :class:`StrategyError` naming the offending key for a grid that is not a dict of
    non-empty lists of the strategy's parameters.
    """
    keys, combos = _combinations(spec.cls, overrides)
    return [_configuration(spec, keys, combo) for combo in combos]


def _combinations(cls, overrides) -> tuple[list, list]:
    grid = _check_grid(cls)
    grid.update(overrides or {})
    keys = list(grid)
    return keys, list(itertools.product(*(grid[key] for key in keys)))


def _configuration(spec: StrategySpec, keys: list, combo: tuple) -> Configuration:
    params = dict(zip(keys, combo))
    return Configuration(strategy=spec, params=params, name=configuration_name(spec.name, params))


def _constrained(spec: StrategySpec, overrides) -> tuple[list[Configuration], int | None]:
    """The strategy's configurations its ``constraint`` keeps, and how many it dropped (None
    without a constraint); :class:`StrategyError` naming the strategy when it raises."""
    cls = spec.cls
    keys, combos = _combinations(cls, overrides)
    constraint = _constraint_of(cls)
    if constraint is None:
        return [_configuration(spec, keys, combo) for combo in combos], None
    defaults = dict(cls.params._getitems())
    kept = []
    for combo in combos:
        params = dict(zip(keys, combo))
        try:
            keep = bool(constraint(ConstraintParams(spec.name, {**defaults, **params})))
        except Exception as exc:  # noqa: BLE001 - the user's code: one line, the batch goes on
            raise StrategyError(f"{spec.name}.constraint raised on {configuration_name(spec.name, params)}: "
                                f"{_first_line(exc)}") from None
        if keep:
            kept.append(_configuration(spec, keys, combo))
    return kept, len(combos) - len(kept)


class ConstraintParams:
    """What a strategy's ``constraint`` receives: a configuration's parameters (its defaults
    overlaid with the grid's values) as attributes, ``p.fast``, or items, ``p["fast"]``."""

    __slots__ = ("_strategy", "_values")

    def __init__(self, strategy: str, values: Mapping):
        object.__setattr__(self, "_strategy", strategy)
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"{self._strategy} has no parameter {name!r} "
                                 f"(its parameters: {', '.join(self._values) or 'none'})") from None

    def __getitem__(self, name):
        return self.__getattr__(name)

    def __setattr__(self, name, value):
        raise AttributeError("a constraint reads the parameters, it cannot change them")

    def __repr__(self) -> str:
        return configuration_name(self._strategy, self._values)


def _constraint_of(cls):
    """The class's ``constraint`` as a function of the params (None without one). Read off the
    class, so a lambda or function stored there is not bound to an instance."""
    constraint = getattr(cls, "constraint", None)
    if constraint is None:
        return None
    if not callable(constraint):
        raise StrategyError(f"{cls.__name__}.constraint must be a function of the parameters "
                            f"(e.g. staticmethod(lambda p: p.fast < p.slow)), not {type(constraint).__name__}")
    return constraint


def _check_overrides(grid: Mapping | None, found: Discovery) -> dict:
    """``{class name: {param: [values]}}`` from ``discover(grid=…)``, checked against the
    strategies found; :class:`StrategyError` naming the class or parameter otherwise."""
    if not grid:
        return {}
    if not isinstance(grid, Mapping):
        raise StrategyError(f"grid overrides must be a dict {{class name: {{param: values}}}}, "
                            f"not {type(grid).__name__}")
    nested: dict = {}
    for key, values in grid.items():
        if isinstance(values, Mapping):
            items = [(str(key), param, vals) for param, vals in values.items()]
        elif isinstance(key, str) and "." in key:
            items = [(*key.split(".", 1), values)]
        else:
            raise StrategyError(f"grid override {key!r}: expected CLASS.PARAM or CLASS: {{param: values}}")
        for name, param, vals in items:
            nested.setdefault(name, {})[param] = vals
    classes = {spec.name: spec.cls for spec in found.strategies}
    out = {}
    for name, params in nested.items():
        if name not in classes:
            raise StrategyError(f"grid override {name}: no strategy named {name!r} in {found.folder} "
                                f"(its strategies: {', '.join(dict.fromkeys(classes)) or 'none'})")
        known = strategy_params(classes[name])
        for param, values in params.items():
            if param not in known:
                raise StrategyError(f"grid override {name}.{param}: {param!r} is not a parameter of {name} "
                                    f"(its parameters: {', '.join(known) or 'none'})")
            if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
                raise StrategyError(f"grid override {name}.{param} must be a list of values, not {values!r}")
            values = _unique(values)
            if not values:
                raise StrategyError(f"grid override {name}.{param} has no values")
            out.setdefault(name, {})[param] = values
    return out


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


def _unique(values) -> list:
    """The values in order, each once (a value given twice would be one configuration twice)."""
    values = list(values)
    try:
        return [value for _, value in dict.fromkeys((type(v), v) for v in values)]
    except TypeError:  # unhashable values (lists, arrays): kept as given
        return values


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
