"""Candles → prepared data → per-regime distillation → artifact, and the CLI around it."""

import json

import numpy as np
import pytest

from distillbt.cli import main
from distillbt.data.sample import sample_market
from distillbt.distill.artifact import ArtifactError, DistilledSet
from distillbt.distill.prepare import prepare
from distillbt.distill.runner import allocate_sizes, distill, distill_many
from distillbt.executor import Executor
from distillbt.errors import InputError


@pytest.fixture(scope="module")
def data():
    return prepare(sample_market(bars=30_000, seed=3))


def test_prepare_fits_scaler_and_labeller_on_training_only(data):
    train = data.parts["train"]
    np.testing.assert_allclose(data.X[train].mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(data.X[train].std(axis=0), 1, atol=1e-6)
    assert data.parts["train"].stop < data.parts["validation"].start  # embargo row
    # The test period was never seen: changing it does not change what was fitted.
    candles = sample_market(bars=30_000, seed=3)
    frame = candles.frame.copy()
    cut = data.times[data.parts["validation"].start]
    frame.loc[frame.index > cut, ["open", "high", "low", "close"]] *= 3.0
    from distillbt.data.candles import validate_candles

    altered = prepare(validate_candles(frame, symbol="X", source="altered", timeframe="15m"))
    np.testing.assert_allclose(altered.scaler.mean_, data.scaler.mean_)
    assert altered.labeller.to_dict() == data.labeller.to_dict()
    np.testing.assert_array_equal(altered.regime[train], data.regime[train])


def test_prepare_like_shares_the_split_and_regimes_and_refuses_what_would_leak(data):
    """Sets of other horizons and windows (the screen's distil_sets) reuse the screen's
    labeller and split: the same regimes at the same candles, parts that start at the same
    times, a training period ending where the longer target's embargo needs it to."""
    options = {"return_lags": (1, 5, 15), "vol_windows": (20, 100)}
    shared = prepare(data.candles, horizon=4, feature_options=options, like=data)
    own = prepare(data.candles, horizon=4, feature_options=options)
    assert shared.labeller is data.labeller
    for name in ("validation", "test"):
        assert shared.times[shared.parts[name].start] == data.times[data.parts[name].start]
    train = shared.times[shared.parts["train"]]
    assert train[-1] < data.times[data.parts["train"].stop - 1]  # 4 embargo rows, not 1
    regimes = dict(zip(data.times, data.regime))
    assert all(regimes[t] == r for t, r in zip(shared.times, shared.regime) if t in regimes)
    # what it replaces: the same features and targets, a labeller fitted on (almost) the same candles
    both = own.times.intersection(shared.times)
    assert len(both) > 0.99 * len(own.times)
    np.testing.assert_allclose(shared.target[shared.times.get_indexer(both)], own.target[own.times.get_indexer(both)])
    # the same windows: the rows, features and scaler are the screen's, only targets and embargo change
    four = prepare(data.candles, horizon=4, like=data)
    alone = prepare(data.candles, horizon=4)
    assert four.scaler is data.scaler and four.horizon == 4
    np.testing.assert_array_equal(four.X, data.X[: len(four.X)])
    assert len(four.X) == len(data.X) - 3  # the last three rows' 4-candle targets lie past the candles
    at = alone.times.get_indexer(four.times)
    assert (at >= 0).all()
    np.testing.assert_allclose(four.target, alone.target[at])
    np.testing.assert_array_equal(four.direction, alone.direction[at])
    assert four.parts["validation"].start - four.parts["train"].stop == 4
    assert four.times[four.parts["validation"].start] == data.times[data.parts["validation"].start]
    with pytest.raises(InputError, match="horizon 4 exceeds 1"):
        prepare(data.candles, like=shared)
    with pytest.raises(InputError, match="same candles"):
        prepare(sample_market(bars=20_000, seed=3), like=data)


@pytest.mark.parametrize("method", ["random", "kmedoids", "herding", "distribution", "gradient", "kernel"])
def test_every_method_distils_per_regime(data, method):
    out = distill(data, method=method, size=10, per_regime=True, seed=1,
                  method_params={"n_iter": 20} if method in ("distribution", "kernel") else
                  {"n_outer": 10} if method == "gradient" else None)
    assert out.size == 10 and out.X.shape == (10, len(data.feature_names))
    assert abs(out.weight.sum() - 1) < 1e-12 and (out.weight >= 0).all()
    assert set(out.regime) == set(out.meta["regimes"])
    # Frequency weighting: each regime carries its share of the training period.
    train_regimes = data.regime[data.parts["train"]]
    for name in out.meta["regimes"]:
        share = np.mean(train_regimes == name)
        assert abs(out.weight[out.regime == name].sum() - share) < 1e-12


def test_equal_weighting_gives_rare_regimes_a_voice(data):
    out = distill(data, method="random", size=10, per_regime=True, weighting="equal")
    for name in out.meta["regimes"]:
        assert abs(out.weight[out.regime == name].sum() - 1 / len(out.meta["regimes"])) < 1e-12


def test_same_seed_same_set_and_backend_independence(data):
    a = distill(data, method="kmedoids", size=10, per_regime=True, seed=4)
    b = distill(data, method="kmedoids", size=10, per_regime=True, seed=4, n_jobs=2, backend="loky")
    c = distill(data, method="kmedoids", size=10, per_regime=True, seed=5)
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.array_equal(a.X, c.X)


def test_distill_many_gives_each_request_its_own_distillation_in_one_pass(data):
    """Several distillations' jobs share one pass over the workers (inline ones fitted here
    meanwhile, their data prepared on demand): each set is the one ``distill`` gives alone; a
    request that cannot be distilled is its error, the others go on."""
    asked = {"kmedoids": dict(data=data, method="kmedoids", size=10, seed=4),
             "centroids": dict(data=data, method="centroids", size=50, task="regression", seed=1),
             "linear": dict(data=lambda: data, method="exact-linear", size=lambda d: 5 * (len(d.feature_names) + 1),
                            task="regression", seed=2),
             "too big": dict(data=data, method="centroids", size=10**9, seed=1),
             "unknown": dict(data=data, method="no-such-method", size=10)}
    with Executor(n_jobs=2):
        got = distill_many(asked)
    assert list(got) == list(asked)
    for key in ("kmedoids", "centroids", "linear"):
        options = dict(asked[key])
        options["data"] = data
        if callable(options["size"]):
            options["size"] = options["size"](data)
        alone = distill(**options)
        # exact-linear's closed form runs on one BLAS thread beside the workers: equal to rounding
        np.testing.assert_allclose(got[key].X, alone.X, rtol=0, atol=1e-12)
        np.testing.assert_allclose(got[key].y, alone.y, rtol=0, atol=1e-12)
        np.testing.assert_allclose(got[key].weight, alone.weight, rtol=1e-12)
        assert got[key].meta["regimes"] == alone.meta["regimes"]
    assert got["linear"].meta["backend"] == "inline" and got["kmedoids"].meta["backend"] == "loky"
    assert got["kmedoids"].meta["reference"] == alone.meta["reference"]  # computed once for the shared rows
    assert isinstance(got["too big"], InputError) and "size" in str(got["too big"])
    assert isinstance(got["unknown"], InputError) and "no-such-method" in str(got["unknown"])


def test_dask_local_cluster_gives_the_same_set(data):
    pytest.importorskip("dask.distributed")
    a = distill(data, method="distribution", size=10, per_regime=True, seed=2, method_params={"n_iter": 20})
    b = distill(data, method="distribution", size=10, per_regime=True, seed=2, method_params={"n_iter": 20},
                backend="dask", n_jobs=2)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.weight, b.weight)


def test_allocate_sizes():
    assert allocate_sizes({"a": 100, "b": 50, "c": 2}, 10) == {"a": 4, "b": 3, "c": 2}
    with pytest.raises(InputError, match="smaller than the number of regimes"):
        allocate_sizes({"a": 1, "b": 1}, 1)


def test_artifact_round_trip(data, tmp_path):
    out = distill(data, method="kmedoids", size=10, per_regime=True, seed=1)
    path = out.save(tmp_path / "set.npz")
    back = DistilledSet.load(path)
    np.testing.assert_array_equal(back.X, out.X)
    np.testing.assert_array_equal(back.y, out.y)
    np.testing.assert_array_equal(back.weight, out.weight)
    assert list(back.regime) == list(out.regime)
    assert back.meta["feature_names"] == list(data.feature_names)
    assert back.meta["fingerprint"] == out.meta["fingerprint"] and len(back.meta["fingerprint"]) == 64
    assert back.meta["method"] == "kmedoids" and back.meta["seed"] == 1
    assert back.compression_ratio == pytest.approx(out.compression_ratio)
    assert back.meta["split"]["train"]["rows"] == data.parts["train"].stop - data.parts["train"].start


@pytest.mark.parametrize("precision,itemsize,tolerance", [("float32", 4, 1e-6), ("float16", 2, 1e-3)])
def test_lower_precision_storage_round_trips_and_counts_its_bytes(data, tmp_path, precision, itemsize, tolerance):
    out = distill(data, method="kmedoids", size=10, per_regime=True, seed=1)
    small = out.with_precision(precision)
    # rounded once, to what the file will hold; relative to the values' scale
    assert np.max(np.abs(small.X - out.X)) <= tolerance * np.max(np.abs(out.X))
    assert small.payload_bytes == (out.X.size + out.y.size + out.weight.size) * itemsize + out.size
    assert small.compression_ratio == pytest.approx(out.compression_ratio * out.payload_bytes / small.payload_bytes)
    back = DistilledSet.load(small.save(tmp_path / "small.npz"))
    np.testing.assert_array_equal(back.X, small.X)  # float64 in memory, exactly what was stored
    assert back.X.dtype == np.float64 and back.precision == precision
    assert back.payload_bytes == small.payload_bytes
    with pytest.raises(ArtifactError, match="unknown precision"):
        out.with_precision("float8")


def test_bad_artifacts_are_typed_errors(data, tmp_path):
    with pytest.raises(ArtifactError, match="no such"):
        DistilledSet.load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ArtifactError, match="corrupt"):
        DistilledSet.load(junk)
    good = distill(data, method="random", size=5, seed=0).save(tmp_path / "good.npz")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(ArtifactError, match="corrupt"):
        DistilledSet.load(truncated)
    import numpy as _np

    with _np.load(good, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    meta["format_version"] = 99
    arrays["meta"] = _np.array(json.dumps(meta))
    _np.savez(tmp_path / "future.npz", **arrays)
    with pytest.raises(ArtifactError, match="newer"):
        DistilledSet.load(tmp_path / "future.npz")
    # A pickled object array is refused, never unpickled.
    _np.savez(tmp_path / "pickled.npz", X=_np.array([object()], dtype=object), y=_np.zeros(1),
              weight=_np.ones(1), regime=_np.zeros(1, dtype="uint8"), meta=arrays["meta"])
    with pytest.raises(ArtifactError):
        DistilledSet.load(tmp_path / "pickled.npz")


@pytest.mark.parametrize("argv,needle", [
    (["--method", "magic"], "unknown method"),
    (["--size", "10000000"], "size"),
    (["--regime", "unicorn"], "regime 'unicorn' has no training candles"),
    (["--size", "2", "--per-regime"], "smaller than the number of regimes"),
    (["--backend", "spark"], "invalid choice"),
    (["--method", "gradient@svm"], "unknown learner 'svm'"),
    (["--method", "kmedoids@mlp"], "kmedoids does not match a learner"),
])
def test_cli_distill_errors_exit_2_with_one_line(argv, needle, tmp_path, capsys):
    code = main(["distill", "--sample-bars", "20000", "--no-progress", "--out", str(tmp_path / "x.npz"), *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and needle in err


def test_cli_distill_writes_an_artifact(tmp_path, capsys):
    out = tmp_path / "set.npz"
    code = main(["distill", "--sample-bars", "20000", "--method", "kmedoids", "--size", "10", "--per-regime",
                 "--no-progress", "--out", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0 and stdout.strip().splitlines()[-1] == str(out)
    assert "SYNTHETIC" in stdout and "compression:" in stdout
    assert DistilledSet.load(out).size == 10


def test_cli_distill_matches_a_named_learner(tmp_path):
    # the regression task matches least squares by default; name the logistic model instead
    # (gradient@mlp takes the same path and a minute of matching)
    out = tmp_path / "named.npz"
    assert main(["distill", "--sample-bars", "20000", "--method", "gradient@logistic", "--task", "classification",
                 "--size", "10", "--no-progress", "--out", str(out)]) == 0
    dset = DistilledSet.load(out)
    assert dset.meta["method"] == "gradient" and dset.meta["config"]["learner"] == "logistic"
    assert main(["distill", "--sample-bars", "20000", "--method", "gradient", "--task", "regression",
                 "--size", "10", "--no-progress", "--out", str(out)]) == 0
    assert DistilledSet.load(out).meta["config"]["learner"] != "logistic"
