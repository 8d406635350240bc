"""Multi-horizon model strategies: a model per interval, the mean prediction traded."""

from __future__ import annotations

import textwrap
from types import SimpleNamespace

import numpy as np
import pytest

from distillbt.data.sample import sample_market
from distillbt.distill.update import distill_horizons
from distillbt.errors import InputError
from distillbt.horizons import FittedEnsemble, _coarse_signal
from distillbt.screen import screen
from distillbt.strategy import FittedModel

from .test_model_strategy import COMMISSION, RidgeLags, assert_same_execution, recording, run_backtrader

SPLIT = 6000
PARAMS = {"alpha": 0.1, "long_threshold": 0.02, "short_threshold": -0.02, "horizons": ("1h", "4h")}


@pytest.fixture(scope="module")
def market():
    return sample_market(bars=12_000, seed=3)


def test_a_coarse_prediction_is_used_from_the_close_of_its_last_base_candle(market):
    frame = market.frame.iloc[:2000]
    echo = SimpleNamespace(signal=lambda coarse: coarse["close"].to_numpy())  # predicts its own close
    got = _coarse_signal(echo, frame, "15m", "1h")
    minute = frame.index.minute.to_numpy()
    close = frame["close"].to_numpy()
    last_of_hour = np.flatnonzero(minute == 45)
    # at each hour's last 15m candle: that hour's close; until the next one: still it
    for a, b in zip(last_of_hour[:-1], last_of_hour[1:]):
        np.testing.assert_array_equal(got[a:b], close[a])
    assert np.isnan(got[:last_of_hour[0]]).all()  # before the first complete hour closes


def test_backtrader_and_vectorised_agree_trade_for_trade(market):
    fitted = RidgeLags.fit_model(market, params=PARAMS, end=SPLIT)
    assert isinstance(fitted, FittedEnsemble) and fitted.timeframes == ("15m", "1h", "4h")
    assert [m.n_train for m in fitted.members][1] < fitted.members[0].n_train
    assert fitted.fit_key == RidgeLags.fit_key(PARAMS) and fitted.strategy == "RidgeLags"
    vec = RidgeLags.vectorised(market, fitted, params=PARAMS, start=SPLIT)
    strat, final = run_backtrader(recording(RidgeLags), market.frame, fitted=fitted, trade_start=SPLIT, **PARAMS)
    assert vec["trades"] > 20
    assert_same_execution(vec, strat, final, SPLIT)
    # and when Backtrader fits the ensemble itself on the bars before trade_start
    strat, final = run_backtrader(recording(RidgeLags), market.frame, trade_start=SPLIT, **PARAMS)
    assert isinstance(strat.fitted_model, FittedEnsemble)
    assert_same_execution(vec, strat, final, SPLIT)
    # the ensemble trades otherwise than the 15m model alone
    single = {k: v for k, v in PARAMS.items() if k != "horizons"}
    alone = RidgeLags.vectorised(market, RidgeLags.fit_model(market, params=single, end=SPLIT), params=single,
                                 start=SPLIT)
    assert not np.array_equal(alone["positions"], vec["positions"])


def test_positions_at_t_ignore_candles_after_t(market):
    fitted = RidgeLags.fit_model(market, params=PARAMS, end=SPLIT)
    base = RidgeLags.vectorised(market, fitted, params=PARAMS, start=SPLIT)
    t = 9000
    frame = market.frame.copy()
    after = frame.index > frame.index[t]
    factor = np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.02, after.sum())))
    for col in ("open", "high", "low", "close"):
        frame.loc[after, col] = frame.loc[after, col] * factor
    moved = RidgeLags.vectorised(frame, fitted, params=PARAMS, start=SPLIT)
    upto = t - SPLIT + 1
    np.testing.assert_array_equal(moved["positions"][:upto], base["positions"][:upto])
    assert not np.array_equal(moved["positions"], base["positions"])
    # the fit reads nothing at or after its end, at any interval
    frame.loc[frame.index >= frame.index[SPLIT], "close"] *= 1.5
    frame["high"] = frame[["open", "high", "close"]].max(axis=1)
    refit = RidgeLags.fit_model(frame, params=PARAMS, end=SPLIT)
    for a, b in zip(refit.members, fitted.members):
        np.testing.assert_array_equal(a.estimator.coef_, b.estimator.coef_)


def test_fit_on_a_multi_horizon_distilled_set():
    # the 4h part's regime labeller needs ~1,000 4h candles of training period
    multi = distill_horizons(sample_market(bars=40_000, seed=3), ["15m", "1h", "4h"], method="exact-linear",
                             size=21, task="regression", per_regime=False)
    fitted = RidgeLags.fit_model_on_distilled(multi, params=PARAMS, timeframe="15m")
    assert isinstance(fitted, FittedEnsemble) and all(isinstance(m, FittedModel) for m in fitted.members)
    assert [m.trained_on for m in fitted.members] == ["points"] * 3
    single = RidgeLags.fit_model_on_distilled(multi, params={"alpha": 0.1}, timeframe="15m")
    assert isinstance(single, FittedModel)
    with pytest.raises(InputError, match="no 1d part"):
        RidgeLags.fit_model_on_distilled(multi, params={**PARAMS, "horizons": ("1d",)}, timeframe="15m")
    with pytest.raises(InputError, match="longer whole multiple"):
        RidgeLags.fit_model(sample_market(bars=2000, seed=3), params={**PARAMS, "horizons": ("10m",)}, end=1000)
    with pytest.raises(InputError, match="multi-horizon distilled set"):
        RidgeLags.fit_model_on_distilled(multi.part_for("15m"), params=PARAMS, timeframe="15m")


STRATEGY = '''
from distillbt.models import Ridge
from distillbt.strategy import ModelStrategy


class Lags(ModelStrategy):
    params = (("alpha", 0.1),)
    features = ("ret_1", "ret_4", "vol_16", "ma_dist_64")
    grid = {"alpha": [0.1, 10.0], "long_threshold": [0.0, 0.05]}

    def make_estimator(self):
        return Ridge(alpha=self.p.alpha)
'''


def test_screen_trades_the_mean_of_the_horizons_and_full_backtests_agree(tmp_path):
    (tmp_path / "lags.py").write_text(textwrap.dedent(STRATEGY))
    candles = sample_market(bars=20_000, seed=5)
    result = screen(tmp_path, candles, horizons="1h", top=2, validate=True, progress=False,
                    commission=COMMISSION)
    assert all("horizons=('1h',)" in r.name for r in result.records)
    assert all(r.error is None for r in result.records), [r.error for r in result.records]
    # the vectorised replica of each real-fitted ensemble equals its Backtrader backtest
    for record in result.records:
        assert record.execution_rel_diff < 1e-9
    # points distilled now at both intervals (the screen checked both parts end before screening)
    assert result.summary["distilled"]["regression"]["timeframes"] == ["15m", "1h"]
    single = distill_horizons(candles, ["15m"], method="random", size=10, task="regression")
    with pytest.raises(InputError, match="multi-horizon distilled set"):
        screen(tmp_path, candles, distilled=single, horizons=("1h",), top=1, progress=False)


def test_cli_distil_the_older_part_then_screen_with_horizons(tmp_path, capsys):
    from distillbt.cli import main

    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "lags.py").write_text(textwrap.dedent(STRATEGY))
    multi = tmp_path / "multi.npz"
    data = ["--sample-bars", "20000", "--seed", "5", "--no-progress"]
    assert main(["distill", *data, "--method", "exact-linear", "--size", "21", "--task", "regression",
                 "--timeframes", "15m,1h", "--until", "2020-04-01", "--out", str(multi)]) == 0
    capsys.readouterr()
    assert main(["screen", str(folder), *data, "--distilled", str(multi), "--horizons", "1h", "--top", "1",
                 "--json"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["distilled"]["regression"]["timeframes"] == ["15m", "1h"]
    assert all(r["error"] is None and r["screen_score"] is not None for r in out["records"])
    # a set distilled from the candles the screen scores on is refused, in one line
    assert main(["distill", *data, "--method", "random", "--size", "10", "--task", "regression",
                 "--out", str(tmp_path / "late.npz")]) == 0
    capsys.readouterr()
    assert main(["screen", str(folder), *data, "--distilled", str(tmp_path / "late.npz"), "--top", "1"]) == 2
    assert "not before the screening period" in capsys.readouterr().err
    assert main(["distill", *data, "--until", "1999-01-01", "--out", str(tmp_path / "x.npz")]) == 2
    assert "--until" in capsys.readouterr().err
