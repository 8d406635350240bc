"""validate_candles: one test per rule, the same rules through ``distillbt data check FILE``,
gaps, UTC and dtypes."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import pytest

from distillbt.data.candles import COLUMNS, validate_candles
from distillbt.errors import CandleValidationError

START = pd.Timestamp("2024-01-01 00:00", tz="UTC")


def ohlcv(n: int = 6, freq: str = "5min", start=START) -> pd.DataFrame:
    """Valid candles: low < min(open, close) <= max(open, close) < high, UTC index ``time``."""
    base = 100.0 + np.arange(n)
    index = pd.DatetimeIndex(
        pd.date_range(start, periods=n, freq=freq, name="time").as_unit("ns"), freq=None)
    return pd.DataFrame(
        {"open": base, "high": base + 1.5, "low": base - 1.0, "close": base + 0.5,
         "volume": 10.0 * (1 + np.arange(n))},
        index=index,
    )


def validate(frame: pd.DataFrame, **kwargs):
    return validate_candles(frame, symbol="TEST", source="test", **kwargs)


# ------------------------------------------------------------------------------ the rules


def _set(col: str, row: int, value) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def mutate(frame):
        frame = frame.copy()
        if isinstance(value, str):
            frame[col] = frame[col].astype(object)
        frame.iloc[row, frame.columns.get_loc(col)] = value
        return frame
    return mutate


def _index(mutate_times: Callable[[list], list]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def mutate(frame):
        frame = frame.copy()
        frame.index = pd.DatetimeIndex(mutate_times(list(frame.index)), name="time")
        return frame
    return mutate


def _swap(times):
    times[2], times[3] = times[3], times[2]
    return times


def _duplicate(times):
    times[3] = times[2]
    return times


def _shift(times):
    times[3] = times[3] + pd.Timedelta("2min")
    return times


def _nat(times):
    times[2] = pd.NaT
    return times


def _year_2300(times):
    times = pd.DatetimeIndex(times).as_unit("us")  # datetime64[ns] ends in 2262
    return times.insert(4, pd.Timestamp("2300-01-01", tz="UTC")).delete(5)


def _microseconds(times):
    return [times[0] + pd.Timedelta(microseconds=i) for i in range(len(times))]


@dataclass(frozen=True)
class Case:
    id: str
    mutate: Callable[[pd.DataFrame], pd.DataFrame]
    rule: str
    row: int | None
    fragment: str  # a piece of the message that says what is wrong


CASES = [
    Case("empty input", lambda f: f.iloc[:0], "non-empty", None, "empty"),
    Case("missing column", lambda f: f.drop(columns="volume"), "columns", None, "volume"),
    Case("non-numeric value", _set("close", 3, "abc"), "numeric", 3, "'abc'"),
    Case("NaN", _set("high", 2, np.nan), "finite", 2, "high is nan"),
    Case("inf", _set("volume", 4, np.inf), "finite", 4, "volume is inf"),
    Case("zero price", _set("low", 3, 0.0), "price>0", 3, "low is 0"),
    Case("negative price", _set("open", 2, -1.0), "price>0", 2, "open is -1"),
    Case("high below low", _set("high", 2, 50.0), "high>=low", 2, "below low"),
    Case("high below max(open, close)", _set("high", 3, 103.25), "high>=max(open,close)", 3,
         "below max(open, close)"),
    Case("low above min(open, close)", _set("low", 4, 104.25), "low<=min(open,close)", 4,
         "above min(open, close)"),
    Case("negative volume", _set("volume", 1, -5.0), "volume>=0", 1, "volume is -5"),
    Case("duplicate timestamp", _index(_duplicate), "unique timestamps", 3, "duplicate"),
    Case("unsorted timestamps", _index(_swap), "sorted timestamps", 3, "back in time"),
    Case("mixed intervals", _index(_shift), "one interval", 3, "mixed intervals"),
    Case("single candle without timeframe", lambda f: f.iloc[:1], "interval", None,
         "single candle"),
    Case("missing timestamp", _index(_nat), "timestamp", 2, "timestamp"),
    Case("timestamp out of range", _index(_year_2300), "timestamp", 4, "supported range"),
    Case("sub-millisecond spacing", _index(_microseconds), "interval", 1, "at least 1 ms"),
]
FRAME_ONLY = [
    Case("index is not datetimes", lambda f: f.reset_index(drop=True), "datetime index", None,
         "timestamps"),
]


@pytest.mark.parametrize("case", CASES + FRAME_ONLY, ids=lambda c: c.id)
def test_rule(case):
    frame = case.mutate(ohlcv())
    with pytest.raises(CandleValidationError) as info:
        validate(frame)
    error = info.value
    message = str(error)
    assert error.rule == case.rule
    assert error.row == case.row
    assert f"[rule: {case.rule}]" in message
    assert case.fragment in message
    assert "\n" not in message
    if case.row is None:
        assert error.time is None
    else:
        assert message.startswith(f"row {case.row} (")
        assert f"({error.time})" in message
        expected = frame.index[case.row]
        assert (pd.isna(error.time) and pd.isna(expected)) or error.time == expected


def test_single_candle_with_a_timeframe_is_valid():
    candles = validate(ohlcv().iloc[:1], timeframe="5m")
    assert len(candles) == 1 and candles.timeframe == "5m" and len(candles.gaps) == 0


def test_first_offending_row_is_named():
    frame = _set("volume", 4, -1.0)(_set("volume", 2, -1.0)(ohlcv()))
    with pytest.raises(CandleValidationError) as info:
        validate(frame)
    assert info.value.row == 2


def test_declared_timeframe_must_divide_the_spacing():
    with pytest.raises(CandleValidationError) as info:
        validate(ohlcv(freq="5min"), timeframe="2m")
    assert info.value.rule == "one interval"


# ------------------------------------------------------------------------------------ gaps


def test_gaps_are_reported_not_filled():
    full = ohlcv(n=12, freq="1h")
    frame = full.drop(full.index[[2, 3, 4, 8]])
    candles = validate(frame)
    assert candles.timeframe == "1h"
    assert len(candles) == 8  # nothing invented
    pd.testing.assert_index_equal(candles.frame.index, frame.index)
    assert len(candles.gaps) == 2
    assert candles.gaps["missing"].tolist() == [3, 1]
    assert candles.gaps["after"].tolist() == [full.index[1], full.index[7]]
    assert candles.gaps["before"].tolist() == [full.index[5], full.index[9]]
    assert candles.missing_candles == 4
    assert candles.summary()["gaps"] == 2 and candles.summary()["missing_candles"] == 4


def test_gaps_against_a_declared_timeframe():
    candles = validate(ohlcv(n=4, freq="10min"), timeframe="5m")
    assert candles.timeframe == "5m"
    assert candles.gaps["missing"].tolist() == [1, 1, 1]


def test_no_gaps():
    candles = validate(ohlcv())
    assert len(candles.gaps) == 0 and candles.missing_candles == 0
    assert list(candles.gaps.columns) == ["after", "before", "missing"]


# ------------------------------------------------------------------------ UTC and dtypes


def test_naive_timestamps_are_taken_as_utc():
    candles = validate(ohlcv().tz_localize(None))
    assert str(candles.frame.index.tz) == "UTC"
    assert candles.start == START


def test_aware_timestamps_are_converted_to_utc():
    candles = validate(ohlcv().tz_convert("America/New_York"))
    assert str(candles.frame.index.tz) == "UTC"
    assert candles.start == START


def test_output_dtypes_columns_and_index():
    frame = ohlcv().astype({"open": "float32", "volume": "int64"})
    frame["close"] = frame["close"].astype(str)  # numeric text is accepted
    frame["extra"] = "dropped"
    frame = frame[["extra", "volume", "close", "low", "high", "open"]]
    candles = validate(frame)
    assert list(candles.frame.columns) == list(COLUMNS)
    assert all(dtype == np.float64 for dtype in candles.frame.dtypes)
    index = candles.frame.index
    assert isinstance(index, pd.DatetimeIndex)
    assert str(index.tz) == "UTC" and index.name == "time" and index.unit == "ns"
    assert candles.frame["close"].tolist() == ohlcv()["close"].tolist()


def test_candles_metadata():
    candles = validate_candles(ohlcv(), symbol="BTC/USDT", source="unit", timeframe=None)
    assert (candles.symbol, candles.source, candles.timeframe) == ("BTC/USDT", "unit", "5m")
    assert candles.synthetic is False
    assert candles.start == START and candles.end == START + pd.Timedelta("25min")


# ------------------------------------------------------------- the same rules through the CLI


CLI_CASES = CASES + [
    Case("unparseable timestamp", None, "timestamp", 3, "'not a time'"),
]


def _cli_csv(case: Case) -> str:
    if case.mutate is None:  # unparseable time text: only a file can have it
        frame = ohlcv()
        times = [t.isoformat() for t in frame.index]
        times[3] = "not a time"
        return frame.reset_index(drop=True).assign(time=times)[["time", *COLUMNS]].to_csv(
            index=False)
    return case.mutate(ohlcv()).to_csv(index_label="time")


def _check(path, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "distillbt", "data", "check", str(path)],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """``distillbt data check FILE`` for every case, a few at a time (each start costs seconds)."""
    folder = tmp_path_factory.mktemp("cli")
    env = {k: v for k, v in os.environ.items() if k != "DISTILLBT_DEBUG"}
    env["DISTILLBT_CACHE_DIR"] = str(folder / "cache")
    paths = {}
    for number, case in enumerate(CLI_CASES):
        paths[case.id] = folder / f"case{number:02d}.csv"
        paths[case.id].write_text(_cli_csv(case), encoding="utf-8")
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
        done = dict(zip(paths, pool.map(lambda p: _check(p, env), paths.values())))
    return {case_id: (paths[case_id], done[case_id]) for case_id in paths}


@pytest.mark.slow
@pytest.mark.parametrize("case", CLI_CASES, ids=lambda c: c.id)
def test_cli_data_check_rejects_bad_csv(cli_runs, case):
    path, result = cli_runs[case.id]
    returncode, stdout, stderr = result.returncode, result.stdout, result.stderr
    assert returncode == 2, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), stderr
    line = lines[0]
    assert f"[rule: {case.rule}]" in line
    assert case.fragment in line
    assert path.name in line
    if case.row is not None:
        assert f"row {case.row}" in line
    assert "Traceback" not in stderr and "valid: yes" not in stdout


@pytest.mark.slow
def test_cli_data_check_accepts_a_good_csv(tmp_path):
    path = tmp_path / "good.csv"
    ohlcv().to_csv(path, index_label="time")
    result = _check(path, dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert "interval: 5m" in result.stdout and result.stderr == ""
