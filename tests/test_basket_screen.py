"""A basket of instruments in one screen: one calendar, distilled per instrument, ranked on the basket."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from distillbt.basket_screen import calendar_boundaries, instruments_frame, pool_sets, screen_basket
from distillbt.data.candles import Candles
from distillbt.data.sample import sample_market
from distillbt.discovery import discover
from distillbt.distill.prepare import prepare
from distillbt.distill.runner import distill
from distillbt.errors import InputError
from distillbt.fitting import fit_model_pooled

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def basket():
    return {f"S{k}": sample_market(bars=8_000, seed=20 + k) for k in range(3)}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("basket_strategies")
    for name in ("sma_cross.py", "linear_next_candle.py"):
        shutil.copy(ROOT / "strategies" / name, folder / name)
    return folder


def test_pooled_exact_linear_points_keep_the_pooled_real_rows_moments(basket):
    """Exact-linear points keep each instrument's first and second moments; pooled after
    mapping back to raw features (and to raw returns), they keep the moments of every
    instrument's real training rows together — so a least-squares model fitted on them is
    the one fitted on the pooled rows."""
    boundaries = calendar_boundaries(basket)
    sets, raw_rows, raw_targets, parts = {}, [], [], []
    for name, candles in basket.items():
        data = prepare(candles, fractions=(0.5, 0.3, 0.2), boundaries=boundaries)
        sets[name] = distill(data, method="exact-linear", size=len(data.feature_names) + 1, task="regression",
                             per_regime=False, seed=0, progress=False)
        train = data.parts["train"]
        raw_rows.append(data.scaler.inverse_transform(data.X[train]) if hasattr(data.scaler, "inverse_transform")
                        else data.X[train] * data.scaler.scale_ + data.scaler.mean_)
        raw_targets.append(data.target[train])
        parts.append((candles, 0, int(candles.frame.index.searchsorted(boundaries[0]))))
    pooled = pool_sets(sets)
    assert pooled.meta["n_rows"] == sum(s.meta["n_rows"] for s in sets.values())
    assert pooled.weight.sum() == pytest.approx(1.0)
    scaler = pooled.meta["scaler"]
    points = pooled.X * np.asarray(scaler["scale"]) + np.asarray(scaler["mean"])
    returns = pooled.y * pooled.meta["target_scale"]
    rows, targets = np.concatenate(raw_rows), np.concatenate(raw_targets)
    w = pooled.weight
    np.testing.assert_allclose(w @ points, rows.mean(axis=0), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(points.T @ (w[:, None] * points), rows.T @ rows / len(rows), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(points.T @ (w * returns), rows.T @ targets / len(rows), rtol=1e-6, atol=1e-14)
    # the strategy's model on the pooled points against the same model on the pooled candles
    # (whose rows differ a little: warm-up and embargo): nearly the same predictions
    cls = next(c for c in discover(ROOT / "strategies").configurations()
               if c.strategy.name == "LinearNextCandle").strategy.cls
    on_points, on_rows = cls.fit_model_on_distilled(pooled), fit_model_pooled(cls, parts)
    frame = basket["S1"].frame
    a = on_points.signal(frame) * on_points.target_scale  # in return units: each model has its own scale
    b = on_rows.signal(frame) * on_rows.target_scale
    ok = np.isfinite(a) & np.isfinite(b)
    assert ok.sum() > 5_000 and np.corrcoef(a[ok], b[ok])[0, 1] > 0.99
    own = cls.fit_model_on_distilled(sets["S0"])  # pooling is not one instrument's fit
    assert np.corrcoef(own.signal(frame)[ok], b[ok])[0, 1] < np.corrcoef(a[ok], b[ok])[0, 1]


@pytest.mark.parametrize("pool", ["pooled", "per-instrument"])
def test_basket_screen_scores_every_instrument_and_ranks_on_the_basket(basket, folder, pool):
    out = screen_basket(folder, basket, pool=pool, validate=True, top=2, progress=False, n_jobs=2)
    summary = out.summary
    assert summary["instruments"] == ["S0", "S1", "S2"] and summary["pool"] == pool
    assert summary["instrument_configurations"] == 3 * summary["configurations"]
    scored = [r for r in out.records if r.screen_score is not None]
    assert len(scored) == summary["configurations"]
    for record in scored:
        per = [record.instruments[name]["screen_score"] for name in summary["instruments"]]
        assert record.screen_score == pytest.approx(np.mean(per))
        fulls = [record.instruments[name]["full_score"] for name in summary["instruments"]]
        assert record.full_score == pytest.approx(np.mean(fulls))
    ranks = [r.screen_rank for r in scored]
    assert ranks == sorted(ranks) and [r.screen_score for r in scored] == sorted((r.screen_score for r in scored),
                                                                                   reverse=True)
    survivors = [r for r in out.records if r.survivor]
    assert len(survivors) == 2
    for record in survivors:
        holdouts = [record.instruments[name]["holdout_score"] for name in summary["instruments"]]
        assert all(h is not None for h in holdouts) and record.holdout_score == pytest.approx(np.mean(holdouts))
    # the screen agrees with the full backtests, on the basket and on each instrument
    assert summary["spearman"] > 0.9
    assert all(f["spearman"] > 0.8 for f in summary["instruments_fidelity"].values())
    # one calendar: the screening period starts at the same time on every instrument
    starts = {summary["instrument_periods"][name]["screening"]["first"] for name in summary["instruments"]}
    assert len(starts) == 1
    table = instruments_frame(out)
    assert list(table.columns) == ["S0", "S1", "S2"] and len(table) == len(out.records)
    if pool == "pooled":
        assert summary["pooled_fit_seconds"] > 0
        assert all(d["pooled"] == ["S0", "S1", "S2"] for d in summary["distilled"].values())


def test_worst_basket_score_and_a_short_instrument_skipped(basket, folder):
    short = sample_market(bars=600, seed=99)
    short = Candles(frame=short.frame.set_axis(basket["S0"].frame.index[-600:]), symbol="SHORT",
                    timeframe=short.timeframe, source="test")
    out = screen_basket(folder, {**basket, "SHORT": short}, basket_score="worst", top=1, progress=False,
                        plain="full")
    assert out.summary["instruments"] == ["S0", "S1", "S2"]
    assert any(p.get("instrument") == "SHORT" and "skipped" in p["message"] for p in out.problems)
    for record in out.records:
        if record.screen_score is not None:
            assert record.screen_score == min(e["screen_score"] for e in record.instruments.values())


def test_bad_baskets_are_one_line_errors(basket, folder):
    hourly = sample_market(bars=3_000, seed=1, timeframe="1h")
    with pytest.raises(InputError, match="mixed timeframes"):
        screen_basket(folder, {"A": basket["S0"], "B": hourly}, progress=False)
    with pytest.raises(InputError, match="pool must be"):
        screen_basket(folder, basket, pool="both", progress=False)
    with pytest.raises(InputError, match="basket score"):
        screen_basket(folder, basket, basket_score="best", progress=False)
    tiny = {name: Candles(frame=c.frame.iloc[:300], symbol=name, timeframe=c.timeframe, source="test")
            for name, c in basket.items()}
    with pytest.raises(InputError, match="no instrument of the basket is usable"):
        screen_basket(folder, tiny, progress=False)
