"""The report of a basket screen (issue 17): the configurations × instruments heatmap, the basket
ranking in index.html and summary.md, the CLI's --report and `report` for basket results."""

import html
import json
import re
import shutil
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from distillbt.basket_screen import screen_basket
from distillbt.cli import main
from distillbt.data.candles import Candles
from distillbt.data.sample import sample_market
from distillbt.report import ReportError, load_results, write_report
from distillbt.report.basket import (BASKET_HEATMAP, BASKET_HOLDOUT, basket_grid, instrument_labels,
                                     plot_basket_heatmap, short_labels)

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 1600, 900
NAMES = ("BTC", "ETH", "SOL")


def amber(pixels) -> int:
    """Pixels of the survivors' outline colour (#f2a900)."""
    return int(((pixels[..., 0] > 0.85) & (np.abs(pixels[..., 1] - 0.66) < 0.08) & (pixels[..., 2] < 0.15)).sum())


def assert_png(path):
    assert path.is_file() and path.stat().st_size > 10_000
    pixels = mpimg.imread(path)
    assert pixels.shape[:2] == (HEIGHT, WIDTH)
    assert pixels[..., :3].std() > 0.05
    return pixels[..., :3]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("basket_report_strategies")
    for name in ("sma_cross.py", "linear_next_candle.py"):
        shutil.copy(ROOT / "strategies" / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def results(folder, tmp_path_factory):
    """A real basket screen of three instruments and one that starts too late (skipped), its
    results through JSON as `screen --out` saves them."""
    basket = {name: sample_market(bars=6_000, seed=31 + k) for k, name in enumerate(NAMES)}
    late = sample_market(bars=6_000, seed=40)
    basket["LATE"] = Candles(late.frame.iloc[-1_200:], symbol="LATE", timeframe=late.timeframe, source="test")
    log = tmp_path_factory.mktemp("basket_report_log") / "strategy.log"
    result = screen_basket(folder, basket, plain="full", top=2, validate_sample=6, progress=False,
                           strategy_log=log, n_jobs=2)
    return json.loads(json.dumps(result.to_dict(), default=str))


@pytest.fixture(scope="module")
def report(results, tmp_path_factory):
    out = tmp_path_factory.mktemp("basket_report")
    return write_report(results, out)


def basket_section(page: str) -> str:
    return page[page.index("<h2 id='basket'>"):page.index("<h2 id='ranked'>")]


def test_report_of_a_real_basket_screen_draws_the_instruments_heatmaps(results, report):
    assert results["summary"]["instruments"] == list(NAMES)
    pixels = assert_png(report.parent / BASKET_HEATMAP)
    red = (pixels[..., 0] > 0.6) & (pixels[..., 2] < 0.35)
    assert red.sum() > 5_000  # the worst configurations lose on every instrument: red cells
    assert amber(pixels) > 200  # the survivors' rows are outlined
    assert_png(report.parent / BASKET_HOLDOUT)
    page = report.read_text(encoding="utf-8")
    assert f"src='{BASKET_HEATMAP}'" in page and f"src='{BASKET_HOLDOUT}'" in page


def test_index_html_holds_the_basket_ranking_with_every_instrument(results, report):
    page = report.read_text(encoding="utf-8")
    assert "<a href='#basket'>Basket ranking</a>" in page
    section = basket_section(page)
    for name in NAMES:
        assert f"<td>{name}</td>" in section  # instruments and periods
        assert f"<th class=\"n\">{name}</th>" in section  # a score column in the ranking
    records = sorted((r for r in results["records"] if r["screen_rank"]), key=lambda r: r["screen_rank"])
    best = records[0]
    assert html.escape(best["name"]) in section
    for name in NAMES:  # the best configuration's score on each instrument is in its row
        row = section[section.index(html.escape(best["name"])):]
        row = row[:row.index("</tr>")]
        assert f"{best['instruments'][name]['screen_score']:+.3f}" in row
    # the per-instrument rank agreement of the validated sample, and the skipped instrument
    fidelity = results["summary"]["instruments_fidelity"]
    for name in NAMES:
        assert f"{fidelity[name]['spearman']:.3f}" in section
    assert "Spearman ρ screen vs full" in section
    assert "Skipped instruments" in section and "LATE" in section
    # survivors on every instrument: full / holdout per instrument
    survivor = next(r for r in records if r["survivor"])
    cell = (f"{survivor['instruments']['SOL']['full_score']:+.4f} / "
            f"{survivor['instruments']['SOL']['holdout_score']:+.4f}")
    assert cell in section
    assert "Spearman ρ per instrument" in page
    assert f"{results['summary']['instrument_configurations']} trials" in page  # DSR counts configurations × instruments
    assert "instruments" in page[page.index("<div class='cards'>"):page.index("<h2 id='data'>")]


def test_summary_md_holds_the_basket_ranking(results, report):
    markdown = (report.parent / "summary.md").read_text(encoding="utf-8")
    assert markdown.index("## Basket ranking") < markdown.index("## Ranked configurations")
    assert f"![Configurations × instruments heatmap]({BASKET_HEATMAP})" in markdown
    head = next(line for line in markdown.splitlines() if line.startswith("| rank | survivor | configuration | path "
                                                                           "| basket screen"))
    assert head.endswith("| BTC | ETH | SOL |")
    assert "LATE" in markdown
    # plots a basket has no single series for say why, not "saved by an older screen"
    assert "a basket screen has no single price series" in markdown
    assert "older screen" not in markdown


def test_heatmap_rows_follow_the_basket_ranking_and_cut_to_top_and_bottom():
    names = ["A-5m-futures", "B-5m-futures"]
    records = []
    for k in range(55):
        score = 1.0 - k / 20
        records.append({"name": f"PullbackTrailing(rsi_period={k}, level=25, exit_period=200)",
                        "strategy": "PullbackTrailing", "screen_rank": k + 1, "survivor": k < 3, "screen_score": score,
                        "instruments": {"A-5m-futures": {"screen_score": score + 0.1},
                                        "B-5m-futures": {"screen_score": None if k == 1 else score - 0.1}}})
    records.append({"name": "Broken(x=1)", "strategy": "Broken", "screen_rank": None, "survivor": False,
                    "screen_score": None, "error": "boom", "instruments": {}})
    grid = basket_grid(list(reversed(records)), names)  # any order in: ranking order out
    assert grid["total"] == 56 and grid["hidden"] == 16 and grid["cut"] == 30
    assert grid["names"][0] == records[0]["name"] and grid["names"][29] == records[29]["name"]
    assert grid["names"][30] == records[46]["name"] and grid["names"][-1] == "Broken(x=1)"  # unranked last
    assert grid["survivor"][:4] == [True, True, True, False]
    assert np.isnan(grid["values"][1, 1]) and grid["values"][0, 0] == pytest.approx(1.1)
    assert np.isnan(grid["basket"][-1])
    labels, legend = short_labels(grid["records"])
    assert labels[0] == "PullbackTrailing(0, 25, 200)" and labels[-1] == "Broken(x=1)"
    assert legend == ["PullbackTrailing(rsi_period, level, exit_period)"]
    assert instrument_labels(names, 10) == ["A", "B"]  # the tail every name shares is left out
    assert len(set(instrument_labels([f"COIN{k}_USDT" for k in range(30)], 6))) == 30  # cut, never merged


def test_heatmap_marks_survivors_only_when_there_are_some(tmp_path):
    def records(survivors):
        return [{"name": f"S(a={k})", "strategy": "S", "screen_rank": k + 1, "survivor": k < survivors,
                 "screen_score": 0.5 - k / 10, "instruments": {n: {"screen_score": 0.5 - k / 10 + d}
                                                               for n, d in (("X", 0.05), ("Y", -0.05))}}
                for k in range(10)]

    outlined = []
    for survivors in (0, 2):
        path = plot_basket_heatmap(records(survivors), ["X", "Y"], tmp_path / f"heatmap_{survivors}.png",
                                   description="log(final value / initial cash)")
        pixels = assert_png(path)
        outlined.append(amber(pixels))
        # diverging at 0: the winners blue, the losers red
        assert ((pixels[..., 2] > 0.45) & (pixels[..., 0] < 0.3)).sum() > 5_000
        assert ((pixels[..., 0] > 0.6) & (pixels[..., 2] < 0.35)).sum() > 5_000
    assert outlined[0] < 50 < outlined[1]  # (the legend's star is gold, not the outline's amber)
    with pytest.raises(ReportError, match="no configuration has a score"):
        plot_basket_heatmap([{"name": "S(a=1)", "screen_rank": None, "survivor": False, "screen_score": None,
                              "instruments": {"X": {"screen_score": None}}}], ["X"], tmp_path / "none.png")


def test_malformed_basket_results_are_one_line_errors(results, tmp_path, capsys):
    broken = json.loads(json.dumps(results))
    del broken["records"][0]["instruments"]
    with pytest.raises(ReportError, match="has no 'instruments'"):
        load_results(broken)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    assert main(["report", str(path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "has no 'instruments'" in err and len(err.splitlines()) == 1
    with pytest.raises(ReportError, match="basket"):
        write_report(results, tmp_path / "c", candles=sample_market(bars=2_000, seed=1))


def test_cli_screen_report_and_report_of_the_saved_results_agree(folder, tmp_path, capsys):
    out, saved, again = tmp_path / "report", tmp_path / "results.json", tmp_path / "again"
    code = main(["screen", str(folder), "--data", "sample", "--sample-instruments", "3", "--sample-bars", "6000",
                 "--plain", "full", "--top", "2", "--no-progress", "--report", str(out), "--out", str(saved),
                 "--jobs", "2"])
    printed = capsys.readouterr().out
    assert code == 0
    assert f"report: {out / 'index.html'}" in printed.splitlines()
    page = (out / "index.html").read_text(encoding="utf-8")
    section = basket_section(page)
    for name in json.loads(saved.read_text())["summary"]["instruments"]:
        assert f"<td>{name}</td>" in section
    assert_png(out / BASKET_HEATMAP)
    assert main(["report", str(saved), "--out", str(again)]) == 0
    assert capsys.readouterr().out.strip() == str(again / "index.html")
    # the report of the saved file is the report the screen wrote (summary.md has no timestamp)
    assert (again / "summary.md").read_text() == (out / "summary.md").read_text()
    assert re.search(r"## Basket ranking", (again / "summary.md").read_text())
