"""Work that releases the GIL (numpy, compiled scikit-learn) runs in threads of this process on
this machine's backends (``prefer="threads"``): in order, BLAS and each thread's OpenMP on one
thread while it runs, the caller's settings back afterwards; a screen of model strategies
starts no worker processes before its survivors' backtests."""

import os
import threading
import time
import textwrap

import pytest
import scipy.linalg  # noqa: F401 - its BLAS loaded before any limit is set, as in a screen
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
from threadpoolctl import threadpool_info, threadpool_limits

from distillbt.data.sample import sample_market
from distillbt.executor import Executor, one_blas_thread
from distillbt.screen import screen

from .strategy_sources import IMPORT, sma_cross


def _blas_threads() -> int:
    return max(info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas")


def _openmp_threads() -> int:
    return _openmp_effective_n_threads()


def _where(i):
    return i, os.getpid(), threading.current_thread().name, _blas_threads(), _openmp_threads()


def test_threads_preference_runs_here_in_order_with_one_blas_and_one_openmp_thread():
    with threadpool_limits(limits=2, user_api="blas"):
        with Executor(n_jobs=2, backend="loky") as ex:
            out = ex.map(_where, [(i,) for i in range(8)], progress=False, prefer="threads")
        assert [o[0] for o in out] == list(range(8))
        assert {o[1] for o in out} == {os.getpid()}
        assert all(o[2].startswith("distillbt") for o in out)
        assert {o[3] for o in out} == {1} and {o[4] for o in out} == {1}
        assert _blas_threads() == 2  # the caller's setting is back


def _slow(i, ran):
    time.sleep(0.2)  # long beside a loaded machine's scheduling delays: 10 jobs take a second
    ran.append(i)
    return i


def test_a_threaded_map_stopped_early_does_not_run_the_queued_jobs():
    ran = []
    with Executor(n_jobs=2, backend="loky") as ex:
        results = ex.imap(_slow, [(i,) for i in range(40)], kwargs={"ran": ran}, prefer="threads")
        assert [next(results), next(results)] == [0, 1]
        results.close()
    assert len(ran) < 10  # the running jobs finish, the queued ones are cancelled


def test_without_the_preference_loky_maps_run_in_worker_processes():
    with Executor(n_jobs=2, backend="loky") as ex:
        out = ex.map(_where, [(i,) for i in range(4)], progress=False)
    assert [o[0] for o in out] == list(range(4))
    assert os.getpid() not in {o[1] for o in out}


def test_prefer_must_be_known():
    with Executor(n_jobs=2, backend="loky") as ex, pytest.raises(ValueError, match="prefer"):
        ex.map(_where, [(0,), (1,)], progress=False, prefer="gpu")


def test_one_blas_thread_restores_once_when_entries_end_out_of_order():
    """Two threaded maps are generators: the first can end while the second still runs. BLAS
    stays on one thread until the last one ends, then the caller's two threads come back
    (threadpoolctl's own context, restoring per entry, would give two threads back while the
    second map still runs, and one thread for good after it)."""
    def inside():
        with one_blas_thread():
            yield _blas_threads()

    with threadpool_limits(limits=2, user_api="blas"):
        first, second = inside(), inside()
        assert next(first) == 1 and next(second) == 1
        first.close()
        assert _blas_threads() == 1  # the second is still inside
        second.close()
        assert _blas_threads() == 2


MODEL = textwrap.dedent('''
    from sklearn.ensemble import RandomForestClassifier
    from distillbt.strategy import ModelStrategy

    class TinyForest(ModelStrategy):
        params = (("depth", 3),)
        grid = {"depth": [2, 3], "allow_short": [True, False]}
        features = ("ret_1", "ret_4", "ma_dist_16")
        target = "direction"

        def make_estimator(self):
            return RandomForestClassifier(n_estimators=5, max_depth=self.p.depth, random_state=0, n_jobs=1)
''')


@pytest.mark.parametrize("with_plain", [False, True])
def test_workers_start_early_only_for_plain_strategies(tmp_path, monkeypatch, with_plain):
    """Model strategies need no worker process: the workers start after the model stage (for
    the survivors' backtests) unless plain strategies need them from the start."""
    import distillbt.scorers as scorers

    (tmp_path / "tiny_forest.py").write_text(MODEL)
    if with_plain:
        (tmp_path / "cross.py").write_text(IMPORT + sma_cross("Cross", fast=5, slow=30, grid={"fast": [5, 10]}))
    events = []
    warm_up, vectorised = Executor.warm_up, scorers.screen_vectorised
    monkeypatch.setattr(Executor, "warm_up", lambda self: (events.append("workers"), warm_up(self))[1])
    monkeypatch.setattr(scorers, "screen_vectorised", lambda *a, **k: (events.append("models"), vectorised(*a, **k))[1])
    threaded = screen(tmp_path, sample_market(bars=6_000, seed=2), n_jobs=2, progress=False, top=2)
    assert "workers" in events and "models" in events
    assert (events.index("workers") < events.index("models")) is with_plain
    inline = screen(tmp_path, sample_market(bars=6_000, seed=2), n_jobs=1, progress=False, top=2)
    assert [(r.name, r.screen_score) for r in threaded.records] == [(r.name, r.screen_score) for r in inline.records]


def test_ready_returns_with_the_workers_started():
    with Executor(n_jobs=2, backend="loky") as ex:
        ex.ready()
        assert ex._warming is not None and not ex._warming.is_alive()  # imports done in each worker
        assert [o[0] for o in ex.map(_where, [(0,), (1,)], progress=False)] == [0, 1]
