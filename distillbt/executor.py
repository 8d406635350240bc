"""One executor for every parallel step: joblib processes, threads or a Dask cluster.

::

    with Executor(n_jobs=4, backend="dask") as ex:      # a LocalCluster of 4 workers
        results = ex.map(function, [(a,), (b,)], desc="jobs", unit="job")
        screen(folder, candles)                         # every stage inside reuses the cluster

An :class:`Executor` is made once per command (the CLI builds it from ``--jobs``,
``--backend`` and ``--scheduler``) and entered as a context manager. For ``dask`` it opens a
``dask.distributed.Client`` — a ``LocalCluster(n_workers=n_jobs, threads_per_worker=1,
processes=True)`` on this machine when no scheduler is given, the cluster at ``scheduler``
otherwise — and for every backend it sets ``joblib.parallel_config(backend, n_jobs)`` for what
runs inside. Entering is re-entrant: the cluster starts on the first entry and stops on the last
exit (:meth:`Executor.start` / :meth:`Executor.close` hold it open across several blocks).
:meth:`Executor.map` runs ``function(*args)`` per job — in this process for one worker or one
job (except on Dask), results in job order, a tqdm bar — and :meth:`Executor.thread_map` runs
work on this process's own data in up to ``n_jobs`` threads whatever the backend.
:meth:`Executor.warm_up` starts a loky pool's workers in the background for a caller with work
of its own before its first map (the screen, when it has plain strategies). ``prefer="threads"``
(:meth:`Executor.imap`, :meth:`Executor.map`) runs work that releases the GIL — the model
stage's fits and vectorised runs, the distillation's per-regime fits — in threads of this
process on the loky and threading backends: on two cores a worker process costs about 1.45
CPU-seconds of imports before its first job, as much as the jobs of a small screen.

The Python API (``distill``, ``screen``, ``run_many``, ``evaluate``, …) keeps its ``n_jobs=`` /
``backend=`` (/ ``scheduler=``) keywords: each parallel step runs on :func:`using`, which gives
the *active* executor when there is one — the keywords are then ignored, so a nested call never
starts a second cluster — and otherwise makes one from the keywords for the duration of the
call. Workers (processes and Dask workers) never see an active executor, so a step that runs
inside a worker (e.g. ``evaluate``'s per-set ``distill``) runs in that worker's process.

Results never depend on the backend: every step orders its results by job, and seeds are made
per job before anything is sent.

Strategy files on a remote cluster
----------------------------------
Strategies are imported by file path in the workers (:mod:`distillbt.discovery`). A
``LocalCluster`` runs on this machine, so the paths are there. For a cluster at ``--scheduler``
the files are not uploaded (``Client.upload_file`` imports a file under its stem at another
path, which the stable module names and the folder's ``_helpers.py`` imports do not survive);
instead :meth:`Executor.require_files` asks every worker, once per file, whether it can read
the same path with the same content (a shared or synced file system), and fails with a one-line
:class:`~distillbt.errors.InputError` naming the first missing or different file before any job
is sent. The workers also need ``distillbt`` itself (and the strategies' imports) installed.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import gc
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import capture
from .errors import InputError, first_line

__all__ = ["Executor", "BACKENDS", "using", "current", "parallel_api", "one_blas_thread"]

log = logging.getLogger(__name__)

BACKENDS = ("loky", "threading", "dask")

#: Jobs sent to a worker at a time. Every map here runs jobs of tens of milliseconds or more,
#: of unequal cost (a fit, a recording, a backtest); joblib's automatic batching groups fast
#: ones into batches of up to ~2 s — and keeps that size into the next map on the same pool —,
#: so a worker could be left with a batch of them while the others wait (measured: one of two
#: workers idle ~2 s at the end of the calibration set's fits). One job at a time costs a
#: round trip each (one-off: ~3 ms a job of 20 ms returning 0.7 MB, on two workers).
JOBS_PER_BATCH = 1

_ACTIVE: contextvars.ContextVar[Executor | None] = contextvars.ContextVar("distillbt_executor", default=None)


def current() -> Executor | None:
    """The executor entered in this thread of this process, if any."""
    return _ACTIVE.get()


def _cores(n_jobs: int) -> int:
    """joblib's meaning of ``n_jobs``: ``-1`` every core, ``-2`` all but one, …"""
    if n_jobs > 0:
        return n_jobs
    return max(1, (os.cpu_count() or 1) + 1 + n_jobs)


@dataclass(eq=False)
class Executor:
    """Where parallel work runs: ``n_jobs`` workers of ``backend`` (``loky`` processes,
    ``threading`` threads, or ``dask``: a LocalCluster of ``n_jobs`` worker processes, or the
    cluster at ``scheduler``, whose workers then set the parallelism)."""

    n_jobs: int = 1
    backend: str = "loky"
    scheduler: str | None = None
    client: object = field(default=None, init=False, repr=False)
    _refs: int = field(default=0, init=False, repr=False)
    _entries: dict = field(default_factory=dict, init=False, repr=False)  # thread id → its entries
    _lock: object = field(default_factory=threading.RLock, init=False, repr=False)
    _stack: contextlib.ExitStack | None = field(default=None, init=False, repr=False)
    _checked: dict = field(default_factory=dict, init=False, repr=False)
    _pool: object = field(default=None, init=False, repr=False)  # a managed joblib.Parallel, while started
    _pool_busy: object = field(default_factory=threading.Lock, init=False, repr=False)
    _warming: object = field(default=None, init=False, repr=False)  # the thread warming the pool up
    _log_level: int = field(default=logging.INFO, init=False, repr=False)  # DEBUG for using()'s own

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise InputError(f"unknown backend {self.backend!r}: choose one of {', '.join(BACKENDS)}")
        try:
            self.n_jobs = int(self.n_jobs)
        except (TypeError, ValueError):
            raise InputError(f"n_jobs must be a whole number, not {self.n_jobs!r}") from None
        if self.n_jobs == 0:
            raise InputError("n_jobs must not be 0 (1: in this process; -1: every core)")
        if self.scheduler and self.backend != "dask":
            log.warning("scheduler %s is for the dask backend: ignored on %s", self.scheduler, self.backend)
            self.scheduler = None

    # -- the context ---------------------------------------------------------------------------
    @property
    def workers(self) -> int:
        """Jobs that run at once: ``n_jobs`` (every core for -1), or a remote cluster's threads."""
        if self.backend == "dask" and self.client is not None and self.scheduler:
            return max(1, sum(self.client.ncores().values()))
        return _cores(self.n_jobs)

    @property
    def address(self) -> str | None:
        """The Dask scheduler's address while entered (None for the other backends)."""
        return getattr(getattr(self.client, "scheduler", None), "address", None)

    def __enter__(self) -> Executor:
        """Start (if not started) and make this the active executor of this thread, with
        ``joblib.parallel_config(backend, n_jobs)`` set for what runs inside."""
        import joblib

        self.start()
        try:
            config = joblib.parallel_config(backend=self.backend, n_jobs=self._joblib_jobs())
            config.__enter__()
        except BaseException:
            self.close()
            raise
        self._entries.setdefault(threading.get_ident(), []).append((_ACTIVE.set(self), config))
        return self

    def __exit__(self, *exc_info) -> None:
        # per thread: a thread's context variable token can only be reset in that thread
        entries = self._entries[threading.get_ident()]
        token, config = entries.pop()
        if not entries:
            del self._entries[threading.get_ident()]
        config.__exit__(None, None, None)
        _ACTIVE.reset(token)
        self.close()

    def start(self) -> Executor:
        """Start the Dask cluster or client (for every backend: count one more user); the last
        :meth:`close` stops it. ``with executor:`` does both, and activates it. Thread-safe."""
        with self._lock:
            return self._start()

    def _start(self) -> Executor:
        if self._refs == 0:
            stack = contextlib.ExitStack()
            try:
                if self.backend == "dask":
                    self.client = self._open_client(stack)
                elif self.backend == "loky" and _cores(self.n_jobs) > 1:
                    # one pool for every map while started: a fresh Parallel per map pays joblib's
                    # memmapping-folder clean-up (up to ~0.2 s of retries) on every call
                    self._open_pool()
                    stack.callback(self._close_pool)
            except BaseException:
                stack.close()
                self.client = None
                raise
            self._stack = stack
            if self.backend == "dask":
                where = (f"the cluster at {self.scheduler}" if self.scheduler else
                         f"a LocalCluster of {_cores(self.n_jobs)} workers")
                log.log(self._log_level, "executor: dask on %s, scheduler %s, %d worker thread(s)", where,
                        self.address, self.workers)
            else:
                log.log(self._log_level, "executor: %s with %d job(s)", self.backend, _cores(self.n_jobs))
        self._refs += 1
        return self

    def close(self) -> None:
        """Undo one :meth:`start`; the last one closes the Dask client and cluster."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._refs <= 0:
            return
        self._refs -= 1
        if self._refs == 0:
            stack, self._stack = self._stack, None
            try:
                stack.close()
            finally:
                self.client = None
                self._checked.clear()

    def _open_client(self, stack: contextlib.ExitStack):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as error:
            raise InputError("the dask backend needs dask.distributed: pip install 'distillbt[dask]'") from error
        if self.scheduler:
            try:
                return stack.enter_context(Client(self.scheduler, timeout=20))
            except (OSError, TimeoutError, ValueError) as error:
                raise InputError(f"cannot reach the Dask scheduler at {self.scheduler}: "
                                 f"{first_line(error, with_type=True)}") from None
        cluster = stack.enter_context(LocalCluster(n_workers=_cores(self.n_jobs), threads_per_worker=1,
                                                   processes=True, dashboard_address=None))
        return stack.enter_context(Client(cluster))

    def _open_pool(self) -> None:
        import joblib

        self._pool = joblib.Parallel(n_jobs=self.n_jobs, backend="loky", return_as="generator",
                                     batch_size=JOBS_PER_BATCH)
        self._pool.__enter__()

    def warm_up(self) -> None:
        """Start the worker processes now, in the background, and have each import the pipeline,
        so the first map does not wait for them (2 workers: a first map 1.45 s cold, 0.025 s
        after a finished warm-up; ``benchmarks/bench_fit_overheads.py``). For a caller that will map soon and has work of
        its own first (the screen reads candles and prepares features meanwhile). The first map
        waits for it; a no-op when the executor runs in this process, on Dask, or is not
        entered."""
        with self._lock:
            if self._pool is None or self._warming is not None:
                return
            self._pool_busy.acquire()
            self._warming = threading.Thread(target=self._warm_up, name="distillbt-warm-up", daemon=True)
            self._warming.start()

    def ready(self) -> None:
        """Start the worker processes if they are not started (:meth:`warm_up`) and wait until
        each has imported the pipeline: a caller that times its next map — a baseline's full
        backtests — then times the work, not the workers' start (Backtrader at its fastest
        runs on started workers). A no-op where :meth:`warm_up` is one."""
        self.warm_up()
        self._wait_warm_up()

    def _warm_up(self) -> None:
        import joblib

        try:
            for _ in self._pool(joblib.delayed(_warm_worker)() for _ in range(_cores(self.n_jobs))):
                pass
        except BaseException as error:  # noqa: BLE001 - a failed warm-up only costs the first map its start-up
            log.debug("executor: warming the workers up failed: %s", first_line(error, with_type=True))
        finally:
            self._pool_busy.release()

    def _wait_warm_up(self) -> None:
        warming = self._warming
        if warming is not None and warming is not threading.current_thread():
            warming.join()

    def _close_pool(self) -> None:
        self._wait_warm_up()
        self._warming = None
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.__exit__(None, None, None)

    def _joblib_jobs(self) -> int:
        # joblib's dask backend runs on every thread of the cluster whatever n_jobs says
        return -1 if self.backend == "dask" else self.n_jobs

    # -- running -------------------------------------------------------------------------------
    def _serial(self, count: int) -> bool:
        """In this process: one worker or one job (a Dask executor always uses its cluster)."""
        return count == 0 or (self.backend != "dask" and (count == 1 or _cores(self.n_jobs) == 1))

    def imap(self, function: Callable, arguments: Iterable[tuple], *, kwargs: dict | None = None,
             label: str | None = None, prefer: str | None = None) -> Iterator:
        """``function(*args, **kwargs)`` for each ``args``, results yielded in job order as they
        arrive. ``kwargs`` are the same for every job (large arrays in them are memory-mapped
        for loky, scattered once for Dask). With ``dask``, the executor must be entered.

        ``prefer="threads"``: work that spends its time in numpy and compiled scikit-learn code,
        which release the GIL, runs in up to ``n_jobs`` threads of this process on this
        machine's backends (loky or threading) — no worker process to start, import into or
        copy the data to; BLAS on one thread and each thread's OpenMP on one thread meanwhile,
        so the threads do not oversubscribe the cores. A Dask executor keeps its cluster.

        While a strategy log is active (:mod:`distillbt.capture`), each job's prints, stderr
        and logging are captured where it runs and appended to the log here, under ``label``
        (default: the function's name) and the configurations the job names."""
        if prefer not in (None, "threads"):
            raise ValueError(f"prefer must be 'threads' or None, not {prefer!r}")
        arguments = list(arguments)
        kwargs = kwargs or {}
        threads = prefer == "threads" and self.backend != "dask"
        log = capture.active()
        if log is not None:
            stage = label or getattr(function, "__name__", "job").strip("_").replace("_", " ")
            labels = [capture.task_label(stage, args) for args in arguments]
            return log.collect(self._imap(capture.Captured(function), arguments, kwargs, threads), iter(labels))
        return self._imap(function, arguments, kwargs, threads)

    def _imap(self, function: Callable, arguments: list, kwargs: dict, threads: bool = False) -> Iterator:
        if self._serial(len(arguments)):
            return (function(*args, **kwargs) for args in arguments)
        if threads:
            return self._threads_imap(function, arguments, kwargs)
        if self.backend == "dask" and self.client is None:
            raise RuntimeError("enter the dask executor (with executor: ...) before running jobs on it")
        import joblib

        if self.backend != "threading":
            function = _Logged(function, logging.getLogger("distillbt").getEffectiveLevel())
        if self.backend == "dask":
            # the dask backend only works configured (a fresh Parallel(backend="dask") breaks)
            with joblib.parallel_config(backend="dask", n_jobs=-1):
                parallel = joblib.Parallel(return_as="generator", batch_size=JOBS_PER_BATCH)
            return parallel(joblib.delayed(function)(*args, **kwargs) for args in arguments)
        folder = None
        if self.backend == "loky" and kwargs:
            kwargs, folder = _mapped_once(kwargs)
        if self._pool is not None:
            results = self._on_pool(joblib.delayed(function)(*args, **kwargs) for args in arguments)
        else:
            parallel = joblib.Parallel(n_jobs=self.n_jobs, backend=self.backend, return_as="generator",
                                       batch_size=JOBS_PER_BATCH)
            results = parallel(joblib.delayed(function)(*args, **kwargs) for args in arguments)
        return results if folder is None else _removing(folder, results)

    def _on_pool(self, tasks) -> Iterator:
        """``tasks``' results from the started pool, or from a fresh one while the pool runs
        another map (one called from a thread)."""
        import joblib

        self._wait_warm_up()
        if not self._pool_busy.acquire(blocking=False):
            yield from joblib.Parallel(n_jobs=self.n_jobs, backend=self.backend, return_as="generator",
                                       batch_size=JOBS_PER_BATCH)(tasks)
            return
        finished = False
        try:
            yield from self._pool(tasks)
            finished = True
        finally:
            if not finished:  # a map dropped half-way leaves results in a managed pool: a new one
                self._close_pool()
                self._open_pool()
            self._pool_busy.release()

    def _threads_imap(self, function: Callable, arguments: list, kwargs: dict) -> Iterator:
        from concurrent.futures import ThreadPoolExecutor

        threads = min(_cores(self.n_jobs), len(arguments))
        pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="distillbt", initializer=_one_openmp_thread)
        try:
            with one_blas_thread():
                yield from pool.map(lambda args: function(*args, **kwargs), arguments)
        finally:  # a caller that stops early (an error, Ctrl-C) does not wait for the queued jobs
            pool.shutdown(wait=True, cancel_futures=True)

    def map(self, function: Callable, arguments: Iterable[tuple], *, kwargs: dict | None = None,
            desc: str = "jobs", unit: str = "job", progress: bool = True, leave: bool = True,
            prefer: str | None = None) -> list:
        """``[function(*args, **kwargs) for args in arguments]``: in this process when
        ``n_jobs == 1`` or there is one job (not for ``dask``), else on the workers (in threads
        of this process for ``prefer="threads"``: :meth:`imap`); results in job order; a tqdm
        bar on stderr counts them (``progress``)."""
        from tqdm.auto import tqdm

        arguments = list(arguments)
        results = []
        with self, tqdm(total=len(arguments), desc=desc, unit=unit, disable=not progress, leave=leave) as bar:
            for result in self.imap(function, arguments, kwargs=kwargs, label=desc, prefer=prefer):
                results.append(result)
                bar.update()
        return results

    def thread_map(self, function: Callable, arguments: Iterable[tuple]) -> list:
        """``[function(*args) for args in arguments]`` in threads of *this* process (at most
        ``n_jobs`` of them, whatever the backend, with BLAS and OpenMP as in ``prefer="threads"``),
        for work on data this process holds (shared caches, closures) that releases the GIL; in
        order."""
        arguments = list(arguments)
        log = capture.active()
        if log is not None:  # each call's output captured in its own thread (distillbt.capture)
            stage = getattr(function, "__name__", "job").strip("_").replace("_", " ")
            labels = [capture.task_label(stage, args) for args in arguments]
            return list(log.collect(iter(self._thread_map(capture.Captured(function), arguments)), labels))
        return self._thread_map(function, arguments)

    def _thread_map(self, function: Callable, arguments: list) -> list:
        if min(_cores(self.n_jobs), len(arguments)) <= 1:
            return [function(*args) for args in arguments]
        return list(self._threads_imap(function, arguments, {}))

    # -- strategy files on remote workers --------------------------------------------------------
    def require_files(self, paths: Iterable) -> None:
        """On a cluster at ``scheduler``: check that every worker reads each of ``paths`` (strategy
        files, imported there by path) with this machine's content; :class:`InputError` naming the
        first that is missing or different. A no-op on this machine's backends; each file is
        checked once per entry."""
        if self.backend != "dask" or not self.scheduler or self.client is None:
            return
        wanted = {}
        for path in paths:
            path = str(Path(path).resolve())
            if path not in self._checked and os.path.isfile(path):
                wanted[path] = _sha256(path)
        if not wanted:
            return
        answers = self.client.run(_file_problems, wanted)
        for worker, problems in sorted(answers.items()):
            if problems:
                path, problem = problems[0]
                raise InputError(f"Dask worker {worker} {problem} {path}: strategy files must be at the same "
                                 "path on every worker (a shared file system), or drop --scheduler for a "
                                 "LocalCluster")
        self._checked.update(wanted)
        log.debug("executor: %d file(s) readable on %d worker(s)", len(wanted), len(answers))

    def require_strategy_files(self, configurations: Iterable) -> None:
        """:meth:`require_files` for the files the strategies of ``configurations`` come from
        (:class:`~distillbt.discovery.Configuration` objects, or anything with one at
        ``.configuration``)."""
        if self.backend != "dask" or not self.scheduler:
            return
        files = set()
        for item in configurations:
            config = getattr(item, "configuration", item)
            file = getattr(getattr(config, "strategy", None), "file", None)
            if file:
                files.add(file)
        self.require_files(sorted(files))


_BLAS_LOCK = threading.Lock()
_BLAS_STATE = {"depth": 0, "limiter": None}


@contextlib.contextmanager
def one_blas_thread():
    """BLAS on one thread in this whole process while any caller is inside: threads that each
    call BLAS would otherwise start its threads per call, more threads than cores. Counted, so
    entries from the threads a caller starts inside its own entry change nothing and the
    caller's setting comes back once, at its exit — threadpoolctl's own context restores per
    entry, which overlapping entries would leave in either state. Enter it first in the thread
    that starts the others: OpenBLAS (0.3.30) ignores a thread count set from another thread
    once the main thread has set one. Applies to the BLAS libraries loaded at the first entry
    (the screen's are: numpy's, and scipy's through scikit-learn)."""
    from threadpoolctl import threadpool_limits

    with _BLAS_LOCK:
        if _BLAS_STATE["depth"] == 0:
            _BLAS_STATE["limiter"] = threadpool_limits(limits=1, user_api="blas")
        _BLAS_STATE["depth"] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_STATE["depth"] -= 1
            if _BLAS_STATE["depth"] == 0:
                _BLAS_STATE["limiter"].restore_original_limits()
                _BLAS_STATE["limiter"] = None


def _one_openmp_thread() -> None:
    """A pool thread's OpenMP on one thread (OpenMP's thread count is set per calling thread:
    histogram boosting and k-means in two threads would each start one per core)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="openmp")


def _mapped_once(kwargs: dict) -> tuple[dict, str]:
    """``kwargs`` with their numpy arrays (also those inside objects: a DataFrame's blocks)
    memory-mapped from a file written once, and that file's folder (to remove after the map).
    Loky memory-maps large arguments itself, but for every job anew — it hashes each array to
    find its file: ~6 ms a job for 100,000 candles, as long as a fit's whole round trip —;
    an array already memory-mapped is sent as its file's name."""
    import tempfile

    import joblib

    shared = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    folder = tempfile.mkdtemp(prefix="distillbt-map-", dir=shared)
    path = os.path.join(folder, "kwargs.joblib")
    try:
        joblib.dump(kwargs, path)
        # copy-on-write: a job may write into its arrays as into its own copy
        return joblib.load(path, mmap_mode="c"), folder
    except Exception as error:  # noqa: BLE001 - what pickle cannot write travels as before (cloudpickle)
        log.debug("executor: keyword arguments sent with every job: %s", first_line(error, with_type=True))
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        return kwargs, None


def _removing(folder: str, results: Iterator) -> Iterator:
    """``results``, then ``folder`` removed (when they are all out, or the map is dropped)."""
    import shutil

    try:
        yield from results
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _warm_worker() -> None:
    """Run once in each new worker: import what its jobs run — Backtrader's runs and the plain
    strategies' recordings, replays and fits (scikit-learn's trees, scipy's filters: a worker
    that first meets a fit job while importing them keeps the whole map waiting for its
    first result, ~0.8 s). Not the screen's own stages (scipy.stats, the reports), which run
    in the caller's process."""
    import distillbt.backtest  # noqa: F401 - backtrader, pandas and the runs
    import distillbt.surrogate.fit_jobs  # noqa: F401 - the recordings, replays and fits

    # What the imports made lives as long as the worker: out of the collector's full scans,
    # which every few hundred Backtrader runs (each leaves cycles) would otherwise walk again
    # (a screen of 76 configurations in one process: 0.9 s of such scans, 0.4 s after this)
    gc.freeze()


def _sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _file_problems(wanted: dict) -> list:
    """Run on each Dask worker: ``[(path, "cannot read" | "has a different")]``."""
    problems = []
    for path, digest in wanted.items():
        try:
            if _sha256(path) != digest:
                problems.append((path, "has a different"))
        except OSError:
            problems.append((path, "cannot read"))
    return problems


#: Memory a loky worker may gain after its first job before loky takes it for a leak.
WORKER_MEMORY_ROOM = 4 * 2**30
_ROOMY = False  # raised in this process already


def _roomy_worker() -> None:
    """Loky restarts a worker whose memory grew 300 MB past its first job (a leak, it
    assumes, when psutil is installed). A backtest of 100,000 bars holds that much while it
    runs and gives it back after (measured: a worker at 320–600 MB from one run to the next on
    the calibration set): a restart in the middle of a map costs a new process and its
    imports (~1.5 s) and lands on whichever run comes next, a baseline's or a screen's. The
    limit is loky's module-level setting, raised once in each worker it can be found in."""
    global _ROOMY
    if _ROOMY:
        return
    _ROOMY = True
    try:
        from joblib.externals.loky import process_executor
    except ImportError:
        return
    if getattr(process_executor, "_MAX_MEMORY_LEAK_SIZE", None) is not None:
        process_executor._MAX_MEMORY_LEAK_SIZE = max(process_executor._MAX_MEMORY_LEAK_SIZE, WORKER_MEMORY_ROOM)


class _Logged:
    """A job that runs in a worker process with the caller's ``distillbt`` log level (a stderr
    handler in the worker when it has none), so ``-v`` shows what happens in workers too, and
    loky's room for memory raised (:func:`_roomy_worker`)."""

    def __init__(self, function, level: int):
        self.function, self.level = function, level
        self.__name__ = getattr(function, "__name__", "job")

    def __call__(self, *args, **kwargs):
        _roomy_worker()
        logger = logging.getLogger("distillbt")
        if logger.level != self.level:
            logger.setLevel(self.level)
            if not logger.handlers and self.level < logging.WARNING:
                handler = logging.StreamHandler()
                handler.setFormatter(logging.Formatter(LOG_FORMAT))
                logger.addHandler(handler)
        return self.function(*args, **kwargs)


#: the CLI's one-line log format (also used by workers)
LOG_FORMAT = "%(name)s: %(levelname)s: %(message)s"


@contextlib.contextmanager
def using(executor: Executor | None = None, *, n_jobs: int = 1, backend: str = "loky",
          scheduler: str | None = None) -> Iterator[Executor]:
    """The executor a parallel step runs on, entered for the block: ``executor`` if given, else
    the active one (the keywords are then ignored: one cluster per command), else a new
    ``Executor(n_jobs, backend, scheduler)``."""
    chosen = executor or current()
    if chosen is None:
        chosen = Executor(n_jobs=n_jobs, backend=backend or "loky", scheduler=scheduler)
        chosen._log_level = logging.DEBUG if chosen.backend != "dask" else logging.INFO
    elif executor is None and (backend, _cores(n_jobs)) != (chosen.backend, _cores(chosen.n_jobs)):
        log.debug("running on the active executor (%s, %d jobs), not on %s with %d",
                  chosen.backend, chosen.n_jobs, backend, n_jobs)
    with chosen:
        yield chosen


def parallel_api(function):
    """Decorate a public function that takes ``n_jobs=`` and ``backend=``: its body runs inside
    :func:`using` (so every step in it shares one executor, e.g. one LocalCluster), and it gains
    the keywords ``scheduler=`` and ``executor=`` where it lacks them."""
    import inspect

    signature = inspect.signature(function)
    own = [name for name in ("scheduler", "executor") if name not in signature.parameters]

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        extra = {name: kwargs.pop(name) for name in own if name in kwargs}
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = {**bound.arguments, **extra}
        with using(values.get("executor"), n_jobs=values.get("n_jobs", 1), backend=values.get("backend", "loky"),
                   scheduler=values.get("scheduler")):
            return function(*args, **kwargs)

    parameters = list(signature.parameters.values())
    at = next((k for k, p in enumerate(parameters) if p.kind is inspect.Parameter.VAR_KEYWORD), len(parameters))
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None) for name in own]
    wrapper.__signature__ = signature.replace(parameters=parameters[:at] + added + parameters[at:])
    return wrapper

