"""A basket of instruments as one data source: the sources it reads, what it skips and why, the
correlated sample basket, and the one calendar split of the whole basket."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from distillbt.cli import main
from distillbt.data.basket import Basket, load_basket
from distillbt.data.cache import CacheKey, CandleCache
from distillbt.data.candles import validate_candles
from distillbt.data.files import load_file
from distillbt.data.sample import sample_basket, sample_market
from distillbt.data.sources import load_candles
from distillbt.errors import DataSourceError, InputError

STEP = pd.Timedelta(minutes=15)


def market(bars=1_500, seed=1, start="2024-01-01", timeframe="15m"):
    return sample_market(bars=bars, seed=seed, start=start, timeframe=timeframe)


def candles_of(frame: pd.DataFrame, name="X"):
    return validate_candles(frame, symbol=name, source=f"test:{name}", timeframe="15m")


@pytest.fixture
def folder(tmp_path):
    """Three good instruments (CSV, Parquet, Feather), then what a real folder also holds: notes,
    a broken file, a short history and one file of another interval."""
    root = tmp_path / "pairs"
    root.mkdir()
    market(seed=1).frame.to_csv(root / "AAA.csv")
    market(seed=2).frame.to_parquet(root / "BBB.parquet")
    market(seed=3).frame.reset_index().to_feather(root / "CCC.feather")
    (root / "notes.md").write_text("# my pairs\n")
    (root / "broken.txt").write_text("time,open,high,low,close,volume\n2024-01-01,1,2,0.5,oops,3\n")
    market(bars=300, seed=4).frame.to_csv(root / "SHORT.csv")
    market(bars=1_500, seed=5, timeframe="1h").frame.to_csv(root / "HOURLY.csv")
    (root / ".hidden.csv").write_text("not read")
    return root


# -- the sample basket --------------------------------------------------------------------------
def test_sample_basket_correlates_like_real_pairs():
    basket = load_basket("sample", sample_instruments=4, sample_bars=20_000, seed=3)
    assert list(basket) == ["SAMPLE1", "SAMPLE2", "SAMPLE3", "SAMPLE4"]
    assert basket.timeframe == "15m" and basket.synthetic and not basket.problems
    returns = np.array([np.diff(np.log(c.frame["close"].to_numpy())) for c in basket.values()])
    corr = np.corrcoef(returns)[np.triu_indices(4, 1)]
    assert np.all((corr > 0.4) & (corr < 0.9)), corr  # like liquid crypto pairs at 15m, not clones
    # One market: the same regimes everywhere, each instrument its own path and price level.
    first = basket["SAMPLE1"]
    assert all(c.true_regimes.equals(first.true_regimes) for c in basket.values())
    assert len({round(float(c.frame["close"].iloc[-1]), 6) for c in basket.values()}) == 4


def test_sample_basket_is_seeded_and_instruments_do_not_depend_on_how_many():
    two = sample_basket(2, bars=3_000, seed=5)
    four = sample_basket(4, bars=3_000, seed=5)
    pd.testing.assert_frame_equal(two[1].frame, four[1].frame)
    pd.testing.assert_frame_equal(sample_basket(2, bars=3_000, seed=5)[0].frame, two[0].frame)
    assert not np.allclose(sample_basket(2, bars=3_000, seed=6)[0].frame["close"], two[0].frame["close"])
    independent = sample_basket(3, bars=20_000, seed=5, market_share=0.0)
    r = np.array([np.diff(np.log(c.frame["close"].to_numpy())) for c in independent])
    assert np.abs(np.corrcoef(r)[np.triu_indices(3, 1)]).max() < 0.15  # the factor is what correlates them
    with pytest.raises(InputError, match="market_share"):
        sample_basket(2, bars=100, market_share=1.5)


def test_a_basket_of_one_is_todays_single_source(tmp_path):
    single = load_basket("sample", sample_bars=3_000)
    assert list(single) == ["sample"]
    pd.testing.assert_frame_equal(single.single.frame, load_candles("sample", sample_bars=3_000).frame)
    assert single.source == load_candles("sample", sample_bars=3_000).source
    # --sample-instruments 1 is the plain sample market, too.
    pd.testing.assert_frame_equal(load_basket("sample", sample_instruments=1, sample_bars=3_000).single.frame,
                                  single.single.frame)
    path = tmp_path / "ETH.csv"
    market(bars=200).frame.to_csv(path)  # short, but alone: passed on as today
    pd.testing.assert_frame_equal(load_basket([str(path)]).single.frame, load_file(path).frame)
    # A lone source that fails raises what it raises alone.
    with pytest.raises(DataSourceError, match="no such data source"):
        load_basket([str(tmp_path / "missing.csv")])


# -- folders, files, the cache -----------------------------------------------------------------
def test_folder_loads_one_instrument_per_file_and_names_what_it_skips(folder):
    basket = load_basket([str(folder)])
    assert list(basket) == ["AAA", "BBB", "CCC"]  # by stem, sorted
    pd.testing.assert_frame_equal(basket["BBB"].frame, load_file(folder / "BBB.parquet").frame)
    problems = {p.name: p.message for p in basket.problems}
    assert set(problems) == {"notes.md", "broken.txt", "SHORT", "HOURLY.csv"}
    assert "not a candle file" in problems["notes.md"]
    assert "oops" in problems["broken.txt"]
    assert "300 candles, fewer than the 1,000" in problems["SHORT"]
    assert "1h candles, the folder's other instruments are 15m" in problems["HOURLY.csv"]
    assert all("\n" not in str(p) for p in basket.problems)
    assert load_basket([str(folder)], min_candles=200).names == ("AAA", "BBB", "CCC", "SHORT")


def test_mixed_intervals_are_one_line_or_resampled(folder, tmp_path):
    sources = [str(folder / "AAA.csv"), str(folder / "HOURLY.csv")]
    with pytest.raises(InputError, match=r"mixed timeframes in the basket \(15m: AAA; 1h: HOURLY\)") as info:
        load_basket(sources)
    assert "\n" not in str(info.value)
    hourly = load_basket(sources, basket_timeframe="1h", min_candles=300)
    assert hourly.timeframe == "1h" and list(hourly) == ["AAA", "HOURLY"]
    assert len(hourly["AAA"]) == 1_500 // 4
    tie = tmp_path / "tie"
    tie.mkdir()
    market(seed=1).frame.to_csv(tie / "A.csv")
    market(seed=2, timeframe="1h").frame.to_csv(tie / "B.csv")
    with pytest.raises(InputError, match="mixed timeframes in .*none the most common"):
        load_basket([str(tie)])


def test_repeated_sources_and_the_exchange_cache(folder, tmp_path):
    cache = CandleCache(tmp_path / "cache")
    for symbol, seed in (("BTC/USDT:USDT", 11), ("ETH/USDT:USDT", 12)):
        frame = market(seed=seed).frame
        span = (int(frame.index[0].value // 1_000_000), int(frame.index[-1].value // 1_000_000) + 900_000)
        cache.write(CacheKey("bybit", "linear", symbol, "15m"), frame, [span])
    basket = load_basket(["bybit:BTC/USDT:USDT,ETH/USDT:USDT,SOL/USDT:USDT:15m", str(folder / "AAA.csv"),
                          str(folder / "AAA.csv")], cache_dir=cache.root)
    assert list(basket) == ["BTC/USDT:USDT", "ETH/USDT:USDT", "AAA", "AAA#2"]
    pd.testing.assert_frame_equal(basket["ETH/USDT:USDT"].frame,
                                  load_candles("bybit:ETH/USDT:USDT:15m", cache_dir=cache.root).frame)
    (problem,) = basket.problems
    assert problem.name == "SOL/USDT:USDT" and "not cached" in problem.message and "fetch" in problem.message


def test_nothing_usable_is_one_input_error(folder, tmp_path):
    with pytest.raises(InputError, match=r"no usable instrument .*\(2 skipped: notes.md: .*unsupported file type '.md'.*; missing.csv: no such"):
        load_basket([str(folder / "notes.md"), str(tmp_path / "missing.csv")])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="an empty folder"):
        load_basket([str(empty)])


def test_single_source_commands_point_to_the_basket(folder, capsys):
    assert main(["data", "check", str(folder)]) == 2
    assert "is a folder" in capsys.readouterr().err
    with pytest.raises(DataSourceError, match="names 2 symbols: that is a basket"):
        load_candles("bybit:BTC/USDT:USDT,ETH/USDT:USDT:15m")


# -- the calendar split -------------------------------------------------------------------------
def test_one_calendar_split_for_instruments_of_different_histories():
    full = market(bars=3_000, seed=1).frame
    later = full.iloc[1_000:]  # a shorter history, listed later
    gappy = full.drop(full.index[2_500:2_700])  # an outage in the holdout period
    basket = Basket({"FULL": candles_of(full, "FULL"), "LATER": candles_of(later, "LATER"),
                     "GAPPY": candles_of(gappy, "GAPPY")})
    split = basket.calendar_split((0.5, 0.3, 0.2))
    t0 = full.index[0]
    assert split.boundaries == (t0, t0 + 1_500 * STEP, t0 + 2_400 * STEP, t0 + 3_000 * STEP)
    assert split.expected == {"training": 1_500, "screening": 900, "holdout": 600}
    assert split.positions["FULL"] == {"training": (0, 1_500), "screening": (1_500, 2_400), "holdout": (2_400, 3_000)}
    assert split.positions["LATER"] == {"training": (0, 500), "screening": (500, 1_400), "holdout": (1_400, 2_000)}
    assert split.candles("GAPPY", "holdout") == 400
    # Each period's candles are the same moments for every instrument.
    for name, candles in basket.items():
        start, stop = split.positions[name]["screening"]
        assert candles.frame.index[start] == split.boundaries[1] and candles.frame.index[stop - 1] < split.boundaries[2]
    assert set(split.short) == {"LATER", "GAPPY"}
    assert split.short["LATER"] == ["training 500 of 1,500 candles (starts 2024-01-11T10:00:00+00:00)"]
    assert split.short["GAPPY"] == ["holdout 400 of 600 candles (gaps)"]
    assert split.covered("LATER") == ("training", "screening", "holdout")


def test_the_calendar_leaves_out_what_no_instrument_covers():
    early = market(bars=1_000, seed=1, start="2018-01-01").frame
    late = market(bars=1_000, seed=2, start="2021-11-15").frame
    split = Basket({"EARLY": candles_of(early), "LATE": candles_of(late)}).calendar_split((0.6, 0.4), names=("a", "b"))
    assert split.expected == {"a": 1_200, "b": 800}
    assert split.boundaries[1] == late.index[200]  # 1,000 intervals of EARLY, then 200 of LATE
    assert split.positions["EARLY"] == {"a": (0, 1_000), "b": (1_000, 1_000)}
    assert split.covered("EARLY") == ("a",)
    assert split.short["EARLY"] == ["a 1,000 of 1,200 candles (ends 2018-01-11T09:45:00+00:00)",
                                    "b 0 of 800 candles: none, its history ends 2018-01-11T09:45:00+00:00"]


@pytest.mark.parametrize("fractions", [(0.5, 0.3), (0.5, -0.3, 0.8), ("a",), ()])
def test_bad_fractions_are_input_errors(fractions):
    with pytest.raises(InputError, match="fractions"):
        load_basket("sample", sample_bars=2_000).calendar_split(fractions)


def test_until_cuts_every_instrument(folder):
    basket = load_basket([str(folder)])
    cut = basket.until("2024-01-05")
    assert all(c.end < pd.Timestamp("2024-01-05", tz="UTC") for c in cut.values())
    assert len(cut["AAA"]) == 4 * 24 * 4
    with pytest.raises(InputError, match="no candle opens before it"):
        load_basket("sample", sample_bars=2_000).until("2000-01-01")


# -- the command --------------------------------------------------------------------------------
def test_data_basket_shows_every_instrument_and_every_skip(folder, capsys):
    assert main(["data", "basket", str(folder), "--data", str(folder / "AAA.csv")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("basket:    4 instruments of 15m candles, 2024-01-01T00:00:00+00:00")
    table = out[out.index(next(line for line in out if line.startswith("instrument"))):]
    assert [line.split()[0] for line in table[2:6]] == ["AAA", "BBB", "CCC", "AAA#2"]
    assert "750 (100%)" in table[2]  # the training period: half of 1,500 candles
    skipped = [line for line in out if line.startswith("skipped ")]
    # Files that are not candles, then the odd interval out, then the short history.
    assert [line.split(":")[0] for line in skipped] == ["skipped broken.txt", "skipped notes.md",
                                                        "skipped HOURLY.csv", "skipped SHORT"]


def test_data_basket_json_and_the_sample_basket(capsys):
    assert main(["data", "basket", "--sample-instruments", "3", "--sample-bars", "2000", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["instruments"] == ["SAMPLE1", "SAMPLE2", "SAMPLE3"] and payload["synthetic"]
    assert payload["split"]["positions"]["SAMPLE2"]["holdout"] == [1_600, 2_000]


@pytest.mark.parametrize("argv,needle", [
    (["--data", "no/such.csv", "--data", "nor/this.csv"], "no usable instrument"),
    (["sample", "--fractions", "0.5,x"], "--fractions"),
    (["sample", "--sample-bars", "2000", "--fractions", "0.7,0.7"], "sum to 1"),
    (["sample", "--sample-instruments", "0"], "sample_instruments"),
])
def test_data_basket_bad_input_is_one_line_exit_2(argv, needle, capsys):
    assert main(["data", "basket", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err
