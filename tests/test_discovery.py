"""Strategy discovery: files → strategy classes → configurations."""

import pickle
import sys
import textwrap
from pathlib import Path

import pytest

from distillbt.discovery import (
    Configuration,
    StrategyError,
    StrategySpec,
    configuration_name,
    discover,
    expand_grid,
)
from distillbt.errors import InputError

from .strategy_sources import IMPORT, sma_cross

REPO = Path(__file__).resolve().parents[1]

SMA = IMPORT + sma_cross("SmaCross", fast=10, slow=50, grid={"fast": [5, 10], "slow": [50, 100, 200]})

TWO = """
import backtrader as bt

class First(bt.Strategy):
    params = (("n", 3),)

class Second(First):
    grid = {"n": [1, 2]}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def test_zero_one_and_several_strategies_per_file(tmp_path):
    write(tmp_path, "a_sma.py", SMA)
    write(tmp_path, "b_two.py", TWO)
    write(tmp_path, "c_none.py", "import backtrader as bt\nHELPER = 1\n")
    found = discover(tmp_path)
    assert [s.name for s in found.strategies] == ["SmaCross", "First", "Second"]
    assert found.errors == []
    assert found.strategies[0].file == str((tmp_path / "a_sma.py").resolve())
    # Backtrader needs the module in sys.modules under the class's module name.
    for spec in found.strategies:
        assert sys.modules[spec.module] is sys.modules[spec.cls.__module__]


def test_import_error_is_reported_and_the_rest_is_discovered(tmp_path):
    write(tmp_path, "broken.py", "import backtrader as bt\nimport no_such_package_xyz\n")
    write(tmp_path, "syntax.py", "def oops(:\n")
    write(tmp_path, "raises.py", "raise RuntimeError('boom at import\\nsecond line')\n")
    write(tmp_path, "sma.py", SMA)
    found = discover(tmp_path)
    assert [s.name for s in found.strategies] == ["SmaCross"]
    errors = {e.file: e.message for e in found.errors}
    assert errors["broken.py"] == "ModuleNotFoundError: No module named 'no_such_package_xyz'"
    assert errors["syntax.py"].startswith("SyntaxError:") and "line 1" in errors["syntax.py"]
    assert errors["raises.py"] == "RuntimeError: boom at import"
    assert all("\n" not in m for m in errors.values())
    assert not any(name.startswith("distillbt_user_broken") for name in sys.modules)


def test_imported_classes_and_underscore_files_are_skipped(tmp_path):
    write(tmp_path, "_helpers.py",
          "import backtrader as bt\nclass Hidden(bt.Strategy):\n    pass\n")
    write(tmp_path, "uses.py", """
        import backtrader as bt
        from backtrader.strategies import MA_CrossOver   # imported: not ours
        from _helpers import Hidden                      # the folder is importable

        class Mine(Hidden):
            pass
        """)
    found = discover(tmp_path)
    assert [s.name for s in found.strategies] == ["Mine"]


def test_grid_expansion_and_names(tmp_path):
    write(tmp_path, "sma.py", SMA)
    write(tmp_path, "two.py", TWO)
    configs = discover(tmp_path).configurations()
    names = [c.name for c in configs]
    assert names[:6] == [
        "SmaCross(fast=5, slow=50)", "SmaCross(fast=5, slow=100)", "SmaCross(fast=5, slow=200)",
        "SmaCross(fast=10, slow=50)", "SmaCross(fast=10, slow=100)", "SmaCross(fast=10, slow=200)",
    ]
    assert names[6:] == ["First", "Second(n=1)", "Second(n=2)"]  # no grid: one, the defaults
    assert configs[0].params == {"fast": 5, "slow": 50}
    assert configs[6].params == {}
    assert configuration_name("X", {"mode": "fast", "k": 0.5}) == "X(mode='fast', k=0.5)"


def test_bad_grid_key_is_named(tmp_path):
    write(tmp_path, "bad.py", """
        import backtrader as bt

        class Bad(bt.Strategy):
            params = (("fast", 10),)
            grid = {"fast": [1], "fsat": [2]}
        """)
    write(tmp_path, "sma.py", SMA)
    found = discover(tmp_path)
    assert [s.name for s in found.strategies] == ["SmaCross"]
    (problem,) = found.errors
    assert problem.file == "bad.py"
    assert "'fsat' is not a parameter of Bad" in problem.message


def test_expand_grid_raises_for_a_bad_grid(tmp_path):
    write(tmp_path, "sma.py", SMA)
    cls = discover(tmp_path).strategies[0].cls
    cls.grid = {"slow": []}
    try:
        with pytest.raises(StrategyError, match=r"SmaCross.grid\['slow'\] must be a non-empty"):
            expand_grid(StrategySpec.from_class(cls))
        cls.grid = {"nope": [1]}
        with pytest.raises(StrategyError, match="'nope' is not a parameter of SmaCross"):
            expand_grid(StrategySpec.from_class(cls))
    finally:
        del cls.grid


@pytest.mark.parametrize("setup, message", [
    (lambda p: p / "missing", "strategy folder not found"),
    (lambda p: p, "no .py files"),
    (lambda p: write(p, "x.py", "X = 1\n").parent, "no Backtrader strategies found"),
])
def test_folder_errors_are_one_line(tmp_path, setup, message):
    with pytest.raises(StrategyError, match=message) as info:
        discover(setup(tmp_path))
    assert "\n" not in str(info.value)
    assert isinstance(info.value, InputError)


def test_module_names_are_stable_and_follow_the_content(tmp_path):
    path = write(tmp_path, "sma.py", SMA)
    first = discover(tmp_path).strategies[0].module
    assert discover(tmp_path).strategies[0].module == first
    path.write_text(SMA + "\n# edited\n")
    assert discover(tmp_path).strategies[0].module != first


def test_spec_pickles_as_strings_and_reimports_by_path(tmp_path):
    write(tmp_path, "sma.py", SMA)
    config = discover(tmp_path).configurations()[0]
    blob = pickle.dumps(config)
    old = config.strategy.cls
    del sys.modules[config.strategy.module]  # a fresh worker: the module is not loaded yet
    clone = pickle.loads(blob)
    assert isinstance(clone, Configuration) and clone == config
    cls = clone.strategy.cls
    assert cls is not old and cls.__name__ == "SmaCross"
    assert cls.__module__ == config.strategy.module
    assert config.strategy.module in sys.modules


def test_from_class_refuses_main():
    import backtrader as bt

    cls = type("Local", (bt.Strategy,), {"__module__": "__main__"})
    with pytest.raises(StrategyError, match="__main__"):
        StrategySpec.from_class(cls)


def test_the_shipped_plain_strategies_are_discovered():
    found = discover(REPO / "strategies")
    names = {s.name for s in found.strategies}
    assert {"SmaCross", "RsiReversion", "DonchianBreakout"} <= names
    assert not [e for e in found.errors if e.file in
                ("sma_cross.py", "rsi_reversion.py", "donchian_breakout.py")]
