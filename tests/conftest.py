import os

import pytest


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path, monkeypatch):
    """No test reads the user's cache or a Bybit URL from the developer's shell."""
    monkeypatch.setenv("DISTILLBT_CACHE_DIR", str(tmp_path / "user-cache"))
    monkeypatch.delenv("DISTILLBT_BYBIT_URL", raising=False)
    monkeypatch.delenv("DISTILLBT_DEBUG", raising=False)
    yield


def pytest_configure(config):
    # Matplotlib must never try a GUI backend in tests (headless CI).
    os.environ.setdefault("MPLBACKEND", "Agg")
