"""The screen end to end on small data: ranking, survivors, full backtests, trust, CLI."""

import json
import textwrap
from pathlib import Path

import pytest

from distillbt.cli import main
from distillbt.data.sample import sample_market
from distillbt.screen import screen

from .strategy_sources import IMPORT, sma_cross

ROOT = Path(__file__).resolve().parents[1]

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
PLAIN = IMPORT + sma_cross("Cross", fast=5, slow=30, grid={"fast": [5, 10]})


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("strategies")
    (path / "tiny_ridge.py").write_text(MODEL)
    (path / "cross.py").write_text(PLAIN)
    (path / "broken.py").write_text("import no_such_module\n")
    return path


@pytest.fixture(scope="module")
def candles():
    return sample_market(bars=8_000, seed=2)


@pytest.fixture(scope="module")
def result(folder, candles):
    return screen(folder, candles, size=20, top=3, validate=True, progress=False,
                  method="kmedoids")


def test_every_configuration_is_ranked_and_marked(result):
    assert len(result.records) == 8 + 2
    assert [r.screen_rank for r in result.records] == list(range(1, 11))
    assert sum(r.survivor for r in result.records) == 3
    paths = {r.strategy: r.path for r in result.records}
    assert paths["TinyRidge"] == "vectorised"
    # plain: surrogate by default; a short history is replayed (exact) rather than learned
    assert paths["Cross"] in ("surrogate", "surrogate+escalated", "replay")
    assert result.problems and "broken.py" in result.problems[0]["file"]
    scores = [r.screen_score for r in result.records]
    assert scores == sorted(scores, reverse=True)


def test_survivors_get_full_and_holdout_backtests_with_stats(result):
    for record in result.records:
        if record.survivor:
            assert record.holdout_score is not None
            assert {"sharpe", "max_drawdown_pct", "n_trades"} <= set(record.holdout_stats)
            assert 0.0 <= record.deflated_sharpe <= 1.0
        if record.path == "vectorised":  # --validate: every model configuration in full
            assert record.full_score is not None


def test_validation_reports_fidelity_and_agreement(result):
    s = result.summary
    # the summary's figures are what the records say
    from scipy.stats import spearmanr

    validated = [r for r in result.records if r.full_score is not None]
    assert s["validation"] == "all" and s["spearman_configurations"] == len(validated) == 10
    assert s["spearman"] == pytest.approx(spearmanr([r.screen_score for r in validated],
                                                    [r.full_score for r in validated]).statistic)
    fast = [r for r in validated if r.path != "full"]
    assert s["fast_path_configurations"] == len(fast)
    if len(fast) >= 3:
        assert s["spearman_fast_path"] == pytest.approx(spearmanr([r.screen_score for r in fast],
                                                                  [r.full_score for r in fast]).statistic)
    lo, hi = s["spearman_ci90"]
    assert -1.0 <= lo <= hi <= 1.0
    model = [r for r in validated if r.path == "vectorised"]
    assert s["paths"]["model"]["configurations"] == len(model) == 8
    assert s["paths"]["model"]["spearman"] == pytest.approx(spearmanr([r.screen_score for r in model],
                                                                      [r.full_score for r in model]).statistic)
    true_top = sorted(validated, key=lambda r: -r.full_score)[:s["topk"]]
    assert s["topk_recall"] == pytest.approx(sum(r.survivor for r in true_top) / s["topk"])
    assert s["wrongly_eliminated"] == [r.name for r in true_top if not r.survivor]
    # The same real-fitted model through both executions: the screen's replica is exact.
    assert s["execution_max_rel_diff"] < 1e-9
    periods = s["periods"]
    assert periods["training"]["last"] < periods["screening"]["first"] < periods["holdout"]["first"]


def test_the_accounting_counts_all_of_the_screen(result):
    s = result.summary
    # screen_seconds is everything before survivors: its parts fit inside it
    parts = s["distill_seconds"] + s["model_seconds"] + s["plain_seconds"]
    assert 0 < parts <= s["screen_seconds"] < s["total_seconds"]
    assert s["validation_full_seconds"] > 0
    assert s["speedup"] == pytest.approx(s["validation_full_seconds"] / s["screen_seconds"])
    model = s["paths"]["model"]
    # each path: its own part plus its share (by configurations) of the stages both share
    shared = s["screen_seconds"] - parts
    n_model = sum(r.path == "vectorised" for r in result.records)
    assert model["screen_seconds"] == pytest.approx(s["distill_seconds"] + s["model_seconds"]
                                                    + shared * n_model / len(result.records))
    assert sum(p["screen_seconds"] for p in s["paths"].values()) <= s["screen_seconds"] + 1e-9
    assert model["speedup"] == pytest.approx(model["full_seconds"] / model["screen_seconds"])
    # the paths share the validation's wall time by their runs' own seconds
    assert sum(p["full_seconds"] for p in s["paths"].values()) == pytest.approx(s["validation_full_seconds"])
    # each vectorised configuration's own cost (its run and fit share) is inside the model stage
    own = [r.vectorised_seconds for r in result.records if r.path == "vectorised"]
    assert all(v is not None and v > 0 for v in own)
    assert sum(own) <= s["model_seconds"]  # one process here: the stage holds every run
    assert all(r.vectorised_seconds is None for r in result.records if r.path != "vectorised")
    for record in result.records:
        if record.full_score is not None:
            assert record.full_seconds > 0
            # the one baseline: a bounded warm-up, never the whole history before the period
            assert 0 < record.full_warmup_bars <= s["validation_warmup_bars"] < 2_000
    assert s["validation_warmup_bars"] == max(r.full_warmup_bars for r in result.records
                                              if r.full_warmup_bars is not None)


def test_sampled_validation_backtests_the_sample_and_estimates_the_rest(folder, candles, result):
    sampled = screen(folder, candles, size=20, top=3, validate_sample=5, progress=False, method="kmedoids")
    s = sampled.summary
    assert s["validation"] == "sample" and s["validated_configurations"] == 5
    assert "topk_recall" not in s  # recall needs every configuration's full score
    assert s["estimated_full_seconds"] == pytest.approx(s["validation_full_seconds"] * 10 / 5)
    assert s["speedup"] == pytest.approx(s["estimated_full_seconds"] / s["screen_seconds"])
    by_name = {r.name: r for r in result.records}
    for record in sampled.records:
        if record.full_score is not None:  # the sample, and the survivors' own runs
            assert record.full_score == pytest.approx(by_name[record.name].full_score, abs=1e-12)
    # same seed, same sample
    again = screen(folder, candles, size=20, top=3, validate_sample=5, progress=False, method="kmedoids")
    assert [r.full_score for r in again.records] == [r.full_score for r in sampled.records]


def test_same_seed_same_screen(folder, candles, result):
    again = screen(folder, candles, size=20, top=3, progress=False, method="kmedoids")
    assert [r.screen_score for r in again.records] == [r.screen_score for r in result.records]


def test_parallel_screen_gives_the_sequential_scores(folder, candles, result):
    # Two worker processes, configurations chunked by fitted model: the same numbers as one.
    again = screen(folder, candles, size=20, top=3, progress=False, method="kmedoids", n_jobs=2)
    assert [(r.name, r.screen_score) for r in again.records] == \
        [(r.name, r.screen_score) for r in result.records]
    assert again.summary["pbo"] == result.summary["pbo"]


@pytest.mark.parametrize("size", [16, 5, 2, 1])
def test_chunks_keep_configurations_of_one_fitted_model_together(size):
    from distillbt._vectorised_screen import CHUNK, _chunks, chunk_size
    from distillbt.discovery import discover

    configs = discover(ROOT / "strategies").configurations()
    chunks = _chunks(configs, size=size)
    positions = sorted(p for chunk in chunks for p, _ in chunk)
    assert positions == list(range(len(configs)))  # each configuration exactly once
    assert all(len(chunk) <= CHUNK for chunk in chunks)
    where = {}
    for i, chunk in enumerate(chunks):
        for _, config in chunk:
            cls = config.strategy.cls
            if hasattr(cls, "fit_key"):
                where.setdefault((cls.__name__, repr(cls.fit_key(config.params))), set()).add(i)
    # a model's rule variants share a chunk unless the group itself exceeds CHUNK
    assert sum(len(chunks_of) > 1 for chunks_of in where.values()) == 0
    # chunks only hold several models' configurations up to the size asked for
    assert all(len(chunk) <= size for chunk in chunks if len({_model_of(c) for _, c in chunk}) > 1)
    # about four chunks per worker, never more than CHUNK configurations, at least one
    assert (chunk_size(38, 2), chunk_size(400, 2), chunk_size(3, 8)) == (5, CHUNK, 1)


def test_heavy_fits_get_chunks_of_their_own_and_go_first():
    """Models fitted on many rows (agnostic sets, training candles) are spread over the workers
    and start first, so no worker ends the stage alone on two of them."""
    from distillbt._vectorised_screen import HEAVY_FIT_ROWS, _chunks
    from distillbt.discovery import discover

    configs = discover(ROOT / "strategies").configurations()
    models = sorted({_model_of(c) for c in configs})
    heavy = set(models[::3])  # every third model fitted on many rows
    rows = {m: (HEAVY_FIT_ROWS + 10 * i if m in heavy else 50) for i, m in enumerate(models)}
    chunks = _chunks(configs, size=5, fit_rows=lambda config: rows[_model_of(config)])
    assert sorted(p for chunk in chunks for p, _ in chunk) == list(range(len(configs)))
    kinds = [{_model_of(c) for _, c in chunk} for chunk in chunks]
    for models_in in kinds:
        assert len(models_in) == 1 or not models_in & heavy  # a heavy fit never shares its chunk
    first_light = next(i for i, m in enumerate(kinds) if not m & heavy)
    assert all(m & heavy for m in kinds[:first_light]) and not any(m & heavy for m in kinds[first_light:])
    costs = [rows[next(iter(m))] for m in kinds[:first_light]]
    assert costs == sorted(costs, reverse=True)  # the costliest first


def _model_of(config):
    cls = config.strategy.cls
    return (cls.__name__, repr(cls.fit_key(config.params)) if hasattr(cls, "fit_key") else config.name)


@pytest.mark.parametrize("flag", ["--out", "--json"])
def test_cli_writes_the_json_the_issue_asks_for(folder, tmp_path, capsys, flag):
    out = tmp_path / "screen.json"
    code = main(["screen", str(folder), "--sample-bars", "8000", "--seed", "2", "--size", "20", "--top", "2",
                 "--method", "kmedoids", "--no-progress", flag, str(out)])
    assert code == 0
    printed = capsys.readouterr()
    # the ranked table still goes to stdout; the JSON goes to the file
    assert "SYNTHETIC" in printed.out and "sample market" in printed.err and "survivor" in printed.out
    saved = json.loads(out.read_text())
    record = saved["records"][0]
    assert {"name", "strategy", "params", "path", "screen_score", "screen_rank", "survivor"} <= set(record)
    assert {"source", "periods", "score", "screen_seconds", "distill_seconds", "model_seconds", "plain_seconds",
            "survivors_seconds"} <= set(saved["summary"])


def test_cli_prints_the_speedup_the_json_holds(folder, tmp_path, capsys):
    out = tmp_path / "screen.json"
    code = main(["screen", str(folder), "--sample-bars", "8000", "--seed", "2", "--size", "20", "--top", "2",
                 "--method", "kmedoids", "--no-progress", "--validate", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    s = json.loads(out.read_text())["summary"]
    recomputed = s["validation_full_seconds"] / s["screen_seconds"]
    assert f"= {recomputed:.1f}x the screen" in printed
    assert f"screen {s['screen_seconds']:.1f} s before survivors" in printed
    model = s["paths"]["model"]
    assert f"their full backtests {model['full_seconds']:.1f} s = {model['speedup']:.1f}x" in printed


@pytest.mark.parametrize("setup,argv,needle", [
    ("empty", [], "no .py files"),
    ("nostrategy", [], "no Backtrader strategies"),
    ("missing", [], "not a folder"),
    ("model", ["--top", "0"], "--top must be at least 1"),
])
def test_cli_screen_errors_exit_2_with_one_line(setup, argv, needle, tmp_path, capsys):
    folder = tmp_path / "strategies"
    if setup != "missing":
        folder.mkdir()
    if setup == "nostrategy":
        (folder / "helpers.py").write_text("X = 1\n")
    if setup == "model":
        (folder / "tiny_ridge.py").write_text(MODEL)
    code = main(["screen", str(folder), "--sample-bars", "8000", "--no-progress", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and needle in err[-1]
    assert all(line.startswith("data:") for line in err[:-1])  # only the data-source note besides


def test_default_distillation_is_the_exact_linear_limit_per_regime(folder, candles):
    result = screen(folder, candles, top=3, progress=False)
    distilled = result.summary["distilled"]["regression"]
    assert distilled["method"] == "exact-linear"
    assert distilled["points"] % 21 == 0  # 20 features + 1 per regime


def test_per_regime_failure_falls_back_to_the_whole_training_period(folder, candles, monkeypatch):
    import distillbt.distilled_sets as stage

    real = stage.distill_many

    def fussy(requests, **kwargs):  # every per-regime distillation fails, as its own value
        out = real({k: r for k, r in requests.items() if not r["per_regime"]}, **kwargs)
        return {k: out[k] if k in out else stage.InputError("soft labels outside [0, 1]") for k in requests}

    monkeypatch.setattr(stage, "distill_many", fussy)
    result = screen(folder, candles, top=3, progress=False)
    distilled = result.summary["distilled"]["regression"]
    assert distilled["per_regime"] is False and distilled["points"] == 21
    assert "soft labels outside [0, 1]" in distilled["fallback"]
