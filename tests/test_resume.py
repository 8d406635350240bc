"""Resume: a screen keeps each configuration's results and a rerun screens only what changed
(distillbt.result_cache), through the CLI on real Backtrader strategies."""

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from distillbt.backtest import run_many
from distillbt.baseline import baseline_job
from distillbt.cli import main
from distillbt.data.sample import sample_market
from distillbt.discovery import discover
from distillbt.records import FAST_PATHS
from distillbt.result_cache import ResultCache
from distillbt.screen import screen, screen_periods

from .strategy_sources import IMPORT, sma_cross

MODEL = textwrap.dedent('''
    from distillbt.models import Ridge
    from distillbt.strategy import ModelStrategy

    class TinyRidge(ModelStrategy):
        params = (("alpha", 0.1),)
        grid = {"alpha": [0.01, 1.0], "long_threshold": [0.0, 0.1]}
        features = ("ret_1", "ret_4", "ma_dist_16")
        target = "return"

        def make_estimator(self):
            return Ridge(alpha=self.p.alpha)
''')
CROSS = IMPORT + sma_cross("Cross", fast=5, slow=30, grid={"fast": [5, 10]})
SLOW_CROSS = IMPORT + sma_cross("SlowCross", fast=10, slow=60, grid={"fast": [10, 20]})
BARS = "6000"
#: What a rerun must give identically: each record's scores, paths, trust and backtests.
COMPARED = ("path", "screen_score", "screen_rank", "survivor", "full_score", "full_stats", "holdout_score",
            "holdout_stats", "trust", "distilled_by", "notes", "deflated_sharpe", "error")


def _edit(path, old, new):
    """Change one number in a strategy's logic (what a user does between two screens)."""
    text = path.read_text()
    assert text.count(old) == 1
    path.write_text(text.replace(old, new))


def _screen(folder, cache_dir, capsys, *extra):
    """One ``screen`` through the CLI: (saved results, stdout, stderr)."""
    out = cache_dir.parent / "results.json"
    code = main(["screen", str(folder), "--sample-bars", BARS, "--top", "3", "--no-progress",
                 "--cache-dir", str(cache_dir), "--out", str(out), *extra])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    return json.loads(out.read_text()), printed.out, printed.err


def _records(saved) -> dict:
    return {r["name"]: {k: r.get(k) for k in COMPARED} for r in saved["records"]}


def _scores(saved) -> dict:
    return {r["name"]: r["screen_score"] for r in saved["records"]}


def _entries(cache_dir, level="*"):
    return sorted((cache_dir / "screens").glob(f"{level}/*.json"))


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "strategies"
    path.mkdir()
    (path / "tiny_ridge.py").write_text(MODEL)
    (path / "cross.py").write_text(CROSS)
    return path


def test_a_second_run_screens_nothing_again_and_gives_the_same_results(folder, tmp_path, capsys):
    cache = tmp_path / "cache"
    first, printed, _ = _screen(folder, cache, capsys)
    assert first["summary"]["cached_configurations"] == 0 and first["summary"]["cached_backtests"] == 0
    assert "from the cache: 0 of 6 configurations" in printed
    assert len(_entries(cache, "scores")) == 6 and _entries(cache, "backtests")

    second, printed, _ = _screen(folder, cache, capsys)
    s = second["summary"]
    survivors = [r for r in first["records"] if r["survivor"]]
    backtests = len(survivors) + sum(r["path"] in FAST_PATHS for r in survivors)  # holdout + screening legs
    assert s["cached_configurations"] == 6 and s["cached_backtests"] == backtests
    assert f"from the cache: 6 of 6 configurations, {backtests} full backtests" in printed
    assert "4 model" in printed and "2 plain: surrogates" in printed
    assert _records(second) == _records(first)
    assert s.get("pbo") == first["summary"].get("pbo")
    # nothing was distilled, and the survivors' equity the report draws came back whole
    assert s["distilled"] == {} and first["summary"]["distilled"]
    assert second["series"]["equity"]["curves"] == first["series"]["equity"]["curves"]
    assert len(_entries(cache, "scores")) == 6


def test_editing_one_file_screens_only_its_configurations_again(folder, tmp_path, capsys):
    cache = tmp_path / "cache"
    first, _, _ = _screen(folder, cache, capsys)
    _edit(folder / "cross.py", "period=self.p.slow)", "period=self.p.slow + 20)")

    resumed, _, _ = _screen(folder, cache, capsys)
    assert resumed["summary"]["cached_configurations"] == 4  # TinyRidge's; Cross's two screened again
    before, after = _scores(first), _scores(resumed)
    assert {n: after[n] for n in after if n.startswith("TinyRidge")} == \
        {n: before[n] for n in before if n.startswith("TinyRidge")}
    assert all(after[n] != before[n] for n in ("Cross(fast=5)", "Cross(fast=10)"))

    # what a fresh screen of the edited folder gives, and --no-cache neither reads nor writes
    entries = _entries(cache)
    fresh, printed, _ = _screen(folder, cache, capsys, "--no-cache")
    assert fresh["summary"]["cached_configurations"] == 0 and fresh["summary"]["result_cache"] is None
    assert "from the cache" not in printed and _entries(cache) == entries
    assert _records(fresh) == _records(resumed)


def test_changing_an_option_that_changes_scores_screens_everything_again(folder, tmp_path, capsys):
    cache = tmp_path / "cache"
    first, _, _ = _screen(folder, cache, capsys)
    costly, _, _ = _screen(folder, cache, capsys, "--commission", "0.002")
    assert costly["summary"]["cached_configurations"] == 0 and costly["summary"]["cached_backtests"] == 0
    assert all(costly_score != _scores(first)[name] for name, costly_score in _scores(costly).items()
               if name.startswith("Cross"))
    # the earlier commission's results are still there
    again, _, _ = _screen(folder, cache, capsys)
    assert again["summary"]["cached_configurations"] == 6 and _records(again) == _records(first)


def test_plain_surrogates_of_an_unchanged_file_are_kept(tmp_path, capsys):
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "cross.py").write_text(CROSS)
    (folder / "slow_cross.py").write_text(SLOW_CROSS)
    cache = tmp_path / "cache"
    first, _, _ = _screen(folder, cache, capsys, "--min-speedup", "0")  # surrogates even on 6000 candles
    assert {r["path"] for r in first["records"]} <= {"surrogate", "surrogate+escalated"}
    _edit(folder / "slow_cross.py", "period=self.p.fast)", "period=self.p.fast + 15)")

    resumed, _, _ = _screen(folder, cache, capsys, "--min-speedup", "0")
    assert resumed["summary"]["cached_configurations"] == 2
    before, after = _scores(first), _scores(resumed)
    assert after["Cross(fast=5)"] == before["Cross(fast=5)"] and after["Cross(fast=10)"] == before["Cross(fast=10)"]
    assert after["SlowCross(fast=10)"] != before["SlowCross(fast=10)"]
    assert after["SlowCross(fast=20)"] != before["SlowCross(fast=20)"]
    # the plain option is part of the key: full backtests instead of surrogates screen everything again
    full, _, _ = _screen(folder, cache, capsys, "--min-speedup", "0", "--plain", "full")
    assert full["summary"]["cached_configurations"] == 0 and {r["path"] for r in full["records"]} == {"full"}


def test_a_damaged_entry_is_ignored_with_a_warning_and_computed_again(folder, tmp_path, capsys):
    cache = tmp_path / "cache"
    first, _, _ = _screen(folder, cache, capsys)
    for level in ("scores", "backtests"):
        entry = _entries(cache, level)[0]
        text = entry.read_text()
        entry.write_text(text[: len(text) // 2])  # truncated JSON

    resumed, _, err = _screen(folder, cache, capsys)
    assert err.count("ignoring a damaged screen cache entry") == 2 and "Traceback" not in err
    assert resumed["summary"]["cached_configurations"] == 5
    # the short-history reason counts the bars of the plain batch screened together, which is
    # smaller when only the damaged entry's configuration is screened again (README, "Resume")
    a, b = _records(resumed), _records(first)
    for records in (a, b):
        for record in records.values():
            if record["trust"] and str(record["trust"].get("reason", "")).startswith("short history"):
                record["trust"] = {**record["trust"], "reason": "short history"}
    assert a == b
    # computed again and kept whole
    assert all(json.loads(p.read_text())["format"] == 1 for p in _entries(cache))
    again, _, err = _screen(folder, cache, capsys)
    assert again["summary"]["cached_configurations"] == 6 and "damaged" not in err


def test_a_crash_while_writing_never_leaves_a_half_entry(folder, tmp_path, capsys):
    cache = tmp_path / "cache"
    # A process that dies between writing an entry's temporary file and renaming it over the
    # entry (the last moment a crash can come): no entry is left, only the temporary file.
    crash = textwrap.dedent(f"""
        import os, sys
        from distillbt.cli import main
        os.replace = lambda *args: os._exit(17)
        sys.exit(main(["screen", {str(folder)!r}, "--sample-bars", "{BARS}", "--top", "3", "--no-progress",
                       "--cache-dir", {str(cache)!r}]))
    """)
    done = subprocess.run([sys.executable, "-c", crash], capture_output=True, text=True, timeout=300)
    assert done.returncode == 17, done.stderr
    assert _entries(cache) == []
    temporaries = list((cache / "screens").rglob(".*.tmp"))
    assert len(temporaries) == 1

    first, _, err = _screen(folder, cache, capsys)
    assert first["summary"]["cached_configurations"] == 0 and "Traceback" not in err
    assert len(_entries(cache, "scores")) == 6
    # a temporary file left by a crash an hour ago is removed
    os.utime(temporaries[0], (time.time() - 7200, time.time() - 7200))
    again, _, _ = _screen(folder, cache, capsys)
    assert again["summary"]["cached_configurations"] == 6 and not temporaries[0].exists()


def test_a_cache_that_cannot_be_written_does_not_stop_the_screen(folder, tmp_path, capsys, monkeypatch):
    cache = tmp_path / "cache"

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    saved, _, err = _screen(folder, cache, capsys)
    assert err.count("cannot write the screen cache") == 1 and "No space left" in err
    assert saved["summary"]["cached_configurations"] == 0 and len(saved["records"]) == 6
    assert _entries(cache) == [] and not list((cache / "screens").rglob("*.tmp"))  # no temporary left behind


def test_the_api_keeps_nothing_unless_asked(folder, tmp_path):
    candles = sample_market(bars=int(BARS), seed=7)
    result = screen(folder, candles, top=2, progress=False)
    assert result.summary["cached_configurations"] == 0 and result.summary["result_cache"] is None
    assert not list(tmp_path.rglob("screens"))  # the default cache directory is under tmp_path (conftest)
    kept = screen(folder, candles, top=2, progress=False, cache=tmp_path / "cache")
    again = screen(folder, candles, top=2, progress=False, cache=tmp_path / "cache")
    assert again.summary["cached_configurations"] == 6
    assert [(r.name, r.screen_score, r.holdout_score) for r in again.records] == \
        [(r.name, r.screen_score, r.holdout_score) for r in kept.records]


def test_a_kept_backtest_comes_back_as_it_ran(folder, tmp_path):
    candles = sample_market(bars=4000, seed=3)
    periods = screen_periods(candles)
    periods.pop("data")
    config = next(c for c in discover(folder).configurations() if c.name == "Cross(fast=5)")
    start, stop = periods["screening"]
    job = baseline_job(config, candles, start=start, stop=stop, cash=10_000.0, commission=0.001, record_equity=True)
    result = run_many([job], progress=False)[0]
    assert result["error"] is None and result["trades"]

    cache = ResultCache(tmp_path, candles, periods, options={})
    assert cache.lookup_backtests([job]) == [None]
    assert cache.store_backtests([job], [result]) == 1
    back = ResultCache(tmp_path, candles, periods, options={}).lookup_backtests([job])[0]
    assert set(back) == set(result)
    for key, value in result.items():
        if isinstance(value, np.ndarray):
            assert back[key].dtype == value.dtype and np.array_equal(back[key], value)
        elif isinstance(value, pd.DatetimeIndex):
            assert back[key].equals(value) and back[key].tz == value.tz
        else:
            assert back[key] == value, key
    assert isinstance(back["trades"][0]["entry_time"], pd.Timestamp)
    # a request without the equity is served by the entry with it
    lean = baseline_job(config, candles, start=start, stop=stop, cash=10_000.0, commission=0.001)
    served = cache.lookup_backtests([lean])[0]
    assert served["score"] == result["score"] and served["equity"] is None
    # another commission is another backtest
    other = baseline_job(config, candles, start=start, stop=stop, cash=10_000.0, commission=0.002, record_equity=True)
    assert cache.lookup_backtests([other]) == [None]
