"""Choosing configurations: class constraints, --grid overrides, --config files, --sample-configs
and --top clamping — through discovery and through the command line on real Backtrader
strategies written to disk (small sample market, full backtests: a few seconds a screen)."""

import json
import textwrap

import pytest

from distillbt.cli import main
from distillbt.discovery import StrategyError, StrategyFolder, discover
from distillbt.errors import InputError
from distillbt.screen_config import grid_overrides, parse_grid_option, parse_values

from .strategy_sources import IMPORT, sma_cross

#: SmaCross with a constraint written as a plain lambda class attribute (never bound).
CONSTRAINED = IMPORT + sma_cross("SmaCross", fast=10, slow=50, grid={"fast": [5, 10, 20, 50], "slow": [20, 50]}) \
    + "    constraint = lambda p: p.fast < p.slow\n"
#: A second strategy whose constraint reads a default (``slow`` is not in its grid), as a staticmethod.
STATIC = IMPORT + sma_cross("Slow", fast=10, slow=30, grid={"fast": [10, 20, 30, 40]}) \
    + "    constraint = staticmethod(lambda p: p['fast'] < p.slow)\n"
BASE = ["--sample-bars", "5000", "--plain", "full", "--no-progress", "--no-cache"]


def _write(folder, name, text):
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(textwrap.dedent(text))
    return folder


@pytest.fixture
def folder(tmp_path):
    _write(tmp_path / "strategies", "sma.py", CONSTRAINED)
    return _write(tmp_path / "strategies", "slow.py", STATIC)


def _screen(capsys, *argv):
    """``screen --json`` through the CLI: (exit code, parsed JSON or None, stderr)."""
    code = main(["screen", *argv, "--json"])
    printed = capsys.readouterr()
    return code, (json.loads(printed.out) if code == 0 else None), printed.err


def _names(result) -> set:
    return {r["name"] for r in result["records"]}


# -- discovery ------------------------------------------------------------------------------
def test_constraints_drop_the_right_configurations_in_every_spelling(folder):
    _write(folder, "more.py", IMPORT + textwrap.dedent('''
        class AsFunction(bt.Strategy):
            params = (("a", 1), ("b", 2))
            grid = {"a": [1, 2, 3], "b": [1, 2, 3]}

            def constraint(p):          # a function in the class body: read off the class, not bound
                return p.a != p.b

        class AsClassmethod(bt.Strategy):
            params = (("a", 1),)
            grid = {"a": [1, 2, 3, 4]}

            @classmethod
            def constraint(cls, p):
                return p.a % 2 == 0
        '''))
    found = discover(folder)
    names = [c.name for c in found.configurations()]
    assert [n for n in names if n.startswith("SmaCross")] == [
        "SmaCross(fast=5, slow=20)", "SmaCross(fast=5, slow=50)", "SmaCross(fast=10, slow=20)",
        "SmaCross(fast=10, slow=50)", "SmaCross(fast=20, slow=50)"]
    assert [n for n in names if n.startswith("Slow")] == ["Slow(fast=10)", "Slow(fast=20)"]  # default slow=30
    assert [n for n in names if n.startswith("AsFunction")] == [
        "AsFunction(a=1, b=2)", "AsFunction(a=1, b=3)", "AsFunction(a=2, b=1)", "AsFunction(a=2, b=3)",
        "AsFunction(a=3, b=1)", "AsFunction(a=3, b=2)"]
    assert [n for n in names if n.startswith("AsClassmethod")] == ["AsClassmethod(a=2)", "AsClassmethod(a=4)"]
    summary = found.selection_summary()
    assert summary["constraint_dropped"] == {"SmaCross": 3, "Slow": 2, "AsFunction": 3, "AsClassmethod": 2}
    assert summary["configurations_before_sampling"] == len(names) == 15
    assert summary["sampled_configurations"] is None and found.errors == []


def test_a_constraint_that_raises_is_its_files_problem_and_the_batch_goes_on(folder):
    _write(folder, "typo.py", IMPORT + sma_cross("Typo", grid={"fast": [5, 10]})
           + "    constraint = staticmethod(lambda p: p.fsat < p.slow)\n")
    _write(folder, "not_callable.py", IMPORT + sma_cross("NotCallable") + "    constraint = True\n")
    found = discover(folder)
    problems = {p.file: p.message for p in found.errors}
    assert "constraint must be a function" in problems["not_callable.py"]
    names = [c.name for c in found.configurations()]
    assert not any(n.startswith(("Typo", "NotCallable")) for n in names) and len(names) == 7
    problems = {p.file: p.message for p in found.errors}
    message = problems["typo.py"]
    assert message.startswith("Typo.constraint raised on Typo(fast=5): AttributeError: ")
    assert "no parameter 'fsat'" in message and "\n" not in message
    found.configurations()
    assert len(found.errors) == 2  # chosen once: asking again adds nothing


def test_grid_overrides_replace_or_add_parameters_and_unknown_names_are_refused(folder):
    found = discover(folder, grid={"SmaCross": {"fast": range(5, 20, 5)}, "Slow.slow": [25, 35]})
    names = [c.name for c in found.configurations()]
    assert [n for n in names if n.startswith("SmaCross")] == [
        "SmaCross(fast=5, slow=20)", "SmaCross(fast=5, slow=50)", "SmaCross(fast=10, slow=20)",
        "SmaCross(fast=10, slow=50)", "SmaCross(fast=15, slow=20)", "SmaCross(fast=15, slow=50)"]
    # slow added after the class's own grid key; the constraint sees the overridden values
    assert [n for n in names if n.startswith("Slow")] == [
        "Slow(fast=10, slow=25)", "Slow(fast=10, slow=35)", "Slow(fast=20, slow=25)", "Slow(fast=20, slow=35)",
        "Slow(fast=30, slow=35)"]
    for grid, needle in [({"Nope": {"fast": [1]}}, "no strategy named 'Nope'"),
                         ({"SmaCross": {"fsat": [1]}}, "'fsat' is not a parameter of SmaCross"),
                         ({"SmaCross": {"fast": []}}, "SmaCross.fast has no values"),
                         ({"SmaCross": {"fast": 5}}, "must be a list of values")]:
        with pytest.raises(StrategyError, match=needle):
            discover(folder, grid=grid)


def test_sampling_is_per_strategy_after_the_constraint_and_seeded(folder):
    grid = {"SmaCross": {"fast": range(2, 40), "slow": [20, 50]}}

    def draw(seed):
        return [c.name for c in discover(folder, grid=grid, sample_configs=5, seed=seed).configurations()]

    first = discover(folder, grid=grid, sample_configs=5, seed=1)
    chosen = first.configurations()
    assert [c.name for c in chosen] == draw(1)  # the same seed, the same draw
    assert draw(2) != draw(1)
    smas = [c for c in chosen if c.strategy.name == "SmaCross"]
    assert len(smas) == 5 and all(c.params["fast"] < c.params["slow"] for c in smas)
    assert smas == sorted(smas, key=lambda c: (c.params["fast"], c.params["slow"]))  # grid order kept
    summary = first.selection_summary()
    # SmaCross: 38 × 2 = 76, minus fast >= slow (20..39 with slow 20: 20; none with 50) = 56; Slow: 2
    assert summary["constraint_dropped"]["SmaCross"] == 20
    assert summary["configurations_before_sampling"] == 56 + 2 and summary["sampled_configurations"] == 5 + 2
    with pytest.raises(InputError, match="--sample-configs"):
        discover(folder, sample_configs=0)


# -- --grid syntax --------------------------------------------------------------------------
@pytest.mark.parametrize("text, values", [
    ("5:50:5", [5, 10, 15, 20, 25, 30, 35, 40, 45, 50]),      # stop included: the steps land on it
    ("5:52:5", [5, 10, 15, 20, 25, 30, 35, 40, 45, 50]),      # they do not: it is not
    ("1:3", [1, 2, 3]),
    ("50:40:-5", [50, 45, 40]),
    ("0.1:0.5:0.1", [0.1, 0.2, 0.3, 0.4, 0.5]),                # 0.3, not 0.30000000000000004
    ("0.5:1.0:0.1", [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]),
    ("5,10,20", [5, 10, 20]),
    ("5:15:5,15,100", [5, 10, 15, 100]),                       # each value once
    ("0.5, true, none, sma, '10:30'", [0.5, True, None, "sma", "10:30"]),
    ("7", [7]),
])
def test_grid_values(text, values):
    parsed = parse_values(text)
    assert parsed == values and [type(v) for v in parsed] == [type(v) for v in values]


@pytest.mark.parametrize("text, needle", [
    ("SmaCross.fast", "expected STRATEGY.PARAM=VALUES"),
    ("fast=5", "expected STRATEGY.PARAM=VALUES"),
    ("SmaCross.fast=", "no values"),
    ("SmaCross.fast=50:5:5", "empty range"),
    ("SmaCross.fast=5:50:0", "step must not be 0"),
    ("SmaCross.fast=1,,2", "an empty value"),
    ("SmaCross.fast=1:x:2", "neither a number nor START:STOP"),
    ("SmaCross.fast=1:1e9", "more than"),
])
def test_bad_grid_options_name_the_problem(text, needle):
    with pytest.raises(InputError, match=needle) as info:
        parse_grid_option(text)
    assert "\n" not in str(info.value)


def test_a_later_grid_option_for_the_same_parameter_wins():
    options = [parse_grid_option(t) for t in ("A.x=1:3", "A.y=1", "A.x=7,8", "B.x=0")]
    assert grid_overrides(options) == {"A": {"x": [7, 8], "y": [1]}, "B": {"x": [0]}}


# -- the command line -----------------------------------------------------------------------
def test_cli_constraint_and_grid_override(folder, capsys):
    code, result, err = _screen(capsys, str(folder), *BASE, "--top", "2", "--grid", "SmaCross.fast=5:25:10",
                                "--grid", "Slow.fast=10,20,30,40")
    assert code == 0, err
    assert _names(result) == {"SmaCross(fast=5, slow=20)", "SmaCross(fast=5, slow=50)", "SmaCross(fast=15, slow=20)",
                              "SmaCross(fast=15, slow=50)", "SmaCross(fast=25, slow=50)", "Slow(fast=10)",
                              "Slow(fast=20)"}
    s = result["summary"]
    assert s["constraint_dropped"] == {"SmaCross": 1, "Slow": 2} and s["configurations"] == 7
    assert s["grid_overrides"] == {"SmaCross": {"fast": [5, 15, 25]}, "Slow": {"fast": [10, 20, 30, 40]}}
    assert s["notes"] == [] and len(s["survivors"]) == 2
    # the text output says the same
    assert main(["screen", str(folder), *BASE, "--top", "2", "--grid", "SmaCross.fast=5:25:10"]) == 0
    out = capsys.readouterr().out
    assert "constraints dropped 3 configurations before screening (Slow 2, SmaCross 1)" in out  # files in name order
    assert "--grid SmaCross: fast = 5, 15, 25" in out


def test_cli_top_larger_than_the_batch_is_clamped_with_a_note(folder, capsys):
    code, result, err = _screen(capsys, str(folder), *BASE, "--top", "10", "--grid", "SmaCross.fast=5",
                                "--grid", "Slow.fast=10")
    assert code == 0, err
    s = result["summary"]
    assert s["configurations"] == 3 and len(s["survivors"]) == 3
    assert s["notes"] == ["--top 10 > 3 configurations: all 3 are survivors"]
    assert all(r["survivor"] and r["holdout_score"] is not None for r in result["records"])


def test_cli_sample_configs_is_deterministic_per_seed(folder, capsys):
    argv = [str(folder), *BASE, "--top", "1", "--grid", "SmaCross.fast=2:39", "--sample-configs", "4"]
    code, first, err = _screen(capsys, *argv, "--seed", "3")
    assert code == 0, err
    code, again, _ = _screen(capsys, *argv, "--seed", "3")
    assert code == 0 and _names(again) == _names(first)
    s = first["summary"]
    assert s["sample_configs"] == 4 and s["sampled_configurations"] == 4 + 2 == s["configurations"]
    assert s["configurations_before_sampling"] == 56 + 2
    # the CLI draws what the API draws with the same seed
    expected = discover(StrategyFolder(folder, grid={"SmaCross": {"fast": range(2, 40)}}, sample_configs=4,
                                       seed=3)).configurations()
    assert _names(first) == {c.name for c in expected}
    other = discover(folder, grid={"SmaCross": {"fast": range(2, 40)}}, sample_configs=4, seed=4).configurations()
    assert {c.name for c in other} != _names(first)


def test_cli_config_file_and_command_line_precedence(folder, tmp_path, capsys):
    config = tmp_path / "screen.toml"
    config.write_text(textwrap.dedent(f'''
        folder = "{folder}"
        sample-bars = 5000
        plain = "full"
        no_progress = true
        no-cache = true
        top = 1
        cash = 5000
        commission = 0.002
        validate = true
        grid = ["SmaCross.fast=5:25:10", "Slow.fast=10,20"]
        '''))
    code, result, err = _screen(capsys, "--config", str(config))
    assert code == 0, err
    s = result["summary"]
    assert (s["cash"], s["commission"], len(s["survivors"]), s["validation"]) == (5000.0, 0.002, 1, "all")
    assert s["grid_overrides"] == {"SmaCross": {"fast": [5, 15, 25]}, "Slow": {"fast": [10, 20]}}
    # explicit flags win; --grid adds to the file's entries (the command line's per STRATEGY.PARAM);
    # --validate-sample drops the file's --validate (they do not mix)
    code, result, err = _screen(capsys, "--config", str(config), "--cash", "20000", "--top", "2",
                                "--grid", "Slow.fast=10", "--validate-sample", "3")
    assert code == 0, err
    s = result["summary"]
    assert (s["cash"], s["commission"], len(s["survivors"]), s["validation"]) == (20000.0, 0.002, 2, "sample")
    assert s["grid_overrides"] == {"SmaCross": {"fast": [5, 15, 25]}, "Slow": {"fast": [10]}}


@pytest.mark.parametrize("argv, config, needle", [
    (["--grid", "Nope.fast=1,2"], None, "no strategy named 'Nope'"),
    (["--grid", "SmaCross.fsat=1"], None, "'fsat' is not a parameter of SmaCross"),
    (["--grid", "SmaCross.fast"], None, "expected STRATEGY.PARAM=VALUES"),
    (["--grid", "SmaCross.fast=9:1"], None, "empty range"),
    (["--top", "0"], None, "--top must be at least 1"),
    (["--top", "-3"], None, "--top must be at least 1"),
    (["--sample-configs", "0"], None, "--sample-configs must be at least 1"),
    (["--grid", "SmaCross.slow=5", "--grid", "Slow.slow=5"], None, "the constraints dropped all 8"),
    ([], "topp = 3", "unknown key 'topp'"),
    ([], "top = 2.5", "top must be a whole number"),
    ([], 'plain = "fast"', "plain must be one of surrogate, replay, full"),
    ([], "validate = true\nvalidate-sample = 4", "--validate and --validate-sample do not mix"),
    ([], "top = ", "not valid TOML"),
    ([], None, "no such file"),
])
def test_cli_bad_input_exits_2_with_one_line(folder, tmp_path, capsys, argv, config, needle):
    if config is not None or not argv:
        path = tmp_path / "screen.toml"
        if config is not None:
            path.write_text(config + "\n")
        argv = ["--config", str(path)]
    code = main(["screen", str(folder), *BASE, *argv])
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("data:")]
    assert code == 2 and len(err) == 1 and needle in err[0], err
