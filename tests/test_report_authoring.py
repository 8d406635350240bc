"""What strategy authors expect of a report (issue 18): parameter heatmaps, the survivors' trades
(table, charts, CSV) and an interactive chart that renders offline in a real headless browser."""

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from distillbt.cli import main
from distillbt.data.sample import sample_market
from distillbt.report import write_report
from distillbt.report.heatmap import heatmap_grids, plot_parameter_heatmap
from distillbt.report.interactive import write_interactive_chart
from distillbt.screen import screen
from distillbt.screen_series import MAX_TRADES, trade_rows

STRATEGIES = Path(__file__).resolve().parents[1] / "strategies"
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--virtual-time-budget=10000"]


def assert_png(path):
    assert path.is_file()
    pixels = mpimg.imread(path)
    assert pixels.shape[:2] == (900, 1600)
    assert pixels[..., :3].std() > 0.05


@pytest.fixture(scope="module")
def screened(tmp_path_factory):
    """A real screen of two shipped strategies (one plain, one model) on a small sample market."""
    folder = tmp_path_factory.mktemp("strategies")
    for name in ("donchian_breakout.py", "logistic_direction.py"):
        shutil.copy(STRATEGIES / name, folder / name)
    result = screen(folder, sample_market(bars=6_000, seed=2), top=2, progress=False)
    # Saved and read back as `screen --json` does: the report must work from the JSON alone.
    return json.loads(json.dumps(result.to_dict(), default=str))


@pytest.fixture(scope="module")
def report(screened, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    saved = out / "screen.json"
    saved.write_text(json.dumps(screened))
    assert main(["report", str(saved), "--out", str(out / "report")]) == 0
    return out / "report"


# -- data --------------------------------------------------------------------------------------
def test_the_screen_saves_each_survivors_trades_as_json(screened):
    survivors = [r["name"] for r in screened["records"] if r["survivor"]]
    trades = screened["series"]["trades"]
    assert sorted(trades) == sorted(survivors)
    for name in survivors:
        holdout = trades[name]["holdout"]
        assert holdout["kept"] == len(holdout["rows"]) <= MAX_TRADES
        stats = next(r for r in screened["records"] if r["name"] == name)["holdout_stats"]
        assert holdout["count"] == stats["n_trades"]
        for row in holdout["rows"]:
            assert row["entry_time"] <= row["exit_time"]
            assert row["entry_price"] > 0 and row["exit_price"] > 0 and row["size"] != 0
    e = screened["series"]["equity"]
    assert len(e["close"]) == len(e["times"])


def test_trade_rows_cap_the_rows_but_count_every_trade():
    raw = [{"entry_time": pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(hours=i),
            "exit_time": pd.Timestamp("2024-01-01 00:30", tz="UTC") + pd.Timedelta(hours=i),
            "entry_price": 100.0, "exit_price": 101.0 if i % 2 else 99.0, "size": -2.0 if i % 3 == 0 else 2.0,
            "pnl": 2.0 if i % 2 else -2.0, "bars": 2} for i in range(7)]
    saved = trade_rows(raw, limit=3)
    assert (saved["count"], saved["kept"], saved["wins"], len(saved["rows"])) == (7, 3, 3, 3)
    assert saved["pnl_total"] == pytest.approx(-2.0)
    assert saved["rows"][0]["entry_time"] == "2024-01-01T00:00:00+00:00"
    assert saved["rows"][1]["pnl_pct"] == pytest.approx(1.0)  # 2 on a position of 2 × 100
    json.dumps(saved)


def test_heatmap_cells_are_the_max_over_the_other_parameters_and_mark_survivors(tmp_path):
    records = []
    for a in (1, 2):
        for b in ("x", "y", "z"):
            for c in (True, False):
                records.append({"strategy": "S", "params": {"a": a, "b": b, "c": c, "fixed": 5},
                                "screen_score": a + {"x": 0, "y": 10, "z": 20}[b] + (0.5 if c else 0.0),
                                "survivor": a == 2 and b == "z" and c})
    records.append({"strategy": "S", "params": {"a": 1, "b": "x", "c": False, "fixed": 5}, "screen_score": None,
                    "survivor": False})
    panels = {(p["y"], p["x"]): p for p in heatmap_grids(records, "S")}
    # "fixed" does not vary; the parameter with more values is x (a tie keeps the grid's order)
    assert set(panels) == {("a", "b"), ("c", "a"), ("c", "b")}
    ab = panels[("a", "b")]
    assert ab["x_values"] == ["x", "y", "z"] and ab["y_values"] == [1, 2]
    np.testing.assert_allclose(ab["score"], [[1.5, 11.5, 21.5], [2.5, 12.5, 22.5]])
    assert ab["survivor"].tolist() == [[False, False, False], [False, False, True]]
    assert ab["count"].tolist() == [[3, 2, 2], [2, 2, 2]]
    path = plot_parameter_heatmap(records, "S", tmp_path / "heatmap_S.png", objective="sharpe",
                                  description="annualised Sharpe ratio")
    assert_png(path)


def test_old_results_without_trades_still_report_and_leave_the_trades_section_out(screened, tmp_path):
    old = json.loads(json.dumps(screened))
    del old["series"]["trades"]
    del old["series"]["equity"]["close"]
    page = write_report(old, tmp_path / "old").read_text()
    assert "Survivors' trades" not in page and "interactive.html" not in page
    assert not (tmp_path / "old" / "interactive.html").exists()
    assert list((tmp_path / "old").glob("heatmap_*.png"))  # heatmaps need only the records


# -- the report of a real screen ------------------------------------------------------------------
def test_report_of_a_real_screen_has_heatmaps_trades_and_the_interactive_chart(report, screened):
    page = (report / "index.html").read_text()
    heatmaps = sorted(p.name for p in report.glob("heatmap_*.png"))
    assert heatmaps == ["heatmap_DonchianBreakout.png", "heatmap_LogisticDirection.png"]
    for name in heatmaps:
        assert f"src='{name}'" in page
        assert_png(report / name)
    assert "Parameter heatmaps" in page and "Screen score (return: log(final value / initial cash))" in page

    survivors = [r for r in screened["records"] if r["survivor"]]
    assert "Survivors' trades" in page and "<table class='trades'>" in page
    charts = sorted(report.glob("trades_*.png"))
    assert len(charts) == len(survivors)
    for chart in charts:
        assert f"src='{chart.name}'" in page
        assert_png(chart)
    rows = list(csv.DictReader((report / "trades.csv").open()))
    kept = sum(p["kept"] for t in screened["series"]["trades"].values() for p in t.values())
    assert len(rows) == kept > 0
    first = next(r for r in rows)
    assert first["entry_time"] in json.dumps(screened["series"]["trades"])

    interactive = report / "interactive.html"
    assert "href='interactive.html'" in page
    text = interactive.read_text()
    assert "Bokeh" in text and len(text) > 200_000  # the library itself is in the page
    assert not re.search(r"<script[^>]*\bsrc\s*=", text, re.I)  # no script fetched from anywhere
    assert not re.search(r"<link[^>]*\bhref\s*=\s*['\"]?(https?:)?//", text, re.I)
    markdown = (report / "summary.md").read_text()
    assert "## Parameter heatmaps" in markdown and "## Survivors' trades" in markdown


# -- the interactive chart in a real browser ----------------------------------------------------------
def chromium(*args, tmp_path):
    run = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                         capture_output=True, text=True, timeout=90)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium; .ci/run installs it)")
def test_interactive_chart_renders_in_headless_chromium(tmp_path):
    times = [t.isoformat() for t in pd.date_range("2024-01-01", periods=240, freq="h", tz="UTC")]
    close = list(100 + np.cumsum(np.random.default_rng(0).normal(0, 1, len(times))))
    trades = [{"entry_time": times[10], "exit_time": times[40], "entry_price": close[10], "exit_price": close[40],
               "size": 1.0, "pnl": close[40] - close[10], "period": "screening"},
              {"entry_time": times[100], "exit_time": times[150], "entry_price": close[100],
               "exit_price": close[150], "size": -1.0, "pnl": close[100] - close[150], "period": "holdout"}]
    path = write_interactive_chart(tmp_path / "chart.html", times=list(times), close=close, name="Demo(a=1)",
                                   trades=trades, equity=[10_000 + c for c in close],
                                   benchmark=[10_000.0] * len(close), split=times[90])
    source = path.read_text()
    root = re.search(r"data-root-id=\"([^\"]+)\"", source)
    assert root and "bk-Column" not in source.split("<body>")[1].split("<script")[0]

    dom = chromium("--dump-dom", path.as_uri(), tmp_path=tmp_path)
    # Bokeh's script ran and mounted the layout in the root element the static page left empty.
    assert re.search(r"data-root-id=\"%s\"[^>]*>\s*<div class=\"bk-Column\"" % root.group(1), dom), dom[-2000:]

    shot = tmp_path / "shot.png"
    chromium(f"--screenshot={shot}", "--window-size=1200,800", path.as_uri(), tmp_path=tmp_path)
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.std() > 0.05  # not a blank page
    # The price line (dark grey) and the holdout shading (#fff3cd at 60 % on white) were painted.
    dark = (np.abs(pixels - np.array([0x3a, 0x3f, 0x44]) / 255).max(axis=-1) < 0.08).mean()
    shade = 0.6 * np.array([0xff, 0xf3, 0xcd]) / 255 + 0.4
    pale = (np.abs(pixels - shade).max(axis=-1) < 0.03).mean()
    assert dark > 0.001 and pale > 0.02, (dark, pale)
