"""``screen``'s choices written down: ``--grid`` specs and ``--config`` TOML files.

``--grid STRATEGY.PARAM=VALUES`` (repeatable) replaces one parameter's values in one strategy
class's ``grid`` (:func:`distillbt.discovery.discover`'s ``grid=``). VALUES is one of:

- ``START:STOP:STEP`` — START, START + STEP, … up to STOP, **STOP included when the steps
  land on it** (``5:50:5`` → 5, 10, …, 50; ``5:52:5`` stops at 50); ``START:STOP`` steps by
  1; a negative STEP counts down. Integers when all three are integers; otherwise decimals,
  computed in decimal arithmetic so ``0.1:0.5:0.1`` gives 0.3, not 0.30000000000000004;
- a comma list ``5,10,20`` (items: numbers, ranges as above, ``true``/``false``/``none``,
  or text; quote text holding ``,`` or ``:``, e.g. ``"10:30"``);
- one value, ``fast=5``.

A parameter given twice keeps the last one (the command line comes after the config file).
Unknown classes or parameters are refused by :func:`~distillbt.discovery.discover` once the
folder is read; bad syntax and empty ranges here — both :class:`~distillbt.errors.InputError`
(exit 2 from the CLI, one line).

``--config FILE`` reads a TOML file holding any of ``screen``'s flags, keys spelled as the
flags without the dashes (``-`` or ``_``: ``sample-bars = 20000``, ``sample_bars = 20000``),
values typed as TOML (``top = 5``, ``validate = true``, ``grid = ["SmaCross.fast=5:50:5"]``,
``data = "sample"`` or a list, ``folder = "strategies/"`` for DIR). Flags given on the
command line win over the file: the file's values become the parser's defaults
(:func:`config_defaults`), except for ``grid``, whose entries are merged (the command line's
win per STRATEGY.PARAM), and a flag of a mutually exclusive pair given on the command line
(``--validate`` / ``--validate-sample``) drops the file's other one. Relative paths in the file
are read from the current directory, as on the command line. An unknown key, a wrongly typed
value or a file that is not TOML is an :class:`~distillbt.errors.InputError` naming it.
"""

from __future__ import annotations

import argparse
import re
from decimal import Decimal
from pathlib import Path

from .errors import InputError, first_line

__all__ = ["parse_grid_option", "parse_values", "grid_overrides", "config_defaults", "explicit_dests",
           "MERGED_KEYS"]

#: Repeatable flags whose config-file entries are kept beside the command line's.
MERGED_KEYS = frozenset({"grid"})
#: A range: numbers separated by colons (a quoted item is text, never a range).
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RANGE = re.compile(rf"\s*({_NUMBER})\s*:\s*({_NUMBER})\s*(?::\s*({_NUMBER})\s*)?")
_OPTION = re.compile(r"\s*([A-Za-z_]\w*)\.([A-Za-z_]\w*)\s*=(.*)", re.DOTALL)
#: Values a range may hold: enough for any grid, small enough to stop a typo (1:1e9).
MAX_RANGE = 1_000_000


def parse_grid_option(text: str) -> tuple[str, str, list]:
    """``"SmaCross.fast=5:50:5"`` → ``("SmaCross", "fast", [5, 10, …, 50])`` (module
    docstring); :class:`~distillbt.errors.InputError` naming the option when it cannot be read."""
    match = _OPTION.fullmatch(str(text))
    if not match:
        raise InputError(f"--grid {text!r}: expected STRATEGY.PARAM=VALUES, e.g. SmaCross.fast=5:50:5 or "
                         f"SmaCross.fast=5,10,20")
    strategy, param, values = match.groups()
    try:
        return strategy, param, parse_values(values)
    except InputError as error:
        raise InputError(f"--grid {text}: {error}") from None


def parse_values(text: str) -> list:
    """The values of a ``--grid`` VALUES (module docstring), in order, each once."""
    values = [value for item in _split(text)
              for value in (_range(item) if _RANGE.fullmatch(item) else [_scalar(item)])]
    return [value for _, value in dict.fromkeys((type(v), v) for v in values)]  # each once, in order


def grid_overrides(options) -> dict:
    """``{strategy: {param: values}}`` from parsed ``--grid`` options (in order: a later one
    for the same STRATEGY.PARAM replaces an earlier one)."""
    out: dict = {}
    for strategy, param, values in options or ():
        out.setdefault(strategy, {})[param] = values
    return out


def _split(text: str) -> list[str]:
    """Comma-separated items; quotes keep commas and colons inside an item."""
    items, current, quote = [], "", None
    for char in text:
        if quote:
            current += char
            quote = None if char == quote else quote
        elif char in "'\"":
            current += char
            quote = char
        elif char == ",":
            items.append(current)
            current = ""
        else:
            current += char
    if quote:
        raise InputError(f"unclosed quote in {text.strip()!r}")
    items.append(current)
    if any(not item.strip() for item in items):
        raise InputError(f"an empty value in {text.strip()!r}" if text.strip() else "no values")
    return items


def _range(item: str) -> list:
    start, stop, step = _RANGE.fullmatch(item).groups()
    texts = [start, stop] + ([step] if step is not None else [])
    whole = all(re.fullmatch(r"[-+]?\d+", t) for t in texts)
    start_d, stop_d = Decimal(start), Decimal(stop)
    step_d = Decimal(step) if step is not None else Decimal(1)
    if step_d == 0:
        raise InputError(f"{item.strip()}: the step must not be 0")
    count = int((stop_d - start_d) / step_d) + 1 if (stop_d - start_d) * step_d >= 0 else 0
    if count <= 0:
        raise InputError(f"{item.strip()}: empty range (a step of {step_d} never goes from {start_d} to {stop_d})")
    if count > MAX_RANGE:
        raise InputError(f"{item.strip()}: {count:,} values, more than {MAX_RANGE:,}")
    # Decimal arithmetic: 0.1 + 2 × 0.1 is 0.3 exactly, converted to the float nearest 0.3.
    convert = int if whole else float
    return [convert(start_d + i * step_d) for i in range(count)]


def _scalar(item: str):
    text = item.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    if re.fullmatch(_NUMBER, text):
        return float(Decimal(text))
    if ":" in text:
        raise InputError(f"{text!r} is neither a number nor START:STOP[:STEP] (quote it if it is text)")
    return text


# -- --config FILE --------------------------------------------------------------------------
def config_defaults(path, command: argparse.ArgumentParser, *, explicit=frozenset()) -> dict:
    """``{dest: value}`` for ``command.set_defaults(...)`` from the TOML file at ``path``
    (module docstring): keys matched to ``command``'s flags, values checked and converted as
    the flag's own type would; ``explicit``: the dests given on the command line (their file
    values are dropped where they would not simply be overridden)."""
    table = _read_toml(path)
    # argparse has no public listing of a parser's arguments; reading its actions is the way.
    actions = [a for a in command._actions if a.dest not in ("help", "config")]
    by_key = {}
    for action in actions:
        for name in [s.lstrip("-") for s in action.option_strings if s.startswith("--")] or [action.dest]:
            by_key.setdefault(name.replace("_", "-"), action)
    values = {}
    for key, value in table.items():
        action = by_key.get(str(key).replace("_", "-"))
        if action is None:
            raise InputError(f"--config {path}: unknown key {key!r}: not a flag of screen (see screen --help)")
        if action.dest in values:
            raise InputError(f"--config {path}: {key!r} is given twice")
        values[action.dest] = _converted(path, key, action, value)
    for group in command._mutually_exclusive_groups:
        dests = [a.dest for a in group._group_actions]
        given = [a.option_strings[-1] for a in group._group_actions if values.get(a.dest) not in (None, False)]
        if len(given) > 1:
            raise InputError(f"--config {path}: {' and '.join(given)} do not mix")
        if any(d in explicit for d in dests):
            for dest in dests:
                values.pop(dest, None)
    for action in actions:  # a repeatable flag on the command line replaces the file's list
        if _kind(action) == "append" and action.dest in explicit and action.dest not in MERGED_KEYS:
            values.pop(action.dest, None)
    return values


def explicit_dests(command: argparse.ArgumentParser, parse) -> set[str]:
    """The dests of ``command`` given on the command line: ``parse()`` (which must parse the
    command line with a parser holding ``command``) run with every default of ``command``
    suppressed, so only what was given lands in the namespace. ``command`` is changed: use a
    throwaway parser."""
    dests = set()
    for action in command._actions:
        if action.dest != "help":
            action.default = argparse.SUPPRESS
            dests.add(action.dest)
    namespace = parse()
    return {dest for dest, value in vars(namespace).items() if dest in dests and value is not argparse.SUPPRESS}


def _read_toml(path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise InputError("--config needs Python 3.11 or the tomli package (pip install tomli)") from None
    file = Path(path).expanduser()
    try:
        with file.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise InputError(f"--config {path}: no such file") from None
    except OSError as error:
        raise InputError(f"--config {path}: cannot read it: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"--config {path}: not valid TOML: {first_line(error)}") from None


def _kind(action: argparse.Action) -> str:
    # argparse's action classes are private; their names are stable since Python 3.2.
    name = type(action).__name__
    if name in ("_StoreTrueAction", "_StoreFalseAction"):
        return "flag"
    if name == "_AppendAction":
        return "append"
    return "store"


def _converted(path, key, action: argparse.Action, value):
    where = f"--config {path}: {key}"
    kind = _kind(action)
    if kind == "flag":
        if not isinstance(value, bool):
            raise InputError(f"{where} must be true or false, not {value!r}")
        return value
    if kind == "append":
        items = value if isinstance(value, list) else [value]
        return [_scalar_value(where, action, item) for item in items]
    if value is True and action.nargs == "?" and action.const is not None:
        return action.const  # json = true: the flag given without its value
    return _scalar_value(where, action, value)


def _scalar_value(where: str, action: argparse.Action, value):
    if isinstance(value, (dict, list)):
        raise InputError(f"{where} must be a single value, not {type(value).__name__}")
    if action.type is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{where} must be a whole number, not {value!r}")
    elif action.type is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{where} must be a number, not {value!r}")
        value = float(value)
    elif action.type is None:
        if not isinstance(value, str):
            raise InputError(f"{where} must be text (in quotes), not {value!r}")
    else:
        if not isinstance(value, str):
            raise InputError(f"{where} must be text (in quotes), not {value!r}")
        try:
            value = action.type(value)
        except (InputError, ValueError, TypeError, argparse.ArgumentTypeError) as error:
            raise InputError(f"{where}: {first_line(error)}") from None
    if action.choices is not None and value not in action.choices:
        raise InputError(f"{where} must be one of {', '.join(map(str, action.choices))}, not {value!r}")
    return value
