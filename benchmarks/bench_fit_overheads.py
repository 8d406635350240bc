"""Two fixed costs of the model path, measured side by side.

1. scikit-learn's histogram boosting fitted on weighted points: with scikit-learn's own binning
   (one sort per bin edge in 1.8–1.9), with distillbt's one-pass stand-in
   (:mod:`distillbt._weighted_binning`, the same thresholds), and unweighted for reference.
2. A loky executor's first map: cold (the workers spawn and import the pipeline), after
   :meth:`~distillbt.executor.Executor.warm_up` had time to finish, and a second map.

::

    python benchmarks/bench_fit_overheads.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distillbt._weighted_binning import fast_weighted_binning  # noqa: E402
from distillbt.executor import Executor  # noqa: E402


def _best(fit, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fit()
        times.append(time.perf_counter() - started)
    return min(times)


def boosting() -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.default_rng(0)
    print("| points | features | scikit-learn's binning s | one-pass stand-in s | unweighted s |")
    print("|---:|---:|---:|---:|---:|")
    for n, d in ((2_000, 7), (8_514, 7), (8_514, 20), (17_028, 20)):
        X = rng.normal(size=(n, d))
        y = 0.1 * X[:, 0] + rng.normal(size=n)
        w = rng.uniform(0.2, 3.0, size=n)

        def model():
            return HistGradientBoostingRegressor(max_iter=150, early_stopping=False, random_state=0)

        def standin():
            with fast_weighted_binning():
                model().fit(X, y, sample_weight=w)

        own = _best(lambda: model().fit(X, y, sample_weight=w))
        print(f"| {n:,} | {d} | {own:.2f} | {_best(standin):.2f} | {_best(lambda: model().fit(X, y)):.2f} |")


def _nothing(k):
    """A job needing what every screen job needs: the pipeline imported in its worker."""
    import distillbt.screen  # noqa: F401

    return k


def _first_maps(warm: bool, n_jobs: int) -> tuple[float, float]:
    """In a fresh process (loky keeps its workers for the process's life): the first and the
    second map, with or without a finished warm-up before."""
    with Executor(n_jobs=n_jobs) as ex:
        if warm:
            ex.warm_up()
            ex._wait_warm_up()  # a caller with at least this much work of its own before mapping
        started = time.perf_counter()
        ex.map(_nothing, [(k,) for k in range(4)], progress=False)
        first = time.perf_counter() - started
        started = time.perf_counter()
        ex.map(_nothing, [(k,) for k in range(4)], progress=False)
        return first, time.perf_counter() - started


def pool(n_jobs: int = 2) -> None:
    import subprocess

    runs = {}
    for warm in (False, True):
        out = subprocess.run([sys.executable, __file__, "--first-maps", str(int(warm)), str(n_jobs)],
                             capture_output=True, text=True, check=True).stdout.split()
        runs[warm] = [float(x) for x in out[-2:]]
    print(f"\n| {n_jobs} loky workers, fresh process | first map s | second map s |")
    print("|---|---:|---:|")
    print(f"| cold | {runs[False][0]:.2f} | {runs[False][1]:.3f} |")
    print(f"| after warm_up | {runs[True][0]:.3f} | {runs[True][1]:.3f} |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--first-maps"]:
        print(*_first_maps(bool(int(sys.argv[2])), int(sys.argv[3])))
    else:
        boosting()
        pool()
