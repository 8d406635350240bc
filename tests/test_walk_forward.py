"""Walk-forward screening (``screen --folds K``): anchored folds whose holdouts tile the end of
the history, survivors judged on every fold's holdout, PBO over the folds, one-line errors."""

import contextlib
import io
import json
import math
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

from distillbt.cli import main
from distillbt.data.sample import sample_market
from distillbt.stats import expected_max_sharpe, probabilistic_sharpe_ratio
from distillbt.walk_forward import MIN_WINDOW_CANDLES, fold_pbo, walk_forward

ROOT = Path(__file__).resolve().parents[1]
BARS = 12_000

MODEL = textwrap.dedent('''
    from distillbt.models import Ridge
    from distillbt.strategy import ModelStrategy

    class TinyRidge(ModelStrategy):
        params = (("alpha", 0.1),)
        grid = {"alpha": [0.01, 1.0], "long_threshold": [0.0, 0.1], "allow_short": [True, False]}
        features = ("ret_1", "ret_4", "ma_dist_16")
        target = "return"

        def make_estimator(self):
            return Ridge(alpha=self.p.alpha)
''')


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A real plain Backtrader strategy (the shipped SMA cross, 9 configurations) and a model
    strategy (8 configurations)."""
    path = tmp_path_factory.mktemp("strategies")
    shutil.copy(ROOT / "strategies" / "sma_cross.py", path / "sma_cross.py")
    (path / "tiny_ridge.py").write_text(MODEL)
    return path


@pytest.fixture(scope="module")
def run(folder, tmp_path_factory):
    """``screen DIR --folds 3 --top 2 --out FILE`` through the command line: (code, stdout, JSON)."""
    out = tmp_path_factory.mktemp("walk") / "walk.json"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["screen", str(folder), "--sample-bars", str(BARS), "--seed", "3", "--folds", "3", "--top", "2",
                     "--no-progress", "--no-cache", "--out", str(out)])
    assert code == 0, stderr.getvalue()
    return code, stdout.getvalue(), json.loads(out.read_text())


def test_windows_are_consecutive_and_anchored(run):
    _, _, saved = run
    s = saved["summary"]
    folds, w = s["folds"], s["window_candles"]
    assert len(folds) == 3 and s["anchored"] is True and w >= MIN_WINDOW_CANDLES
    first_start = folds[0]["periods"]["training"]["start"]
    for k, fold in enumerate(folds):
        p = fold["periods"]
        # anchored: training always starts at the first usable candle and grows by one window a fold
        assert p["training"]["start"] == first_start
        assert p["training"]["stop"] == folds[0]["periods"]["training"]["stop"] + k * w
        # within a fold: training, one embargo candle, screening, one embargo candle, holdout
        assert p["screening"]["start"] == p["training"]["stop"] + 1
        assert p["holdout"]["start"] == p["screening"]["stop"] + 1
        assert p["screening"]["candles"] == p["holdout"]["candles"] == w
        for name in ("training", "screening", "holdout"):
            assert p[name]["stop"] - p[name]["start"] == p[name]["candles"]
        # the fold's own screen split the candles exactly there
        assert saved["folds"][k]["summary"]["periods"] == {name: {key: v[key] for key in ("first", "last", "candles")}
                                                           for name, v in p.items()}
        if k:
            before = folds[k - 1]["periods"]
            assert p["holdout"]["start"] == before["holdout"]["stop"]  # the holdouts tile
            assert p["screening"]["start"] == before["screening"]["stop"]
    # the first fold trains on about the screen's default share of its span
    span = folds[0]["periods"]["holdout"]["stop"] - first_start
    assert 0.45 < (folds[0]["periods"]["training"]["candles"] / span) < 0.55
    # the last holdout ends at the last usable candle (the last candle has no next close)
    assert folds[-1]["periods"]["holdout"]["stop"] == BARS - 1


def test_survivors_of_every_fold_have_holdout_scores(run):
    _, _, saved = run
    for k, fold in enumerate(saved["folds"]):
        survivors = [r for r in fold["records"] if r["survivor"]]
        assert len(survivors) == 2
        assert all(r["holdout_score"] is not None and math.isfinite(r["holdout_score"]) for r in survivors)
        assert all(r.get("holdout_score") is None for r in fold["records"] if not r["survivor"])
        assert saved["summary"]["folds"][k]["survivors"] == [r["name"] for r in survivors]


def test_mean_and_worst_come_from_the_folds_numbers(run):
    _, _, saved = run
    s = saved["summary"]
    by_fold = [{r["name"]: r for r in fold["records"]} for fold in saved["folds"]]
    survived_anywhere = {name for records in by_fold for name, r in records.items() if r["survivor"]}
    assert {e["name"] for e in s["survivors"]} == survived_anywhere
    assert s["ranking"] == [e["name"] for e in s["survivors"]]
    assert s["configurations"] == 17
    for entry in s["survivors"]:
        expected = [records[entry["name"]]["holdout_score"] if records[entry["name"]]["survivor"] else None
                    for records in by_fold]
        assert entry["holdout_scores"] == expected
        assert entry["screen_scores"] == [records[entry["name"]]["screen_score"] for records in by_fold]
        held = [x for x in expected if x is not None]
        assert entry["folds_survived"] == sum(records[entry["name"]]["survivor"] for records in by_fold) == len(held)
        assert entry["mean_holdout"] == pytest.approx(sum(held) / len(held), abs=1e-12)
        assert entry["worst_holdout"] == min(held)
    # more folds survived first, then the better mean holdout
    keys = [(e["folds_survived"], e["mean_holdout"]) for e in s["survivors"]]
    assert keys == sorted(keys, reverse=True)


def test_cli_prints_each_fold_and_the_ranking(run):
    _, printed, saved = run
    s = saved["summary"]
    lines = printed.splitlines()
    assert "SYNTHETIC" in lines[0]
    for fold in s["folds"]:
        line = next(x for x in lines if x.startswith(f"fold {fold['fold']}: "))
        p = fold["periods"]
        assert f"holdout {p['holdout']['first']} → {p['holdout']['last']} ({p['holdout']['candles']:,})" in line
        assert all(name in line for name in fold["survivors"])
    header = next(i for i, x in enumerate(lines) if x.startswith("rank  configuration"))
    ranked = [x for x in lines[header + 2: header + 2 + len(s["ranking"])]]
    for rank, (row, entry) in enumerate(zip(ranked, s["survivors"]), start=1):
        assert row.startswith(f"{rank} ") and entry["name"] in row
        assert f"{entry['mean_holdout']:+.4f}" in row and f"{entry['folds_survived']}/3" in row
    assert "probability of backtest overfitting over the folds: omitted (needs at least 4 folds, not 3)" in lines
    d = s["deflated_sharpe"]
    dsr = next(x for x in lines if x.startswith("deflated Sharpe ratio"))
    if d is None:
        assert dsr == f"deflated Sharpe ratio: omitted ({s['deflated_sharpe_omitted']})"
    else:
        assert dsr.startswith(f"deflated Sharpe ratio of {d['configuration']} (rank {d['rank']}, ")
        assert f": {d['value']:.2f} (Sharpe {d['sharpe']:.2f} per window over {d['n_obs']} holdouts" in dsr
    assert lines[-1].startswith("strategy output:")


def test_four_folds_give_pbo_and_the_deflated_sharpe_of_the_best(folder):
    candles = sample_market(bars=6_000, seed=5)
    result = walk_forward(folder, candles, folds=4, top=3, progress=False, cache=False)
    s = result.summary
    # PBO: the folds' screen scores as the performance matrix, the 6 ways to pick 2 of 4 folds
    matrix = np.array([[{r.name: r.screen_score for r in fold.records}[name] for name in
                        [r.name for r in result.folds[0].records]] for fold in result.folds])
    assert s["pbo_combinations"] == 6 and s["pbo_configurations"] == 17
    assert s["pbo"] == fold_pbo(matrix)["pbo"]
    # DSR of the per-fold holdout log returns of the best-ranked configuration with 2 or more of
    # them, N = every configuration tried
    rank, best = next((i, e) for i, e in enumerate(s["survivors"], start=1) if e["folds_survived"] >= 2)
    held = np.array([x for x in best["holdout_scores"] if x is not None])
    d = s["deflated_sharpe"]
    assert d["rank"] == rank
    trials = [row.mean() / row.std(ddof=1) for row in matrix.T if row.std(ddof=1) > 0]
    sharpe = held.mean() / held.std(ddof=1)
    z = (held - held.mean()) / held.std()
    expected = probabilistic_sharpe_ratio(sharpe, expected_max_sharpe(np.var(trials, ddof=1), 17), len(held),
                                          float(np.mean(z ** 3)), float(np.mean(z ** 4)))
    assert d["configuration"] == best["name"] and d["trials"] == 17 and d["n_obs"] == len(held)
    assert d["value"] == pytest.approx(expected, nan_ok=True)
    json.dumps(result.to_dict())  # JSON-able as it stands


def test_fold_pbo_tells_a_real_edge_from_a_reversal():
    edge = np.zeros((4, 4))
    edge[:, 2] = 1.0  # one configuration best in every fold: never overfit
    assert fold_pbo(edge)["pbo"] == 0.0
    # each configuration shines in one fold only: the in-sample winner is below median out of sample
    assert fold_pbo(np.eye(4))["pbo"] == 1.0
    odd = fold_pbo(np.random.default_rng(0).normal(size=(5, 6)))
    assert odd["n_combinations"] == 20  # 2 of 5 folds in sample, and 3 of 5 (each split and its complement)


def test_report_writes_one_report_per_fold(folder, tmp_path, capsys):
    report = tmp_path / "report"
    code = main(["screen", str(folder), "--sample-bars", "6000", "--folds", "2", "--top", "1", "--no-progress",
                 "--no-cache", "--report", str(report)])
    assert code == 0
    printed = capsys.readouterr().out
    for k in (1, 2):
        assert (report / f"fold-{k}" / "index.html").is_file()
        assert f"report: {report / f'fold-{k}' / 'index.html'}" in printed


@pytest.mark.parametrize("argv,needle", [
    (["--folds", "1"], "--folds must be at least 2, not 1"),
    (["--folds", "0"], "--folds must be at least 2, not 0"),
    (["--folds", "4", "--sample-bars", "3000"], f"at least {MIN_WINDOW_CANDLES} usable candles per"),
    (["--folds", "3", "--distilled", "x.npz"], "--distilled and --folds do not mix"),
    (["--folds", "3", "--sample-bars", "3000", "--sample-instruments", "2"], "--folds is for one instrument"),
])
def test_bad_folds_exit_2_with_one_line(folder, argv, needle, capsys):
    code = main(["screen", str(folder), "--no-progress", "--no-cache", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and needle in err[-1]
    assert all(line.startswith("data:") for line in err[:-1])  # only the data-source note besides
