"""Strategy output captured: what strategies print, write to stderr or log goes to one file.

Users drop unmodified Backtrader strategies into a folder, and many of them ``print`` every
order in ``next()``, write to ``sys.stderr`` or configure :mod:`logging`. None of that may land
in the ranked table on stdout. While a :class:`StrategyLog` is active (:func:`strategy_output`,
or the ``strategy_log=`` / ``show_strategy_output=`` keywords of a function decorated with
:func:`strategy_output_api`, e.g. :func:`distillbt.screen.screen`), every task the executor
runs (:mod:`distillbt.executor`: ``map``, ``imap``, ``thread_map``; inline, in loky processes,
in threads, on Dask workers) runs inside :func:`capture_output`, and what it wrote is
returned with its result and appended to the log by the calling process, under a header naming
the task (``--- backtests: SmaCross(fast=10, slow=50) ---``). No shared file system is needed:
the text travels with the result. Strategy code the screen runs in its own thread outside
tasks (importing the strategy files, ``make_estimator``) is captured the same way by
:func:`captured`.

How a task's output is caught, per thread (:func:`capture_output`):

- ``sys.stdout`` and ``sys.stderr`` are replaced, while any capture is active in the process, by
  proxies that send a write to the buffer of the *writing thread's* capture, and everything
  else (other threads, distillbt's progress bars in the main thread) to the stream they
  replaced. ``contextlib.redirect_stdout`` would be process-global, which the threading
  backend cannot use. ``print``, ``sys.stdout.write``, :mod:`warnings` and logging handlers
  that write to ``sys.stderr``/``sys.stdout`` (``logging.basicConfig()``, a ``StreamHandler()``
  made by the strategy) all arrive there.
- :mod:`logging`: while a capture is active, ``logging.Logger.callHandlers`` is wrapped so
  that a record the strategy's handlers sent somewhere other than those streams (a
  ``FileHandler`` it added: that file still gets it, the user asked for it) is also written to
  the capture, once, as ``LEVEL logger: message``. No handler is added to the root logger —
  that would turn a strategy's ``logging.basicConfig(level=...)`` into a no-op. Records of
  distillbt's own loggers (``distillbt``, ``distillbt.*``) are never captured: they reach the
  terminal through distillbt's handlers as before (``-v`` works in workers too).

Not caught: writes that bypass Python's ``sys.stdout``/``sys.stderr`` (``os.write(1, …)``,
``sys.stdout.buffer``, ``sys.__stdout__``, C extensions printing), and output of a task that
raised in a worker after its exception was already sent (its text travels on the exception and
is logged when the caller sees it).

The log file is always created, empty when nothing was written (users get a path that exists
either way; the CLI says ``(empty)``). ``show=True`` writes the captured text to stderr as it
arrives instead of to a file, never to stdout.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import io
import logging
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["StrategyLog", "TaskOutput", "Captured", "capture_output", "captured", "strategy_output",
           "strategy_output_api", "active", "log_summary", "task_label", "OUTPUT_ATTRIBUTE", "RECORD_FORMAT"]

#: The attribute a task's exception carries its captured text in (back to the caller).
OUTPUT_ATTRIBUTE = "distillbt_strategy_output"

#: How a log record a strategy sent elsewhere (e.g. its own FileHandler) reads in the capture.
RECORD_FORMAT = "%(levelname)s %(name)s: %(message)s"

_state = threading.local()          # .buffers: this thread's capture stack; .passthrough: depth
_lock = threading.RLock()
_users = 0                          # captures active in this process (proxies installed while > 0)
_original_call_handlers = None
_formatter = logging.Formatter(RECORD_FORMAT)


# -- per-thread streams ----------------------------------------------------------------------
class _ThreadRoutedStream:
    """Stands for ``sys.stdout``/``sys.stderr``: a write from a thread with an active capture
    goes to that capture's buffer, every other write to the stream it replaced."""

    def __init__(self, name: str):
        self._name = name
        self.target = getattr(sys, name)

    def _buffer(self):
        buffers = getattr(_state, "buffers", None)
        if not buffers or getattr(_state, "passthrough", 0):
            return None
        return buffers[-1]

    def write(self, text) -> int:
        buffer = self._buffer()
        if buffer is None:
            return self.target.write(text) if self.target is not None else len(text)
        return buffer.write(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._buffer() is None and self.target is not None:
            self.target.flush()

    def __getattr__(self, name):  # encoding, isatty, fileno, …: the real stream's
        return getattr(self.target, name)


_STREAMS = {"stdout": _ThreadRoutedStream("stdout"), "stderr": _ThreadRoutedStream("stderr")}


def _terminal(name: str = "stderr"):
    """The real stream behind a proxy (what distillbt itself writes to)."""
    stream = getattr(sys, name)
    return stream.target if isinstance(stream, _ThreadRoutedStream) else stream


def _is_ours(logger_name: str) -> bool:
    return logger_name == "distillbt" or logger_name.startswith("distillbt.")


def _handled(logger: logging.Logger, record: logging.LogRecord) -> bool:
    """Would ``callHandlers`` give ``record`` to any handler (lastResort included)?"""
    found, current = 0, logger
    while current is not None:
        for handler in current.handlers:
            found += 1
            if record.levelno >= handler.level:
                return True
        current = current.parent if current.propagate else None
    return not found and logging.lastResort is not None and record.levelno >= logging.lastResort.level


def _call_handlers(self, record):
    """``Logger.callHandlers`` while captures are active (see the module docstring)."""
    buffers = getattr(_state, "buffers", None)
    if not buffers:
        return _original_call_handlers(self, record)
    if _is_ours(record.name):  # distillbt's own: to the terminal, whatever stream its handler uses
        _state.passthrough = getattr(_state, "passthrough", 0) + 1
        try:
            return _original_call_handlers(self, record)
        finally:
            _state.passthrough -= 1
    buffer = buffers[-1]
    before = buffer.tell()
    _original_call_handlers(self, record)
    if buffer.tell() == before and _handled(self, record):  # not already written to a captured stream
        try:
            buffer.write(_formatter.format(record) + "\n")
        except Exception:  # noqa: BLE001 - a bad record (format args) must not break the task
            buffer.write(f"{record.levelname} {record.name}: {record.msg!r}\n")


def _install() -> None:
    global _users, _original_call_handlers
    with _lock:
        if _users == 0:
            for name, proxy in _STREAMS.items():
                current = getattr(sys, name)
                if current is not proxy:
                    proxy.target = current
                    setattr(sys, name, proxy)
            if logging.Logger.callHandlers is not _call_handlers:
                _original_call_handlers = logging.Logger.callHandlers
                logging.Logger.callHandlers = _call_handlers
        _users += 1


def _uninstall() -> None:
    global _users
    with _lock:
        _users -= 1
        if _users == 0:
            for name, proxy in _STREAMS.items():
                if getattr(sys, name) is proxy:  # leave it if someone replaced it meanwhile
                    setattr(sys, name, proxy.target)
            if logging.Logger.callHandlers is _call_handlers:
                logging.Logger.callHandlers = _original_call_handlers


class _Capture:
    """What :func:`capture_output` yields: ``text`` is complete once the block has ended."""

    def __init__(self):
        self.buffer = io.StringIO()
        self.text = ""


@contextlib.contextmanager
def capture_output() -> Iterator[_Capture]:
    """Capture what *this thread* writes to ``sys.stdout``/``sys.stderr`` and logs through
    non-distillbt loggers, for the block; ``.text`` holds it afterwards. Other threads are not
    affected; captures nest (the inner one gets what is written inside it)."""
    capture = _Capture()
    _install()
    buffers = getattr(_state, "buffers", None)
    if buffers is None:
        buffers = _state.buffers = []
    buffers.append(capture.buffer)
    try:
        yield capture
    finally:
        buffers.pop()
        _uninstall()
        capture.text = capture.buffer.getvalue()


# -- tasks -----------------------------------------------------------------------------------
@dataclass
class TaskOutput:
    """A task's result with the text it wrote (what :class:`Captured` returns)."""

    result: object
    output: str = ""


class Captured:
    """A task that returns :class:`TaskOutput` (its result and what it wrote) instead of its
    result; picklable when ``function`` is, so it runs in loky and Dask workers. A task that
    raises carries its text on the exception (:data:`OUTPUT_ATTRIBUTE`)."""

    def __init__(self, function: Callable):
        self.function = function
        self.__name__ = getattr(function, "__name__", "task")

    def __call__(self, *args, **kwargs) -> TaskOutput:
        with capture_output() as capture:
            try:
                result = self.function(*args, **kwargs)
            except BaseException as error:  # noqa: BLE001 - re-raised below, with its text
                failed = error
            else:
                failed = None
        if failed is not None:
            _attach(failed, capture.text)
            raise failed
        return TaskOutput(result, capture.text)


def _attach(error: BaseException, text: str) -> None:
    with contextlib.suppress(Exception):
        setattr(error, OUTPUT_ATTRIBUTE, text)


def task_label(stage: str, args: tuple) -> str:
    """``"stage: name, name"``: the configurations a task's arguments name (a configuration,
    a job with a ``configuration``, or a chunk of ``(position, configuration)`` pairs)."""
    names = []

    def visit(item, depth=0):
        configuration = getattr(item, "configuration", None)
        if configuration is not None and hasattr(configuration, "name"):
            names.append(str(configuration.name))
        elif hasattr(item, "strategy") and isinstance(getattr(item, "name", None), str):
            names.append(item.name)
        elif isinstance(item, (list, tuple)) and depth < 2:
            for part in item[:64]:
                visit(part, depth + 1)

    for arg in args:
        visit(arg)
        if names:
            break
    return f"{stage}: {', '.join(names)}" if names else stage


# -- the log ---------------------------------------------------------------------------------
class StrategyLog:
    """Where captured strategy output goes for one screen: the file at ``path``, created at
    once and empty until something is written; with no ``path``, a ``strategy.log`` in a
    ``tempfile.mkdtemp(prefix="distillbt-")`` folder made when strategies first write (none
    for silent strategies: ``path`` stays None); or, with ``show=True``, stderr as it arrives
    (no file: ``path`` is None). ``lines`` counts the lines strategies wrote. Thread-safe."""

    def __init__(self, path=None, *, show: bool = False):
        self.show = bool(show)
        self.lines = 0
        self._lock = threading.Lock()
        self._file = None
        self._closed = False
        self.path: Path | None = None
        if not self.show and path is not None:
            self.path = Path(path)
            self._open()

    def _open(self) -> None:
        if self.path is None:
            self.path = Path(tempfile.mkdtemp(prefix="distillbt-")) / "strategy.log"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "w", encoding="utf-8", errors="backslashreplace")  # noqa: SIM115

    def write(self, label: str, text: str) -> None:
        """Append what the task ``label`` wrote (nothing when ``text`` is empty)."""
        if not text:
            return
        if not text.endswith("\n"):
            text += "\n"
        with self._lock:
            self.lines += text.count("\n")
            if self.show:
                stream = _terminal("stderr")
                stream.write(text)
                stream.flush()
            elif not self._closed:
                if self._file is None:
                    self._open()
                self._file.write(f"--- {label} ---\n{text}")
                self._file.flush()

    def collect(self, results: Iterator, labels: Iterable[str]) -> Iterator:
        """The results of :class:`Captured` tasks, unwrapped in order, each one's text
        appended under its label (also when the task raised)."""
        try:
            for label in labels:
                try:
                    item = next(results)
                except StopIteration:
                    return
                except BaseException as error:
                    self.write(label, getattr(error, OUTPUT_ATTRIBUTE, "") or "")
                    raise
                if isinstance(item, TaskOutput):
                    self.write(label, item.output)
                    item = item.result
                yield item
            next(results, None)  # one label per task: let the source run to its end (a pool's map completes)
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()

    def summary(self) -> dict:
        """``{"strategy_log": path or None (shown on stderr, or nothing written to a temporary
        log), "strategy_output_lines": n}``."""
        return {"strategy_log": str(self.path) if self.path is not None else None,
                "strategy_output_lines": self.lines}

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> StrategyLog:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


_ACTIVE: list[StrategyLog] = []  # process-wide (tasks are dispatched from any thread); innermost last


def active() -> StrategyLog | None:
    """The strategy log tasks' output goes to now, if any."""
    return _ACTIVE[-1] if _ACTIVE else None


def log_summary() -> dict:
    """The active log's :meth:`StrategyLog.summary` (``{}`` when none is active)."""
    log = active()
    return log.summary() if log is not None else {}


@contextlib.contextmanager
def strategy_output(path=None, *, show: bool = False) -> Iterator[StrategyLog]:
    """Make a :class:`StrategyLog` the active one for the block (closed afterwards). With no
    ``path`` and ``show`` False inside another active log, that one is reused."""
    outer = active()
    if outer is not None and path is None and not show:
        yield outer
        return
    log = StrategyLog(path, show=show)
    _ACTIVE.append(log)
    try:
        yield log
    finally:
        _ACTIVE.remove(log)
        log.close()


@contextlib.contextmanager
def captured(label: str) -> Iterator[None]:
    """Capture this thread's output for the block into the active log under ``label`` (for
    strategy code run outside tasks, e.g. importing strategy files); nothing without one."""
    log = active()
    if log is None:
        yield
        return
    try:
        with capture_output() as capture:
            yield
    finally:
        log.write(label, capture.text)


def strategy_output_api(function):
    """Decorate a public function that has the keywords ``strategy_log`` (a path; None: the
    active log, else a temporary file) and ``show_strategy_output`` (stderr instead of a
    file): its body runs inside :func:`strategy_output`, so every task it runs is captured and
    :func:`log_summary` gives the log's path and line count."""
    signature = inspect.signature(function)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        with strategy_output(bound.arguments.get("strategy_log"),
                             show=bool(bound.arguments.get("show_strategy_output"))):
            return function(*args, **kwargs)

    return wrapper
