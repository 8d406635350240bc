"""One executor for every parallel step: the same results on loky, threads and Dask (a
LocalCluster, and a scheduler + workers started as processes), one cluster per command, log
levels from -v / -q."""

import inspect
import json
import logging
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from distillbt import cli
from distillbt.data.sample import sample_market
from distillbt.distill.prepare import prepare
from distillbt.distill.runner import distill
from distillbt.errors import InputError
from distillbt.executor import Executor, current, using
from distillbt.screen import screen

from .strategy_sources import IMPORT, sma_cross

pytest.importorskip("dask.distributed")

ROOT = Path(__file__).resolve().parents[1]
MODEL = textwrap.dedent('''
    from distillbt.models import Ridge
    from distillbt.strategy import ModelStrategy

    class TinyRidge(ModelStrategy):
        params = (("alpha", 0.1),)
        grid = {"alpha": [0.01, 1.0], "allow_short": [True, False]}
        features = ("ret_1", "ret_4", "ma_dist_16")
        target = "return"

        def make_estimator(self):
            return Ridge(alpha=self.p.alpha)
''')
PLAIN = IMPORT + sma_cross("Cross", fast=5, slow=30, grid={"fast": [5, 10]})
BARS, SEED = 6_000, 2


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("strategies")
    (path / "tiny_ridge.py").write_text(MODEL)
    (path / "cross.py").write_text(PLAIN)
    return path


@pytest.fixture(scope="module")
def candles():
    return sample_market(bars=BARS, seed=SEED)


@pytest.fixture(scope="module")
def dask_local():
    """One LocalCluster of 2 workers for the module, started but not active: a test activates
    it with ``with dask_local:`` (the cluster outlives the block)."""
    executor = Executor(n_jobs=2, backend="dask").start()
    try:
        yield executor
    finally:
        executor.close()


def _screen_kwargs():
    # plain strategies through the surrogate (records on the workers, fits in threads), not the
    # full backtests a short history gets by default
    return {"min_speedup": 0} if "min_speedup" in inspect.signature(screen).parameters else {}


def _scores(result):
    return [(r.name, r.screen_score, r.full_score, r.path, r.error) for r in result.records]


def test_distill_is_the_same_on_every_backend(candles, dask_local):
    data = prepare(candles)
    options = dict(method="random", size=10, per_regime=True, seed=3)
    reference = distill(data, **options)
    runs = {backend: distill(data, n_jobs=2, backend=backend, **options) for backend in ("loky", "threading")}
    with dask_local:
        runs["dask"] = distill(data, n_jobs=2, backend="dask", **options)
    for backend, run in runs.items():
        assert run.meta["backend"] == backend
        np.testing.assert_array_equal(run.X, reference.X)
        np.testing.assert_array_equal(run.y, reference.y)
        np.testing.assert_array_equal(run.weight, reference.weight)


def test_screen_is_the_same_on_every_backend_and_dask_starts_one_cluster(folder, candles, dask_local,
                                                                           monkeypatch):
    options = dict(size=20, top=3, progress=False, method="random", **_screen_kwargs())
    reference = _scores(screen(folder, candles, **options))
    assert any(path in ("surrogate", "surrogate+escalated", "full") for _, _, _, path, _ in reference)
    for backend in ("loky", "threading"):
        assert _scores(screen(folder, candles, n_jobs=2, backend=backend, **options)) == reference, backend

    import dask.distributed

    def no_second_cluster(*args, **kwargs):
        raise AssertionError("a nested call started a second LocalCluster")

    monkeypatch.setattr(dask.distributed, "LocalCluster", no_second_cluster)
    with dask_local as active:
        assert current() is active
        assert _scores(screen(folder, candles, n_jobs=2, backend="dask", **options)) == reference
        with using(n_jobs=4, backend="loky") as nested:  # a nested step runs on the active one
            assert nested is active
    assert current() is None and dask_local.client is not None  # still started by the fixture


def test_executor_runs_in_order_and_checks_its_input():
    with Executor(n_jobs=2, backend="threading") as ex:
        assert ex.map(pow, [(2, k) for k in range(6)], progress=False) == [1, 2, 4, 8, 16, 32]
        assert ex.thread_map(pow, [(3, k) for k in range(4)]) == [1, 3, 9, 27]
    assert Executor().map(divmod, [(7, 2)], progress=False) == [(3, 1)]  # in this process
    with pytest.raises(InputError, match="unknown backend"):
        Executor(backend="ray")
    with pytest.raises(InputError, match="n_jobs"):
        Executor(n_jobs=0)



def _slow_square(k, block):
    time.sleep(0.01)
    if k < 0:
        raise ValueError(f"negative {k}")
    return k * k + float(block.sum()) * 0.0


@pytest.mark.filterwarnings("ignore:.*tasks.*:UserWarning")  # joblib on the map dropped on purpose
def test_warming_the_workers_up_changes_no_result_and_never_hangs():
    """warm_up starts the workers in the background: a map right after it waits for it and gets
    its own results, a second warm_up is a no-op, closing during one returns, and an executor
    that runs in this process (or is not entered) ignores it."""
    import threading

    block = np.ones(10)
    with Executor(n_jobs=2, backend="loky") as ex:
        ex.warm_up()
        warming = ex._warming
        assert isinstance(warming, threading.Thread)
        ex.warm_up()
        assert ex._warming is warming  # one warm-up per pool
        assert ex.map(_slow_square, [(k, block) for k in range(5)], progress=False) == [k * k for k in range(5)]
        assert not warming.is_alive()
    with Executor(n_jobs=2, backend="loky") as ex:
        ex.warm_up()  # closed while the workers may still be importing
    assert ex._warming is None and ex._pool is None
    serial = Executor(n_jobs=1)
    with serial:
        serial.warm_up()
        assert serial._warming is None
    Executor(n_jobs=2).warm_up()  # not entered: nothing to warm


def _loky_memory_room(_):
    from joblib.externals.loky import process_executor

    return process_executor._MAX_MEMORY_LEAK_SIZE


def test_workers_are_not_restarted_for_memory_a_backtest_gives_back():
    """Loky restarts a worker whose memory grew 300 MB past its first job; a 100,000-bar
    backtest holds that much while it runs. Every job of ours runs with more room."""
    from distillbt.executor import WORKER_MEMORY_ROOM

    with using(n_jobs=2, backend="loky") as executor:
        rooms = executor.map(_loky_memory_room, [(k,) for k in range(4)], progress=False)
    assert rooms == [WORKER_MEMORY_ROOM] * 4


def _written_into(k, *, frame, block, scale):
    """What a job sees of its keyword arguments, after writing into its own copy of them."""
    seen = (float(frame["close"].iloc[k]), float(block[k]), scale(k))
    block[k] = -1.0  # its own copy: no other job, and not the caller, sees this
    return seen, float(block[(k + 1) % len(block)]), isinstance(block, np.memmap)


def _scaled(k, *, scale):
    return scale(k)


def test_keyword_arguments_are_written_once_and_every_job_reads_its_own_copy():
    """A map's keyword arguments (the same for every job) reach the workers memory-mapped from
    one file written for the map — loky would hash their arrays again for every job — as
    copies each job may write into; the file is gone after the map. What pickle cannot write
    (a lambda) still travels with every job."""
    import glob

    frame = sample_market(bars=200_000, seed=3).frame  # arrays past loky's own 1 MB threshold
    block = np.arange(200_000, dtype=np.float64)
    before = set(glob.glob("/dev/shm/distillbt-map-*"))
    with Executor(n_jobs=2, backend="loky") as ex:
        out = ex.map(_written_into, [(k,) for k in range(6)],
                     kwargs={"frame": frame, "block": block, "scale": np.sqrt}, progress=False)
        with_lambda = ex.map(_scaled, [(k,) for k in range(2)], kwargs={"scale": lambda k: 2 * k}, progress=False)
    assert [o[0] for o in out] == [(float(frame["close"].iloc[k]), float(k), float(np.sqrt(k))) for k in range(6)]
    assert [o[1] for o in out] == [float(k + 1) for k in range(6)]  # the job before wrote into its own copy
    assert all(o[2] for o in out)
    assert with_lambda == [0, 2]
    assert block[:7].tolist() == [float(k) for k in range(7)]
    assert set(glob.glob("/dev/shm/distillbt-map-*")) == before


def test_the_started_pool_gives_each_map_its_own_results():
    """A started loky executor keeps one worker pool for its maps: a map dropped half-way, one
    that raised, and maps from two threads at once each still get exactly their own results."""
    block = np.ones(400_000)  # large enough for joblib to memory-map it
    with Executor(n_jobs=2, backend="loky") as ex:
        assert ex.map(_slow_square, [(k, block) for k in range(6)], progress=False) == [k * k for k in range(6)]
        dropped = ex.imap(_slow_square, [(k, block) for k in range(100, 140)])
        assert next(dropped) == 100 * 100
        dropped.close()
        assert ex.map(_slow_square, [(k, block) for k in range(5)], progress=False) == [k * k for k in range(5)]
        with pytest.raises(ValueError, match="negative -3"):
            ex.map(_slow_square, [(k, block) for k in (1, -3, 2, 4)], progress=False)
        assert ex.map(_slow_square, [(k, block) for k in range(4)], progress=False) == [0, 1, 4, 9]

        def in_thread(offset):
            return list(ex.imap(_slow_square, [(offset + k, block) for k in range(8)]))

        both = ex.thread_map(in_thread, [(0,), (50,)])
        assert both == [[k * k for k in range(8)], [(50 + k) ** 2 for k in range(8)]]

        def entered_in_thread(offset):  # a step entering the executor from a thread (map does)
            return ex.map(_slow_square, [(offset + k, block) for k in range(4)], progress=False)

        both = ex.thread_map(entered_in_thread, [(0,), (50,)])
        assert both == [[k * k for k in range(4)], [(50 + k) ** 2 for k in range(4)]]
        assert current() is ex
    assert current() is None

@pytest.fixture(scope="module")
def remote_scheduler(tmp_path_factory):
    """``dask scheduler`` and ``dask worker`` processes on the loopback address; the scheduler's
    address from its --scheduler-file. Always terminated."""
    from dask.distributed import Client

    where = tmp_path_factory.mktemp("dask")
    scheduler_file = where / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]
    processes, address = [], None
    try:
        processes.append(subprocess.Popen(
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(scheduler_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=where))
        deadline = time.monotonic() + 30
        while address is None:
            assert time.monotonic() < deadline and processes[0].poll() is None, "the scheduler did not start"
            try:
                address = json.loads(scheduler_file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        processes.append(subprocess.Popen(
            [*dask, "worker", address, "--host", "127.0.0.1", "--nworkers", "2", "--nthreads", "1",
             "--no-dashboard", "--local-directory", str(where)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=where))
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        if address is not None and processes[0].poll() is None:
            try:
                with Client(address, timeout=10) as client:  # the quick way down for scheduler and workers
                    client.shutdown()
            except Exception:  # noqa: BLE001 - terminated below all the same
                pass
        for process in reversed(processes):
            if process.poll() is None:
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.terminate()
        for process in reversed(processes):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_cli_screen_on_a_running_scheduler_gives_the_loky_scores(folder, remote_scheduler, tmp_path, capsys):
    argv = ["screen", str(folder), "--data", "sample", "--sample-bars", str(BARS), "--seed", str(SEED),
            "--method", "random", "--size", "20", "--top", "3", "--no-progress", "--json"]
    assert cli.main([*argv, "--jobs", "2"]) == 0  # loky
    loky = json.loads(capsys.readouterr().out)
    run = subprocess.run([sys.executable, "-m", "distillbt", "-v", *argv, "--backend", "dask",
                          "--scheduler", remote_scheduler], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"scheduler {remote_scheduler}" in run.stderr  # -v: the executor's start
    dask = json.loads(run.stdout)
    key = lambda r: (r["name"], r["screen_score"], r.get("full_score"), r["error"])  # noqa: E731
    assert [key(r) for r in dask["records"]] == [key(r) for r in loky["records"]]


def test_strategy_files_a_remote_worker_cannot_read_fail_in_one_line(folder, remote_scheduler, monkeypatch):
    import distillbt.executor as executor_module

    monkeypatch.setattr(executor_module, "_sha256", lambda path: "not what the workers read")
    with Executor(backend="dask", scheduler=remote_scheduler) as ex:
        with pytest.raises(InputError, match=r"Dask worker .* has a different .*cross\.py") as error:
            ex.require_files(sorted(folder.glob("*.py")))
    assert "\n" not in str(error.value)


def test_verbose_logs_and_quiet_hides_warnings(tmp_path, capsys):
    distill_argv = ["distill", "--data", "sample", "--sample-bars", "5000", "--method", "random", "--size", "10",
                    "--no-progress", "--out", str(tmp_path / "set.npz")]
    assert cli.main(["-v", *distill_argv]) == 0
    err = capsys.readouterr().err
    assert "distillbt.executor: INFO: executor: loky with 1 job(s)" in err.splitlines()

    contradictory = [*distill_argv, "--backend", "loky", "--scheduler", "tcp://127.0.0.1:9"]
    assert cli.main(contradictory) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if "WARNING" in line]
    assert warning == ["distillbt.executor: WARNING: scheduler tcp://127.0.0.1:9 is for the dask backend: "
                       "ignored on loky"]
    assert cli.main(["-q", *contradictory]) == 0
    assert "WARNING" not in capsys.readouterr().err


def test_retries_and_the_bar_by_bar_fallback_are_logged(folder, candles, caplog):
    import ccxt

    from distillbt.backtest import run_backtest
    from distillbt.data.bybit import BybitClient
    from distillbt.discovery import load_strategy_file

    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) == 1:
            raise ccxt.NetworkError("connection reset by peer")
        return "page"

    caplog.set_level(logging.INFO, logger="distillbt")
    assert BybitClient(sleep=lambda seconds: None)._call(flaky) == "page"
    cross = load_strategy_file(folder / "cross.py").Cross
    result = run_backtest(cross, candles.rows(slice(0, 20)), params={"fast": 5, "slow": 30})  # feed < period
    assert result["bars"] == 20
    messages = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert any(name == "distillbt.data.bybit" and level == "WARNING" and "retry 1 of 6" in text
               for name, level, text in messages), messages
    assert any(name == "distillbt.backtest" and "bar by bar" in text for name, _, text in messages), messages
