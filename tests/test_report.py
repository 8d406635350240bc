"""Reports: every plot writes a readable PNG of the agreed size; the report holds every section and
every image it links; bad results give exit 2 with one line."""

import json
import re
import textwrap

import matplotlib.image as mpimg
import numpy as np
import pytest

from distillbt.cli import main
from distillbt.data.sample import sample_market
from distillbt.distill.prepare import SCREEN_FRACTIONS, SCREEN_PERIODS, prepare
from distillbt.report import (ReportError, load_results, plot_distillation_quality, plot_distributions,
                              plot_episodes, plot_equity_curves, plot_regime_timeline, plot_screen_vs_full,
                              plot_time_spent, write_report)
from distillbt.screen_series import MAX_POINTS, collect_series

WIDTH, HEIGHT = 1600, 900
SECTIONS = ("Data and periods", "How far to trust it", "Ranked configurations", "Survivors",
            "Screen estimate vs full backtest", "Survivors on real history", "Regime timeline",
            "Real vs distilled data", "Episodes by regime", "Distillation quality", "Time spent")


def assert_png(path):
    assert path.is_file() and path.stat().st_size > 10_000  # a blank 1600×900 PNG is ~5 kB
    pixels = mpimg.imread(path)
    assert pixels.shape[:2] == (HEIGHT, WIDTH)
    assert pixels[..., :3].std() > 0.05  # something was drawn


# -- small data -------------------------------------------------------------------------------------
def records(n=12):
    rng = np.random.default_rng(0)
    screen = np.sort(rng.normal(0, 0.2, n))[::-1]
    out = []
    for rank, s in enumerate(screen, start=1):
        plain = rank in (2, 9)
        path = "full" if plain else "surrogate" if rank in (3, 7) else "vectorised"
        out.append({"name": f"Strategy{rank % 3}(a={rank}, long_parameter_name={rank / 10})", "strategy": "S",
                    "params": {"a": rank}, "path": path,
                    "screen_score": float(s), "screen_rank": rank, "survivor": rank <= 3,
                    "full_score": float(s) if plain else float(s + rng.normal(0, 0.05)), "error": None})
    return out


def evaluation_records():
    out = []
    for learner in ("ridge", "logistic"):
        for method in ("gradient", "kmedoids", "random"):
            for size in (10, 20, 50):
                values = list(np.random.default_rng(size).normal(0.1 + size / 500, 0.02, 3))
                out.append({"method": method, "size": size, "learner": learner, "metric": "ic",
                            "mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)), "values": values})
        out.append({"method": "full", "size": 2878, "learner": learner, "metric": "ic", "mean": 0.2, "std": 0.01,
                    "values": [0.19, 0.2, 0.21]})
    return out


@pytest.fixture(scope="module")
def candles():
    return sample_market(bars=3_000, seed=3)


@pytest.fixture(scope="module")
def results(candles):
    """A results dict as the screen saves it, its series collected from real candles and fabricated
    backtests (the screen itself is exercised once, in the CLI test below)."""
    data = prepare(candles, fractions=SCREEN_FRACTIONS)
    index = candles.frame.index
    bounds = {}
    for name, part in SCREEN_PERIODS.items():
        rows = data.parts[part]
        bounds[name] = (int(index.get_loc(data.times[rows.start])), int(index.get_loc(data.times[rows.stop - 1])) + 1)
    recs = records()
    survivors = [r for r in recs if r["survivor"]]
    (s0, s1), (h0, h1) = bounds["screening"], bounds["holdout"]
    close = candles.frame["close"].to_numpy()
    estimated = [r for r in survivors if r["path"] != "full"]  # backtested in full after the screen
    screening_curves = {r["name"]: 10_000 * close[s0:s1] / close[s0] for r in estimated}
    holdout_curves = {r["name"]: 10_000 * (close[h0:h1] / close[h0]) ** 0.5 for r in survivors}
    curves = {r["name"]: 10_000 * np.linspace(1, 1.1, s1 - s0) for r in recs}

    class Set:  # the two attributes collect_series reads of a DistilledSet
        X = data.X[:15]
        weight = np.full(15, 1 / 15)
        regime = data.regime[:15]
        meta = {"method": "kmedoids", "feature_names": list(data.feature_names)}

    series = collect_series(candles, data=data, sets={"classification": Set}, records=recs, curves=curves,
                            periods=bounds, screening_curves=screening_curves,
                            holdout_curves=holdout_curves, cash=10_000.0)
    summary = {
        "source": candles.source, "symbol": candles.symbol, "timeframe": candles.timeframe, "synthetic": True,
        "periods": {k: {"first": index[a].isoformat(), "last": index[b - 1].isoformat(), "candles": b - a}
                    for k, (a, b) in bounds.items()},
        "score": "log(final value / initial cash)", "cash": 10_000.0, "commission": 0.001,
        "configurations": len(recs), "model_configurations": 10, "plain_configurations": 2, "errors": 0,
        "distilled": {"classification": {"method": "kmedoids", "points": 15, "per_regime": False,
                                         "compression_ratio": 300.0, "fallback": None}},
        "distill_seconds": 0.5, "model_seconds": 0.2, "plain_seconds": 3.0, "screen_seconds": 3.8,
        "survivors_seconds": 9.0, "validation": "all", "validated_configurations": 12,
        "validation_full_seconds": 38.0, "speedup": 10.0, "spearman": 0.93, "spearman_configurations": 12,
        "spearman_ci90": [0.85, 0.97], "spearman_fast_path": 0.92, "spearman_fast_path_configurations": 10,
        "paths": {"model": {"configurations": 10, "screen_seconds": 0.7, "full_seconds": 28.0, "speedup": 40.0,
                            "full_fallbacks": 0, "spearman": 0.92},
                  "plain": {"configurations": 2, "screen_seconds": 3.0, "full_seconds": 10.0, "speedup": 3.3,
                            "full_fallbacks": 2}},
        "topk": 3, "topk_recall": 1.0, "wrongly_eliminated": [], "pbo": 0.1,
    }
    for r in survivors:
        r["holdout_score"], r["deflated_sharpe"] = 0.01, 0.7
        r["full_stats"] = r["holdout_stats"] = {"total_return_pct": 1.0, "sharpe": 0.5, "max_drawdown_pct": 3.0,
                                                "n_trades": 4}
    return json.loads(json.dumps({"summary": summary, "records": recs, "problems": [], "series": series}))


# -- plots ----------------------------------------------------------------------------------------
def test_screen_vs_full_scatter_and_rank_plot(tmp_path):
    assert_png(plot_screen_vs_full(records(), tmp_path / "b.png", ranks=True))


def test_equity_curves_with_drawdowns(tmp_path, results):
    e = results["series"]["equity"]
    assert all(v is not None for curve in e["curves"].values() for v in curve)
    assert len(e["times"]) <= MAX_POINTS
    assert set(e["curves"]) == {r["name"] for r in results["records"] if r["survivor"]}
    assert_png(plot_equity_curves(e["times"], e["curves"], tmp_path / "e.png", benchmark=e["buy_and_hold"],
                                  split=e["holdout_start"], cash=e["cash"]))


def test_regime_timeline(tmp_path, results):
    price, regimes = results["series"]["price"], results["series"]["regimes"]
    assert len(regimes["labels"]) == len(price["times"]) <= MAX_POINTS
    assert abs(sum(regimes["shares"]["all"].values()) - 1) < 1e-4
    assert_png(plot_regime_timeline(price["times"], price["close"], regimes["labels"], tmp_path / "r.png",
                                    periods=results["summary"]["periods"]))


def test_distributions_from_histograms_and_from_raw_values(tmp_path, results):
    d = results["series"]["distributions"]
    two = {r: d["real"][r] for r in list(d["real"])[:2]}
    assert_png(plot_distributions(two, d["distilled"]["classification"], tmp_path / "d.png",
                                  features=d["features"][:2]))
    rng = np.random.default_rng(1)
    real = {"bull": {"x": rng.normal(size=500)}, "crash": {"x": rng.normal(-2, 1, 100)}}
    points = {"features": ["x"], "X": [[0.1], [5.0], [-1.0]], "weight": [0.5, 0.3, 0.2], "regime": ["bull"] * 3}
    assert_png(plot_distributions(real, points, tmp_path / "raw.png"))


def test_episodes_grid(tmp_path, results):
    episodes = results["series"]["episodes"]
    assert {e["regime"] for e in episodes} <= {"bull", "bear", "sideways", "volatile", "crash"} and episodes
    assert all(np.asarray(e["ohlc"]).shape[1] == 4 for e in episodes)
    ohlc = np.array([[1, 1.2, 0.9, 1.1], [1.1, 1.15, 1.0, 1.02]])
    assert_png(plot_episodes(episodes[:2] + [(ohlc, "crash")], tmp_path / "ep.png"))


def test_distillation_quality_from_evaluate_records(tmp_path):
    assert_png(plot_distillation_quality({"records": evaluation_records()}, tmp_path / "q.png"))


def test_time_spent(tmp_path, results):
    assert_png(plot_time_spent({"screen": 0.5, "full backtests": 400.0}, tmp_path / "t2.png"))


@pytest.mark.parametrize("call", [
    lambda p: plot_screen_vs_full([{"name": "a", "screen_score": 1.0, "full_score": None}], p),
    lambda p: plot_episodes([], p),
    lambda p: plot_time_spent({}, p),
    lambda p: plot_distillation_quality([], p),
])
def test_plots_refuse_empty_data_with_a_typed_error(call, tmp_path):
    with pytest.raises(ReportError):
        call(tmp_path / "x.png")


# -- the report -----------------------------------------------------------------------------------
def check_report(folder, *, with_quality: bool):
    page = (folder / "index.html").read_text()
    for section in SECTIONS:
        assert section in page
    for figure in ("Spearman", "recall", "PBO", "training", "screening", "holdout"):
        assert figure in page
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)  # nothing fetched from a network
    images = re.findall(r"<img src='([^']+)'", page)
    assert len(images) == (7 if with_quality else 6)
    for name in images:
        assert_png(folder / name)
    markdown = (folder / "summary.md").read_text()
    for section in ("## Data and periods", "## How far to trust it", "## Ranked configurations", "## Survivors"):
        assert section in markdown
    for name in re.findall(r"!\[[^]]*\]\(([^)]+)\)", markdown):
        assert (folder / name).is_file()
    return page


def test_report_from_a_saved_results_json(tmp_path, results):
    saved = tmp_path / "results.json"
    saved.write_text(json.dumps(results))
    evaluation = tmp_path / "evaluation.json"
    evaluation.write_text(json.dumps({"context": {}, "records": evaluation_records()}))
    assert main(["report", str(saved), "--out", str(tmp_path / "report"), "--evaluation", str(evaluation)]) == 0
    page = check_report(tmp_path / "report", with_quality=True)
    for figure in ("0.930", "top-3 recall", "Deflated Sharpe", "0.10", "SYNTHETIC"):
        assert figure in page.upper() if figure.isupper() else figure in page


def test_results_without_series_get_price_and_regimes_from_candles_and_say_what_is_missing(tmp_path, results,
                                                                                            candles):
    bare = {k: v for k, v in results.items() if k != "series"}
    html = write_report(bare, tmp_path / "bare", candles=candles, embed_images=True)
    page = html.read_text()
    assert_png(tmp_path / "bare" / "regimes.png")
    assert "Not drawn: the results hold no equity curves" in page and "data:image/png;base64," in page
    assert not (tmp_path / "bare" / "equity.png").exists()


@pytest.mark.parametrize("content,needle", [
    (None, "no such results file"),
    ("not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"records": []}', "no 'summary'"),
    ('{"summary": {"source": "x", "periods": {}}, "records": []}', "no 'records'"),
    ('{"summary": {"periods": {}}, "records": [{"name": "a"}]}', "no 'source'"),
    ('{"summary": {"source": "x", "periods": {}}, "records": [{"name": "a"}]}', "has no 'screen_score'"),
])
def test_bad_or_incomplete_results_exit_2_with_one_line(content, needle, tmp_path, capsys):
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content)
    code = main(["report", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and needle in err[0]
    with pytest.raises(ReportError):
        load_results(path)


MODEL = textwrap.dedent('''
    from distillbt.models import Ridge
    from distillbt.strategy import ModelStrategy

    class TinyRidge(ModelStrategy):
        params = (("alpha", 0.1),)
        grid = {"alpha": [0.01, 1.0]}
        features = ("ret_1", "ret_4", "ma_dist_16")
        target = "return"

        def make_estimator(self):
            return Ridge(alpha=self.p.alpha)
''')


def test_screen_saves_the_series_and_hands_its_results_to_the_report(tmp_path, capsys, monkeypatch):
    """The real screen end to end, small; drawing is replaced by a recorder (the report itself is
    checked above) to keep the suite fast."""
    import distillbt.report.html as report_html

    calls = []
    monkeypatch.setattr(report_html, "write_report",
                        lambda results, out, **kw: calls.append((results, out)) or tmp_path / "r" / "index.html")
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "tiny.py").write_text(MODEL)
    saved = tmp_path / "screen.json"
    code = main(["screen", str(folder), "--sample-bars", "3000", "--seed", "2", "--method", "kmedoids", "--size", "10",
                 "--top", "1", "--no-progress", "--out", str(saved), "--report", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert code == 0 and f"report: {tmp_path / 'r' / 'index.html'}" in out
    saved = json.loads(saved.read_text())
    series = saved["series"]
    assert {"price", "regimes", "equity", "distributions", "episodes"} <= set(series)
    curve = series["equity"]["curves"][saved["summary"]["survivors"][0]]
    assert len(curve) == len(series["equity"]["times"]) and all(v is not None for v in curve[-10:])
    assert series["distributions"]["distilled"] and series["episodes"]
    assert load_results(calls[0][0])["series"] == series and str(calls[0][1]) == str(tmp_path / "r")
