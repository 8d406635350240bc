"""Updating distilled sets: periodic, incremental and regime policies, lineage, multi-horizon."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from distillbt.cli import main
from distillbt.data.candles import validate_candles
from distillbt.data.resample import resample_candles
from distillbt.data.sample import continue_market, sample_market
from distillbt.distill.artifact import ArtifactError, DistilledSet
from distillbt.distill.distribution import DistributionMatching
from distillbt.distill.gradient import GradientMatching
from distillbt.distill.kernel import KernelRidgeDistiller
from distillbt.distill.prepare import prepare
from distillbt.distill.runner import distill
from distillbt.distill.update import ArtifactMismatchError, distill_horizons, update
from distillbt.errors import InputError
from distillbt.models import LogisticRegression
from distillbt.strategy import ModelStrategy

OLD_BARS, NEW_BARS = 30_000, 20_000
#: The planted change: the volatile regime becomes twice as wild and more frequent.
PLANTED = {"regime_params": {"volatile": {"vol": 5.0}},
           "regime_shares": {"bull": .25, "bear": .15, "sideways": .2, "volatile": .35, "crash": .05}}


@pytest.fixture(scope="module")
def market():
    old = sample_market(bars=OLD_BARS, seed=1)
    # random initial points: the k-medoids start would dominate every update's time here
    artifact = distill(prepare(old), method="gradient", size=15, per_regime=True, seed=0,
                       method_params={"n_outer": 8, "n_inner": 2, "init": "random"})
    return {
        "old": old, "artifact": artifact,
        "same": continue_market(old, NEW_BARS, seed=2),
        "changed": continue_market(old, NEW_BARS, seed=2, **PLANTED),
    }


@pytest.mark.parametrize("policy", ["periodic", "incremental", "regime"])
def test_no_new_candles_changes_nothing(market, policy):
    result, report = update(market["artifact"], market["old"], policy=policy)
    assert result is market["artifact"]
    assert report.action == "none" and report.new_rows == 0
    assert "no new candles" in report.reason


def test_other_symbol_or_timeframe_is_refused(market, tmp_path):
    other = validate_candles(market["same"].frame, symbol="OTHER/USD", source="x", timeframe="15m")
    with pytest.raises(ArtifactMismatchError, match="OTHER/USD"):
        update(market["artifact"], other)
    with pytest.raises(ArtifactMismatchError, match="1h"):
        update(market["artifact"], resample_candles(market["same"], "1h"))
    assert issubclass(ArtifactMismatchError, InputError)
    # the CLI: one line, exit 2
    path = market["artifact"].save(tmp_path / "a.npz")
    csv = tmp_path / "c.csv"
    resample_candles(market["same"], "1h").frame.to_csv(csv)
    assert main(["update", str(path), "--data", str(csv), "--no-progress"]) == 2


def test_regime_policy_detects_the_planted_change(market):
    parent = market["artifact"]
    result, report = update(parent, market["changed"], policy="regime")
    # the wild volatile segments are labelled volatile or crash (the labeller decides which)
    assert report.redistilled and set(report.redistilled) <= {"volatile", "crash"}, report.summary_lines()
    assert report.kept and not set(report.kept) & set(report.redistilled)
    for name in report.redistilled:
        assert report.regimes[name]["status"] == "changed"
        assert report.regimes[name]["p_value"] < report.regimes[name]["alpha"]
        assert not np.array_equal(parent.X[parent.regime == name], result.X[result.regime == name])
        assert result.meta["regime_sources"][name]["first"] == report.new_range["first"]
    # the others' points (and, when the mix did not change, their weights) are byte-identical
    for name in report.kept:
        a, b = parent.regime == name, result.regime == name
        assert parent.X[a].tobytes() == result.X[b].tobytes()
        assert parent.y[a].tobytes() == result.y[b].tobytes()
        if not report.mix["changed"]:
            assert parent.weight[a].tobytes() == result.weight[b].tobytes()
    assert result.weight.sum() == pytest.approx(1.0)


def test_regime_policy_redistils_a_regime_that_outgrew_its_source(market):
    """A mix change alone re-weights; a regime whose new rows are ``grow`` times the rows its
    points came from is re-distilled too (its feature test has little power on few old rows)."""
    parent = market["artifact"]
    shifted = continue_market(market["old"], NEW_BARS, seed=2, regime_shares={
        "bull": .1, "bear": .1, "sideways": .1, "volatile": .6, "crash": .1})
    trained_on = {j["regime"]: j["training_rows"] for j in parent.meta["jobs"]}
    result, report = update(parent, shifted, policy="regime", grow=2.0)
    assert report.mix["changed"], report.summary_lines()
    outgrown = [r for r, v in report.regimes.items() if v["status"] == "outgrown"]
    assert outgrown and set(outgrown) <= set(report.redistilled), report.summary_lines()
    for name, v in report.regimes.items():
        grew = v["rows_new"] >= 2 * trained_on[name]
        assert (v["status"] == "outgrown") == (grew and v["status"] != "changed"), (name, v)
    for name in report.kept:
        assert parent.X[parent.regime == name].tobytes() == result.X[result.regime == name].tobytes()
    _, off = update(parent, shifted, policy="regime", grow=None)
    assert not any(v["status"] == "outgrown" for v in off.regimes.values())
    assert set(off.redistilled) == set(report.redistilled) - set(outgrown)
    with pytest.raises(InputError, match="grow"):
        update(parent, shifted, policy="regime", grow=0.5)


def test_mix_test_allows_for_regimes_that_outlast_a_block(monkeypatch):
    """Under no change, with regimes lasting ~2,000 rows (5 blocks), the mix test's false
    alarms stay near its level: it permutes runs of blocks as long as the shares' memory.
    Permuting single blocks calls most of these samples "changed"."""
    from types import SimpleNamespace

    import distillbt.distill.drift as upd

    rng = np.random.default_rng(0)

    def rows(n):
        switch = np.flatnonzero(rng.random(n) < 1 / 2000)
        regime = np.zeros(n, dtype=int)
        for at, code in zip(switch, rng.integers(0, 3, len(switch))):
            regime[at:] = code
        return SimpleNamespace(X=rng.normal(size=(n, 2)), regime=np.array(["a", "b", "c"], dtype=object)[regime])

    samples = [(rows(60_000), rows(30_000)) for _ in range(30)]

    def alarms():
        return sum(upd.regime_shift(old, new, block=400, alpha=0.05, n_permutations=499, seed=k)["mix"]["changed"]
                   for k, (old, new) in enumerate(samples))

    # 30 samples at level 0.05: 1.5 expected, 6 or more has probability 0.003 (this seed: 3)
    calibrated = alarms()
    assert calibrated <= 5, calibrated
    memory = upd.share_memory(upd.BlockStats.from_rows(samples[0][0].X, samples[0][0].regime, 400).n)
    assert memory > 2
    # what permuting single blocks gave (this seed: 25): the runs are what fixed it
    monkeypatch.setattr(upd, "share_memory", lambda counts: 1.0)
    single = alarms()
    assert single >= 15, single


def test_regime_policy_compares_with_the_stored_reference(market, monkeypatch, tmp_path):
    """The artifact carries per-block statistics of its training rows (JSON): the regime policy
    computes the features of the new candles only, and decides as it would from the
    recomputed reference rows."""
    import distillbt.distill.update as upd

    parent = DistilledSet.load(market["artifact"].save(tmp_path / "a.npz"))
    ref = parent.meta["reference"]
    assert ref["rows"] == parent.meta["split"]["train"]["rows"] and ref["block"] == 400
    calls = []
    rows = upd.artifact_rows
    monkeypatch.setattr(upd, "artifact_rows", lambda meta, candles, since=None: calls.append(since) or rows(meta, candles, since))
    result, report = update(parent, market["changed"], policy="regime")
    # one feature pass, from the first new candle on (its warm-up aside)
    assert len(calls) == 1 and calls[0] > pd.Timestamp(parent.meta["split"]["test"]["last"])
    calls.clear()
    stripped = DistilledSet(X=parent.X, y=parent.y, weight=parent.weight, regime=parent.regime,
                            meta={k: v for k, v in parent.meta.items() if k != "reference"})
    _, recomputed = update(stripped, market["changed"], policy="regime")
    assert len(calls) == 2  # without stored statistics: the reference period too
    for name, r in recomputed.regimes.items():
        assert report.regimes[name]["status"] == r["status"]
        if "statistic" in r:
            assert report.regimes[name]["statistic"] == pytest.approx(r["statistic"], rel=1e-9)
    assert report.mix["tv"] == pytest.approx(recomputed.mix["tv"], rel=1e-9)
    # the child's reference: kept regimes' source rows, re-distilled regimes' new rows
    child = upd.BlockStats.from_json(result.meta["reference"])
    for name in report.kept:
        assert child.count(name) == report.regimes[name]["rows_old"]
    for name in report.redistilled:
        assert child.count(name) == report.regimes[name]["rows_new"]


def test_regime_policy_ignores_a_resampling_of_the_same_regimes(market):
    parent = market["artifact"]
    result, report = update(parent, market["same"], policy="regime")
    assert report.action == "checked", report.summary_lines()
    assert report.redistilled == [] and not report.mix["changed"]
    assert all(r["status"] in ("unchanged", "not tested") for r in report.regimes.values())
    for name in ("X", "y", "weight"):
        assert getattr(parent, name).tobytes() == getattr(result, name).tobytes()
    assert report.mix["reference_verified"] is True


def test_periodic_redistils_on_the_window_and_records_lineage(market, tmp_path):
    parent = market["artifact"]
    result, report = update(parent, market["changed"], policy="periodic", window=12_000)
    assert report.action == "redistilled" and set(report.redistilled) == set(parent.regime)
    assert report.window["candles"] == 12_000
    assert result.meta["split"]["train"]["last"] == report.new_range["last"]
    (entry,) = result.lineage
    assert entry["parent"] == parent.content_fingerprint()
    assert entry["policy"] == "periodic"
    assert entry["data"]["first"] == report.new_range["first"] and entry["data"]["last"] == report.new_range["last"]
    assert "time" in entry
    loaded = DistilledSet.load(result.save(tmp_path / "p.npz"))
    assert loaded.lineage == result.lineage
    assert loaded.content_fingerprint() == result.content_fingerprint()
    # a chain: updating the update appends
    longer = continue_market(market["changed"], 4_000, seed=3, **PLANTED)
    second, report2 = update(loaded, longer, policy="periodic", window=12_000)
    assert [e["policy"] for e in second.lineage] == ["periodic", "periodic"]
    assert second.lineage[1]["parent"] == loaded.content_fingerprint()
    assert report2.new_range["first"] > report.new_range["last"]


def test_sets_without_lineage_still_load(market, tmp_path):
    loaded = DistilledSet.load(market["artifact"].save(tmp_path / "old.npz"))
    assert loaded.lineage == [] and loaded.part is None
    assert loaded.timeframes == ["15m"]


def test_incremental_warm_starts_and_reports_closeness(market):
    parent = market["artifact"]
    result, report = update(parent, market["changed"], policy="incremental", steps=3, compare=True)
    assert report.action == "fine-tuned"
    assert all(job["warm_start"] and job["n_iter"] <= 3 for job in result.meta["jobs"])
    for key in ("parent_coef_rel_error", "updated_coef_rel_error", "full_coef_rel_error",
                "updated_vs_full_coef_rel_distance", "speedup", "full_seconds"):
        assert np.isfinite(report.closeness[key])
    assert result.lineage[-1]["policy"] == "incremental"


@pytest.mark.parametrize("cls,steps", [(DistributionMatching, "n_iter"), (KernelRidgeDistiller, "n_iter")])
def test_warm_start_with_no_steps_returns_the_given_points(cls, steps):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(300, 4)), (rng.random(300) > 0.5).astype(float)
    P, t = rng.normal(size=(6, 4)), np.array([0.2, 0.4, 0.6, 0.8, 0.3, 0.7])
    d = cls(size=6, task="classification", **{steps: 0}).fit(X, y, init_points=P, init_targets=t)
    np.testing.assert_allclose(d.X_, P, atol=1e-12)
    np.testing.assert_allclose(d.y_, t, atol=1e-9)
    with pytest.raises(InputError, match="init_points"):
        cls(size=5, task="classification").fit(X, y, init_points=P, init_targets=t)


def test_gradient_matching_warm_start_starts_from_the_points():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(300, 4)), rng.normal(size=300)
    P, t = rng.normal(size=(6, 4)), rng.normal(size=6)
    warm = GradientMatching(size=6, n_outer=1, n_inner=0).fit(X, y, init_points=P, init_targets=t)
    cold = GradientMatching(size=6, n_outer=1, n_inner=0).fit(X, y)
    assert np.abs(warm.X_ - P).mean() < 0.5 * np.abs(cold.X_ - P).mean()
    with pytest.raises(InputError, match="init_points"):
        GradientMatching(size=5).fit(X, y, init_points=P, init_targets=t)


class LogitFew(ModelStrategy):
    features = ("ret_1", "ret_4", "vol_16", "ma_dist_64")
    target = "direction"
    estimator = LogisticRegression(alpha=1e-3)


def test_multi_horizon_round_trip_and_model_fit(tmp_path):
    base = sample_market(bars=12_000, seed=4)
    multi = distill_horizons(base, ["15m", "1h"], method="random", size=10, per_regime=True, seed=0)
    assert multi.timeframes == ["15m", "1h"] and set(multi.part) == {"15m", "1h"}
    assert multi.weight.sum() == pytest.approx(1.0)
    loaded = DistilledSet.load(multi.save(tmp_path / "multi.npz"))
    assert loaded.timeframes == ["15m", "1h"]
    np.testing.assert_array_equal(loaded.X, multi.X)
    hourly = loaded.part_for("1h")
    assert hourly.meta["timeframe"] == "1h" and hourly.weight.sum() == pytest.approx(1.0)
    assert hourly.meta["scaler"] != loaded.part_for("15m").meta["scaler"]
    fitted = LogitFew.fit_model_on_distilled(loaded, timeframe="1h")
    assert fitted.n_train == hourly.size
    assert fitted.scaler.mean_.tolist() == [hourly.meta["scaler"]["mean"][hourly.meta["feature_names"].index(n)]
                                            for n in LogitFew.features]
    with pytest.raises(InputError, match="timeframe="):
        LogitFew.fit_model_on_distilled(loaded)
    with pytest.raises(ArtifactError, match="4h"):
        loaded.part_for("4h")
    # the screen's choice: the part of the screened candles' interval
    from distillbt.distilled_sets import SetNeed, given_sets

    need = SetNeed("linear", "classification", 1, "exact-linear")
    sets = given_sets(loaded, {"LogitFew": need}, base_timeframe="1h")
    assert sets[need.key].meta["timeframe"] == "1h"


def test_cli_distill_timeframes_and_update(tmp_path, capsys):
    out = tmp_path / "m.npz"
    assert main(["distill", "--sample-bars", "10000", "--seed", "4", "--method", "random", "--size", "10",
                 "--per-regime", "--timeframes", "15m,1h", "--out", str(out), "--no-progress"]) == 0
    assert DistilledSet.load(out).timeframes == ["15m", "1h"]
    single = tmp_path / "s.npz"
    assert main(["distill", "--sample-bars", "10000", "--seed", "4", "--method", "random", "--size", "10",
                 "--per-regime", "--out", str(single), "--no-progress"]) == 0
    capsys.readouterr()
    # same data: nothing new, nothing written
    assert main(["update", str(single), "--sample-bars", "10000", "--seed", "4", "--no-progress"]) == 0
    assert capsys.readouterr().out.strip().endswith("unchanged: nothing written")
    assert main(["update", str(tmp_path / "missing.npz"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such distilled-set file" in err
