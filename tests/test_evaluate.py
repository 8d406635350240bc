"""The evaluation protocol: records, the exact linear limit end to end, and CLI errors."""

import json

import numpy as np
import pytest

from distillbt.cli import main
from distillbt.data.sample import sample_market
from distillbt.distill.prepare import prepare
from distillbt.evaluate import evaluate


@pytest.fixture(scope="module")
def data():
    return prepare(sample_market(bars=20_000, seed=5))


def test_exact_linear_reproduces_full_data_ridge_through_the_pipeline(data):
    d = len(data.feature_names)
    result = evaluate(data, methods=["exact-linear", "full"], sizes=[d + 1], seeds=2, learners=["ridge"],
                      per_regime=False, progress=False)
    records = {(r["method"], r["metric"]): r for r in result.records}
    assert records[("exact-linear", "coef_rel_error")]["mean"] <= 1e-6
    # ...and therefore the same test-period scores as the full training set.
    assert records[("exact-linear", "r2")]["mean"] == pytest.approx(records[("full", "r2")]["mean"], abs=1e-9)


def test_records_hold_mean_std_and_every_seed(data):
    result = evaluate(data, methods=["random", "kmedoids", "full"], sizes=[10, 20], seeds=3,
                      learners=["ridge", "logistic"], progress=False)
    keys = {(r["method"], r["size"], r["learner"], r["metric"]) for r in result.records}
    assert ("random", 10, "logistic", "accuracy") in keys and ("kmedoids", 20, "ridge", "coef_rel_error") in keys
    for record in result.records:
        assert len(record["values"]) == 3
        assert record["mean"] == pytest.approx(np.mean(record["values"]))
    assert any(k.startswith("random/10/") for k in result.distill_seconds)
    json.dumps(result.to_dict())  # JSON-able as a whole
    assert "random" in result.table() and "±" in result.table()


@pytest.mark.parametrize("argv,needle", [
    (["--methods", "random,magic"], "unknown method"),
    (["--sizes", "10,99999999"], "size 99999999"),
    (["--sizes", "ten"], "comma-separated whole numbers"),
    (["--learners", "svm"], "unknown method or learner 'svm'"),
    (["--methods", "gradient@svm"], "unknown method or learner 'gradient@svm'"),
])
def test_cli_evaluate_errors_exit_2_with_one_line(argv, needle, capsys):
    code = main(["evaluate", "--sample-bars", "20000", "--seeds", "1", "--no-progress", *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and needle in err


def test_cli_evaluate_writes_json(tmp_path, capsys):
    out = tmp_path / "eval.json"
    code = main(["evaluate", "--sample-bars", "20000", "--methods", "random,full", "--sizes", "10",
                 "--seeds", "2", "--learners", "logistic", "--no-progress", "--out", str(out)])
    assert code == 0
    stdout = capsys.readouterr().out
    assert "SYNTHETIC" in stdout and "test period" in stdout
    saved = json.loads(out.read_text())
    assert {r["method"] for r in saved["records"]} == {"random", "full"}
    assert saved["context"]["synthetic"] is True


def test_logistic_alpha_is_chosen_on_the_validation_period_from_the_grid(data):
    from distillbt.evaluate import LOGISTIC_ALPHAS

    result = evaluate(data, methods=["random", "full"], sizes=[20], seeds=2, learners=["logistic"],
                      per_regime=False, progress=False)
    alphas = [v for r in result.records if r["metric"] == "alpha" for v in r["values"]]
    assert alphas and set(alphas) <= set(LOGISTIC_ALPHAS)
    assert result.context["logistic_alphas"] == list(LOGISTIC_ALPHAS)


def test_mlp_weight_decay_is_chosen_on_the_validation_period_and_methods_name_their_learner(data):
    from distillbt.evaluate import MLP_ALPHAS

    # two workers: the two seeds' MLP distillations (about 30 s each) run side by side
    result = evaluate(data, methods=["random", "gradient@mlp"], sizes=[12], seeds=2, n_jobs=2,
                      learners=["logistic", "mlp-classification"], per_regime=False, progress=False)
    records = {(r["method"], r["learner"], r["metric"]): r for r in result.records}
    alphas = records[("random", "mlp-classification", "alpha")]["values"]
    assert set(alphas) <= set(MLP_ALPHAS)
    assert result.context["mlp_alphas"] == list(MLP_ALPHAS)
    # distilled with the MLP, scored by both learners (the logistic row is the cross-learner case)
    assert records[("gradient@mlp", "logistic", "ic")]["distilled_with"] == "mlp"
    assert records[("gradient@mlp", "mlp-classification", "ic")]["distilled_with"] == "mlp"
    assert records[("random", "logistic", "ic")]["distilled_with"] is None
    assert records[("gradient@mlp", "mlp-classification", "loss_change")]["mean"] < 1e-2
