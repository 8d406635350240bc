"""What strategies print, write to stderr or log goes to one strategy log per screen, never
into the table on stdout (distillbt.capture): through the CLI on real Backtrader strategies,
inline, in loky processes and in threads; and the capture itself on every backend."""

import json
import logging
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from distillbt import capture, cli
from distillbt.executor import Executor

MARKERS = ("MODULE-IMPORTED", "ESTIMATOR-MADE", "PRINTED-BAR", "PRINTED-TRADE", "STDERR-ENTRY", "LOGGED-ENTRY",
           "LOGGED-EXIT")

PRINTING = textwrap.dedent('''
    import backtrader as bt

    class PrintingCross(bt.Strategy):
        params = (("fast", 10), ("slow", 50))
        grid = {"fast": [5, 10]}

        def __init__(self):
            self.cross = bt.indicators.CrossOver(bt.indicators.SMA(period=self.p.fast),
                                                 bt.indicators.SMA(period=self.p.slow))

        def notify_order(self, order):
            if order.status == order.Completed:
                print(f"PRINTED-TRADE {'BUY' if order.isbuy() else 'SELL'} {order.executed.price:.2f}")

        def next(self):
            print(f"PRINTED-BAR {len(self)} {self.data.close[0]:.2f}")
            if not self.position and self.cross > 0:
                self.buy()
            elif self.position and self.cross < 0:
                self.close()
''')
STDERR = textwrap.dedent('''
    import sys
    import backtrader as bt

    class StderrRsi(bt.Strategy):
        params = (("period", 14),)

        def __init__(self):
            self.rsi = bt.indicators.RSI(period=self.p.period)

        def next(self):
            if not self.position and self.rsi < 30:
                sys.stderr.write(f"STDERR-ENTRY {self.data.close[0]:.2f}\\n")
                self.buy()
            elif self.position and self.rsi > 70:
                sys.stderr.write(f"STDERR-EXIT {self.data.close[0]:.2f}\\n")
                self.close()
''')
LOGGING = textwrap.dedent('''
    import logging
    import backtrader as bt

    class LoggingBreakout(bt.Strategy):
        params = (("period", 20),)

        def __init__(self):
            self.log = logging.getLogger("userstrategy")
            self.log.setLevel(logging.INFO)
            self.log.addHandler(logging.FileHandler(OWN_LOG))  # as users do: one more per instance
            self.high = bt.indicators.Highest(self.data.high(-1), period=self.p.period)
            self.low = bt.indicators.Lowest(self.data.low(-1), period=self.p.period)

        def next(self):
            if not self.position and self.data.close[0] > self.high[0]:
                self.log.info("LOGGED-ENTRY %.2f", self.data.close[0])
                self.buy()
            elif self.position and self.data.close[0] < self.low[0]:
                self.log.warning("LOGGED-EXIT %.2f", self.data.close[0])
                self.close()
''')
MODEL = textwrap.dedent('''
    from distillbt.models import Ridge
    from distillbt.strategy import ModelStrategy

    print("MODULE-IMPORTED")

    class NoisyRidge(ModelStrategy):
        params = (("alpha", 0.1),)
        grid = {"alpha": [0.01, 1.0]}
        features = ("ret_1", "ret_4", "ma_dist_16")
        target = "return"

        def make_estimator(self):
            print(f"ESTIMATOR-MADE alpha={self.p.alpha}")
            return Ridge(alpha=self.p.alpha)
''')
QUIET = textwrap.dedent('''
    import backtrader as bt

    class Quiet(bt.Strategy):
        def __init__(self):
            self.sma = bt.indicators.SMA(period=20)

        def next(self):
            if not self.position and self.data.close[0] > self.sma[0]:
                self.buy()
            elif self.position and self.data.close[0] < self.sma[0]:
                self.close()
''')
LAST_LINE = re.compile(r"^strategy output: (.+) \((empty|1 line|\d+ lines)\)$")


@pytest.fixture
def noisy(tmp_path):
    folder = tmp_path / "strategies"
    folder.mkdir()
    own = tmp_path / "users-own.log"
    (folder / "printing.py").write_text(PRINTING)
    (folder / "stderr_writer.py").write_text(STDERR)
    (folder / "logging_user.py").write_text(f"OWN_LOG = {str(own)!r}\n" + LOGGING)
    (folder / "model.py").write_text(MODEL)
    return folder, own


def _screen(folder, *options, cwd):
    command = [sys.executable, "-m", "distillbt", "screen", str(folder), "--sample-bars", "6000", "--top", "2",
               "--no-progress", "--no-cache", *options]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd)
    assert run.returncode == 0, run.stderr[-2000:]
    return run


def _lines_of_output(text: str) -> list[str]:
    """The log's lines without its task headers."""
    return [line for line in text.splitlines() if not line.startswith("--- ")]


@pytest.mark.parametrize("options", [["--jobs", "2"], ["--jobs", "1"], ["--jobs", "2", "--backend", "threading"]],
                         ids=["loky", "inline", "threading"])
def test_strategy_output_goes_to_one_log_not_to_the_table(noisy, tmp_path, options):
    folder, own = noisy
    run = _screen(folder, *options, cwd=tmp_path)
    out_lines = run.stdout.splitlines()
    assert any(line.startswith("rank  survivor") for line in out_lines)  # the table is there
    for marker in MARKERS:
        assert marker not in run.stdout and marker not in run.stderr, marker
    assert "data: the embedded sample market" in run.stderr  # distillbt's own messages still reach stderr

    last = LAST_LINE.match(out_lines[-1])
    assert last, out_lines[-1]
    path = Path(last.group(1))
    assert path.parent.name.startswith("distillbt-")  # no --out: a temporary folder
    text = path.read_text()
    for marker in MARKERS:
        assert marker in text, marker
    body = _lines_of_output(text)
    assert last.group(2) == f"{len(body)} lines"
    # every bar of every backtest of both PrintingCross configurations was printed (and only once)
    assert sum(line.startswith("PRINTED-BAR") for line in body) > 1000
    assert re.search(r"^--- backtests: PrintingCross\(fast=5\) ---$", text, re.M)
    # the strategy's own FileHandler still got its records; each is in the strategy log once, as a record
    assert "LOGGED-ENTRY" in own.read_text()
    entries = [line for line in body if "LOGGED-" in line]
    assert entries and all(line.startswith(("INFO userstrategy: LOGGED-ENTRY ", "WARNING userstrategy: LOGGED-EXIT "))
                           for line in entries)
    assert all(a != b for a, b in zip(entries, entries[1:]))  # once per record, however many handlers


def test_show_strategy_output_writes_it_to_stderr(noisy, tmp_path):
    folder, _ = noisy
    run = _screen(folder, "--jobs", "2", "--show-strategy-output", cwd=tmp_path)
    for marker in MARKERS:
        assert marker not in run.stdout, marker
        assert marker in run.stderr, marker
    last = LAST_LINE.match(run.stdout.splitlines()[-1])
    assert last and last.group(1) == "shown on stderr"


def test_log_beside_out_and_empty_when_nothing_was_printed(tmp_path, capsys):
    folder = tmp_path / "quiet"
    folder.mkdir()
    (folder / "quiet.py").write_text(QUIET)
    out = tmp_path / "results" / "run.json"
    out.parent.mkdir()
    code = cli.main(["screen", str(folder), "--sample-bars", "4000", "--top", "1", "--no-progress", "--no-cache",
                     "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    log_path = tmp_path / "results" / "run.strategy.log"
    assert captured.out.splitlines()[-1] == f"strategy output: {log_path} (empty)"
    assert log_path.is_file() and log_path.read_text() == ""  # always created: the path printed exists
    summary = json.loads(out.read_text())["summary"]
    assert summary["strategy_log"] == str(log_path) and summary["strategy_output_lines"] == 0


def test_a_silent_screen_without_a_log_path_leaves_no_temporary_folder(tmp_path, monkeypatch, capsys):
    import tempfile

    folder = tmp_path / "quiet"
    folder.mkdir()
    (folder / "quiet.py").write_text(QUIET)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where mkdtemp would put the log
    code = cli.main(["screen", str(folder), "--sample-bars", "4000", "--top", "1", "--no-progress", "--no-cache"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.splitlines()[-1] == "strategy output: none"
    assert list(scratch.iterdir()) == []

# -- the capture itself ------------------------------------------------------------------------
def _shout(word):
    """A task as a strategy behaves: print, stderr, logging (the worker imports this module)."""
    print(f"OUT-{word}")
    sys.stderr.write(f"ERR-{word}\n")
    logging.getLogger("usercode").warning("LOG-%s", word)
    logging.getLogger("distillbt.test").warning("OURS-%s", word)  # distillbt's own: never captured
    return word.upper()


@pytest.mark.parametrize("backend,n_jobs", [("loky", 1), ("loky", 2), ("threading", 2), ("dask", 2)])
def test_every_backend_returns_results_and_logs_each_tasks_output(tmp_path, capfd, backend, n_jobs):
    if backend == "dask":
        pytest.importorskip("dask.distributed")
    words = [("alpha",), ("beta",), ("gamma",)]
    with Executor(n_jobs=n_jobs, backend=backend) as ex, capture.strategy_output(tmp_path / "s.log") as log:
        results = ex.map(print if backend == "dask" else _shout, words, desc="shout", progress=False)
    text = (tmp_path / "s.log").read_text()
    if backend == "dask":  # a builtin: importable by every worker without this test module
        assert results == [None] * 3
        assert text.count("--- shout ---") == 3 and all(f"\n{w}\n" in text for (w,) in words)
        return
    assert results == ["ALPHA", "BETA", "GAMMA"]
    for (word,) in words:
        assert text.count(f"OUT-{word}") == text.count(f"ERR-{word}") == text.count(f"LOG-{word}") == 1
        assert f"OURS-{word}" not in text
    assert log.lines == 9
    streams = capfd.readouterr()
    assert "OUT-" not in streams.out + streams.err and "LOG-" not in streams.err


def test_threads_capture_only_their_own_writes_and_basic_config_still_works(tmp_path, capsys):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    results = {}
    barrier = threading.Barrier(2)

    def task(name):
        with capture.capture_output() as mine:
            barrier.wait()
            for i in range(200):
                print(f"{name}-{i}")
            barrier.wait()
        results[name] = mine.text

    try:
        threads = [threading.Thread(target=task, args=(n,)) for n in ("left", "right")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results["left"].split() == [f"left-{i}" for i in range(200)]
        assert results["right"].split() == [f"right-{i}" for i in range(200)]

        with capture.capture_output() as inner:
            # a strategy's basicConfig must take effect (no handler of ours on the root logger)
            logging.basicConfig(level=logging.INFO, format="%(levelname)s:%(name)s:%(message)s", force=True)
            logging.getLogger("userstrategy.basic").info("BASIC-INFO")
        assert inner.text == "INFO:userstrategy.basic:BASIC-INFO\n"  # once: its handler's line, not ours too
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
    print("AFTER")  # the streams are this test's again
    assert capsys.readouterr().out == "AFTER\n"
    assert logging.Logger.callHandlers.__module__ == "logging"  # unpatched once no capture is active


def test_a_failing_task_keeps_its_output(tmp_path):
    def fails():
        print("BEFORE-FAILING")
        raise ValueError("boom")

    with capture.strategy_output(tmp_path / "s.log") as log:
        with pytest.raises(ValueError):
            Executor(n_jobs=1).map(fails, [()], desc="failing", progress=False)
    assert "--- failing ---\nBEFORE-FAILING\n" in (tmp_path / "s.log").read_text()
    assert log.lines == 1
