"""The command line's contract: help everywhere, exit codes 0/2/1, one-line errors."""

import subprocess
import sys
from pathlib import Path

import pytest

from distillbt import cli


@pytest.mark.parametrize("argv", [[], ["fetch"], ["data"], ["data", "list"], ["data", "check"]])
def test_every_command_has_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, "--help"])
    assert exit_info.value.code == 0
    assert "usage: distillbt" in capsys.readouterr().out


@pytest.mark.parametrize("argv,needle", [
    (["frobnicate"], "invalid choice"),
    (["data"], "required"),
    (["data", "check", "sample", "--sample-bars", "many"], "invalid int"),
    (["data", "check", "sample", "--sample-bars", "1"], "bars"),
    (["data", "check", "sample", "--sample-timeframe", "7x"], "timeframe"),
    (["data", "check", "no/such/file.csv"], "no such data source"),
    (["data", "check", "bybit:BTCUSDT"], "expected bybit:SYMBOL:TIMEFRAME"),
    (["screen", "strategies", "--sample-bars", "3000", "--short-training", "-1"], "--short-training must be 0"),
    (["screen", "strategies", "--sample-instruments", "2", "--sample-bars", "3000", "--short-training", "0"],
     "--short-training is for one instrument"),
])
def test_bad_usage_and_input_exit_2_with_one_line(argv, needle, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err


def test_unexpected_failure_exits_1_with_one_line(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(cli, "_cmd_data_list", broken)
    assert cli.main(["data", "list"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "internal error: RuntimeError: boom second line" in err


def test_json_output_is_machine_readable(capsys):
    import json

    assert cli.main(["data", "check", "sample", "--sample-bars", "5000", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == 5000 and summary["synthetic"] is True and summary["gaps"] == 0


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("distillbt")
    run = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.startswith("distillbt ")
