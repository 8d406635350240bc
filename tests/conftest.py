import os

import pytest

# Idle BLAS and OpenMP threads wait briefly, then sleep, instead of spinning: on this suite's
# two cores a team spinning at its barriers takes the cores the other worker's team needs
# (OpenBLAS spins 2^28 cycles after every call by default; 2^4 is the least it accepts). Only
# how idle threads wait changes, not their number, how work is split, nor any result. Both
# are read when the library loads: set here, before numpy or scikit-learn is imported, in the
# controller before it starts the workers, which inherit them, as do their subprocesses.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path, monkeypatch):
    """No test reads the user's cache or a Bybit URL from the developer's shell."""
    monkeypatch.setenv("DISTILLBT_CACHE_DIR", str(tmp_path / "user-cache"))
    monkeypatch.delenv("DISTILLBT_BYBIT_URL", raising=False)
    monkeypatch.delenv("DISTILLBT_DEBUG", raising=False)
    yield


# The files that take longest (per-file totals of `--durations=0` on two workers, slowest
# first), started first. `--dist loadfile` gives each worker one file at a time; by default
# pytest-xdist hands the files out by how many tests they hold, so these files of a few slow
# tests came last and one worker ran them alone while the other had finished. Longest first,
# the last files handed out are short ones. Files not named here follow in their usual order;
# the order of the tests inside a file is kept. Reordering only: every test still runs.
SLOWEST_FILES = (
    "test_basket_screen.py", "test_evaluate.py", "test_readme.py", "test_executor.py",
    "test_gradient_matching.py", "test_examples.py", "test_resume.py", "test_report_basket.py",
    "test_screen.py", "test_live_execution.py", "test_walk_forward.py", "test_estimators.py",
    "test_distill_pipeline.py", "test_sklearn_estimators.py", "test_objectives_fills.py",
    "test_fidelity.py", "test_plain_fast_path.py", "test_strategy_output.py", "test_surrogate.py",
    "test_protective.py", "test_entry_orders.py",
    "test_report_authoring.py", "test_baseline.py", "test_horizons.py",
)


def pytest_configure(config):
    # Matplotlib must never try a GUI backend in tests (headless CI).
    os.environ.setdefault("MPLBACKEND", "Agg")
    # Hand the files out in collection order (pytest-xdist's documented --no-loadscope-reorder,
    # pytest-xdist >= 3.8), unless --loadscope-reorder is given.
    if (getattr(config.option, "loadscopereorder", None) is not None
            and "--loadscope-reorder" not in config.invocation_params.args):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(session, config, items):
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return  # one process: the order changes nothing
    rank = {name: i for i, name in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest as collected
