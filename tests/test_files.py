"""load_file: CSV / Parquet / Feather candles, column spellings, time formats, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from distillbt.data.candles import COLUMNS
from distillbt.data.files import SUPPORTED_SUFFIXES, load_file
from distillbt.errors import CandleValidationError, DataError, DataSourceError

START = pd.Timestamp("2024-01-01 00:00", tz="UTC")


def ohlcv(n: int = 6, freq: str = "5min", start=START) -> pd.DataFrame:
    """Valid candles with a UTC index named ``time``."""
    base = 100.0 + np.arange(n)
    index = pd.date_range(start, periods=n, freq=freq, name="time").as_unit("ns")
    index = pd.DatetimeIndex(index, freq=None)  # loaded candles carry no freq
    return pd.DataFrame(
        {"open": base, "high": base + 1.5, "low": base - 1.0, "close": base + 0.5,
         "volume": 10.0 * (1 + np.arange(n))},
        index=index,
    )


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def assert_one_line_naming(error: Exception, path) -> None:
    message = str(error)
    assert "\n" not in message and message.strip() == message and message
    assert str(path) in message


# ------------------------------------------------------------------------ Yahoo-style CSV

YAHOO = """Date,Open,High,Low,Close,Adj Close,Volume
2024-01-03,10.0,11.0,9.5,10.5,7.1,1000
2024-01-04,10.5,11.5,10.0,11.0,7.4,1100
2024-01-05,11.0,12.0,10.5,11.5,7.8,1200
2024-01-08,11.5,12.5,11.0,12.0,8.1,1300
2024-01-09,12.0,13.0,11.5,12.5,8.4,1400
2024-01-10,12.5,13.5,12.0,13.0,8.8,1500
2024-01-11,13.0,14.0,12.5,13.5,9.1,1600
2024-01-12,13.5,14.5,13.0,14.0,9.5,1700
2024-01-16,14.0,15.0,13.5,14.5,9.8,1800
"""


@pytest.mark.parametrize("suffix", [".csv", ".txt"])
def test_yahoo_csv_loads_daily_with_weekend_gaps(tmp_path, suffix):
    path = write(tmp_path / f"orcl-2024{suffix}", YAHOO)
    candles = load_file(path)

    assert candles.timeframe == "1d"
    assert candles.symbol == "orcl-2024"
    assert candles.source == f"file:{path}"
    assert len(candles) == 9
    assert list(candles.frame.columns) == list(COLUMNS)  # Adj Close dropped
    assert candles.frame["close"].tolist()[:2] == [10.5, 11.0]  # Close, not Adj Close
    assert candles.frame["volume"].dtype == np.float64
    assert candles.start == pd.Timestamp("2024-01-03", tz="UTC")
    # a weekend (2 candles) and a long weekend (Monday the 15th was a holiday: 3 candles)
    assert candles.gaps["after"].tolist() == [pd.Timestamp(d, tz="UTC")
                                              for d in ("2024-01-05", "2024-01-12")]
    assert candles.gaps["before"].tolist() == [pd.Timestamp(d, tz="UTC")
                                               for d in ("2024-01-08", "2024-01-16")]
    assert candles.gaps["missing"].tolist() == [2, 3]
    assert candles.missing_candles == 5
    assert not candles.frame.index.isin(candles.gaps["after"] + pd.Timedelta("1D")).any()


def test_declared_timeframe_and_symbol(tmp_path):
    path = write(tmp_path / "x.csv", YAHOO)
    candles = load_file(path, symbol="ORCL", timeframe="1d")
    assert candles.symbol == "ORCL"
    assert candles.timeframe == "1d"
    assert list(candles.gaps["after"]) == [pd.Timestamp(d, tz="UTC")
                                           for d in ("2024-01-05", "2024-01-12")]


def test_symbol_defaults_to_the_stem_as_is(tmp_path):
    path = tmp_path / "ETH_BTC-5m.feather"
    ohlcv().reset_index().rename(columns={"time": "date"}).to_feather(path)
    assert load_file(path).symbol == "ETH_BTC-5m"


# --------------------------------------------------------------------------- time formats

EPOCH_S = [int(t.timestamp()) for t in ohlcv().index]


def _time_texts():
    idx = ohlcv().index
    return {
        "epoch seconds": [str(s) for s in EPOCH_S],
        "epoch ms": [str(s * 1000) for s in EPOCH_S],
        "epoch ms float": [f"{s * 1000}.0" for s in EPOCH_S],
        "epoch us": [str(s * 1_000_000) for s in EPOCH_S],
        "epoch ns": [str(s * 1_000_000_000) for s in EPOCH_S],
        "iso naive": [t.strftime("%Y-%m-%d %H:%M:%S") for t in idx],
        "iso T with Z": [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in idx],
        "iso +02:00": [(t.tz_convert("Etc/GMT-2")).isoformat() for t in idx],
        "iso -05:30": [(t - pd.Timedelta("5h30min")).strftime("%Y-%m-%dT%H:%M:%S-05:30")
                       for t in idx],
    }


@pytest.mark.parametrize("kind", list(_time_texts()))
def test_csv_time_formats_give_the_same_utc_index(tmp_path, kind):
    expected = ohlcv()
    frame = expected.reset_index(drop=True)
    frame.insert(0, "timestamp", _time_texts()[kind])
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)

    candles = load_file(path)
    pd.testing.assert_index_equal(candles.frame.index, expected.index)
    assert str(candles.frame.index.tz) == "UTC"
    assert candles.timeframe == "5m"


@pytest.mark.parametrize("unit,scale", [("s", 1), ("ms", 1000)])
def test_epoch_numbers_as_strings_in_parquet(tmp_path, unit, scale):
    frame = ohlcv().reset_index(drop=True)
    frame.insert(0, "open_time", pd.Series([str(s * scale) for s in EPOCH_S], dtype=object))
    path = tmp_path / f"{unit}.parquet"
    frame.to_parquet(path)
    assert load_file(path).frame.index.equals(ohlcv().index)


@pytest.mark.parametrize("dtype", ["int64", "float64"])
def test_numeric_epoch_columns_in_feather(tmp_path, dtype):
    frame = ohlcv().reset_index(drop=True)
    frame.insert(0, "time", np.array([s * 1000 for s in EPOCH_S], dtype=dtype))
    path = tmp_path / "n.feather"
    frame.to_feather(path)
    assert load_file(path).frame.index.equals(ohlcv().index)


def test_yyyymmdd_integers_are_dates(tmp_path):
    path = write(tmp_path / "d.csv", "date,open,high,low,close,volume\n"
                 "20240102,1,2,0.5,1.5,10\n20240103,1,2,0.5,1.5,10\n20240104,1,2,0.5,1.5,10\n")
    candles = load_file(path)
    assert candles.start == pd.Timestamp("2024-01-02", tz="UTC")
    assert candles.timeframe == "1d"


def test_date_and_clock_time_columns_are_combined(tmp_path):
    path = write(tmp_path / "dt.csv", "Date,Time,Open,High,Low,Close,Volume\n"
                 "2024-01-02,09:30:00,1,2,0.5,1.5,10\n"
                 "2024-01-02,09:35:00,1,2,0.5,1.5,10\n"
                 "2024-01-02,09:40:00,1,2,0.5,1.5,10\n")
    candles = load_file(path)
    assert candles.start == pd.Timestamp("2024-01-02 09:30", tz="UTC")
    assert candles.timeframe == "5m"


def test_semicolon_delimited_csv(tmp_path):
    path = write(tmp_path / "semi.csv", YAHOO.replace(",", ";"))
    assert len(load_file(path)) == 9


# --------------------------------------------------------------- Parquet / Feather round-trip


@pytest.mark.parametrize("suffix", [".parquet", ".pq", ".feather", ".arrow"])
@pytest.mark.parametrize("layout", ["date column", "utc index", "berlin index", "naive index"])
def test_parquet_and_feather_round_trip(tmp_path, suffix, layout):
    expected = ohlcv(n=8, freq="15min")
    if layout == "date column":
        frame = expected.reset_index().rename(columns={"time": "date"})
    elif layout == "utc index":
        frame = expected
    elif layout == "berlin index":
        frame = expected.tz_convert("Europe/Berlin")
    else:
        frame = expected.tz_localize(None)
    path = tmp_path / f"rt{suffix}"
    if suffix in (".parquet", ".pq"):
        frame.to_parquet(path)
    else:
        frame.to_feather(path)

    candles = load_file(path)
    pd.testing.assert_frame_equal(candles.frame, expected)
    assert candles.timeframe == "15m"
    assert candles.frame.index.name == "time"
    assert all(dtype == np.float64 for dtype in candles.frame.dtypes)


def test_extra_columns_are_ignored(tmp_path):
    frame = ohlcv().reset_index()
    frame["trades"] = 3
    frame["Adj Close"] = 1.0
    frame["close_time"] = frame["time"] + pd.Timedelta("5min")
    path = tmp_path / "extra.parquet"
    frame.to_parquet(path)
    pd.testing.assert_frame_equal(load_file(path).frame, ohlcv())


# ------------------------------------------------------------------------- column spellings


@pytest.mark.parametrize(
    "header",
    [
        "date,open,high,low,close,volume",
        "Date,Open,High,Low,Close,Volume",
        "DATETIME,OPEN,HIGH,LOW,CLOSE,VOLUME",
        "date_time,o,h,l,c,v",
        "Open time,Open,High,Low,Close,Vol",
        "open_time,open,high,low,close,vol",
        " Timestamp , Open , High , Low , Close , Volume ",
        "time,Open,High,Low,Close,Adj Close,Volume",
    ],
)
def test_column_spellings(tmp_path, header):
    names = [h.strip() for h in header.split(",")]
    rows = []
    for t, row in ohlcv().iterrows():
        values = [t.strftime("%Y-%m-%d %H:%M:%S"), row.open, row.high, row.low, row.close]
        if "Adj Close" in names:
            values.append(0.01)
        values.append(row.volume)
        rows.append(",".join(map(str, values)))
    path = write(tmp_path / "s.csv", header + "\n" + "\n".join(rows) + "\n")
    pd.testing.assert_frame_equal(load_file(path).frame, ohlcv())


# ----------------------------------------------------------------- nothing repaired silently


@pytest.mark.parametrize("rule,swap", [("sorted timestamps", True), ("unique timestamps", False)])
def test_unsorted_or_duplicate_rows_are_rejected_not_repaired(tmp_path, rule, swap):
    frame = ohlcv().reset_index()
    if swap:
        frame.loc[[2, 3], "time"] = frame.loc[[3, 2], "time"].to_numpy()
    else:
        frame.loc[3, "time"] = frame.loc[2, "time"]
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(CandleValidationError) as info:
        load_file(path)
    assert info.value.rule == rule
    assert info.value.row == 3
    assert_one_line_naming(info.value, path)


def test_gaps_are_reported_not_filled(tmp_path):
    frame = ohlcv(n=10, freq="1min").drop(ohlcv(n=10, freq="1min").index[[3, 4, 7]])
    path = tmp_path / "UNITTEST_BTC-1m.feather"
    frame.reset_index().rename(columns={"time": "date"}).to_feather(path)
    candles = load_file(path)
    assert len(candles) == 7
    assert candles.timeframe == "1m"
    assert candles.gaps["missing"].tolist() == [2, 1]
    assert candles.missing_candles == 3


# --------------------------------------------------------------------------------- errors

RAGGED = ("Date,Open,High,Low,Close,Volume\n"
          "2024-01-02,1,2,0.5,1.5,10\n"
          "2024-01-03,1,2,0.5,1.5,10,99,7\n")


@pytest.mark.parametrize(
    "name,content,error,fragment",
    [
        ("missing.csv", None, DataSourceError, "not found"),
        ("candles.xlsx", "whatever", DataSourceError, "unsupported file type"),
        ("candles", "whatever", DataSourceError, "unsupported file type"),
        ("ragged.csv", RAGGED, DataSourceError, "malformed CSV"),
        ("empty.csv", "", DataSourceError, "empty"),
        ("broken.parquet", "this is not parquet", DataSourceError, "cannot read as Parquet"),
        ("broken.feather", "this is not feather", DataSourceError, "cannot read as Feather"),
        ("notime.csv", "Open,High,Low,Close,Volume\n1,2,0.5,1.5,10\n", CandleValidationError,
         "no time column"),
        ("novolume.csv", "Date,Open,High,Low,Close,Adj Close\n2024-01-02,1,2,0.5,1.5,1\n",
         CandleValidationError, "missing column(s) volume"),
        ("headerless.csv", "2024-01-02,1,2,0.5,1.5,10\n2024-01-03,1,2,0.5,1.5,10\n",
         CandleValidationError, "header row"),
        ("badtime.csv", "Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,0.5,1.5,10\n"
         "yesterday,1,2,0.5,1.5,10\n", CandleValidationError, "'yesterday'"),
        ("latin1.csv", b"Date,Open,High,Low,Close,Volume\n\xe9t\xe9,1,2,0.5,1.5,10\n",
         DataSourceError, "UTF-8"),
    ],
)
def test_errors_are_typed_one_line_and_name_the_file(tmp_path, name, content, error, fragment):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        write(path, content)
    with pytest.raises(error) as info:
        load_file(path)
    assert isinstance(info.value, DataError)
    assert_one_line_naming(info.value, path)
    assert fragment in str(info.value)


@pytest.mark.parametrize("name,content", [
    ("ragged.csv", RAGGED),
    ("broken.parquet", "nope"),
    ("broken.feather", "nope"),
])
def test_reader_errors_are_chained(tmp_path, name, content):
    path = write(tmp_path / name, content)
    with pytest.raises(DataSourceError) as info:
        load_file(path)
    assert info.value.__cause__ is not None


def test_directory_is_not_a_file(tmp_path):
    folder = tmp_path / "dir.csv"
    folder.mkdir()
    with pytest.raises(DataSourceError) as info:
        load_file(folder)
    assert_one_line_naming(info.value, folder)


def test_unparseable_time_names_row_and_rule(tmp_path):
    path = write(tmp_path / "t.csv", "Date,Open,High,Low,Close,Volume\n"
                 "2024-01-02,1,2,0.5,1.5,10\n2024-01-03,1,2,0.5,1.5,10\n"
                 "2024-13-45,1,2,0.5,1.5,10\n")
    with pytest.raises(CandleValidationError) as info:
        load_file(path)
    assert info.value.rule == "timestamp"
    assert info.value.row == 2
    assert "row 2" in str(info.value)


def test_validation_errors_carry_rule_row_and_time(tmp_path):
    frame = ohlcv()
    frame.iloc[4, frame.columns.get_loc("high")] = 50.0
    path = tmp_path / "h.parquet"
    frame.to_parquet(path)
    with pytest.raises(CandleValidationError) as info:
        load_file(path)
    assert info.value.rule == "high>=low"
    assert info.value.row == 4
    assert info.value.time == frame.index[4]
    assert_one_line_naming(info.value, path)


def test_unknown_timeframe_is_rejected_before_reading(tmp_path):
    from distillbt.errors import UnknownTimeframeError

    with pytest.raises(UnknownTimeframeError):
        load_file(tmp_path / "missing.csv", timeframe="5 minutes")


def test_supported_suffixes():
    assert SUPPORTED_SUFFIXES == (".csv", ".txt", ".parquet", ".pq", ".feather", ".arrow")


@pytest.mark.parametrize("values,fragment", [
    ([50_000_000_000, 50_000_000_300], "out of range"),  # seconds in the year 3554
    ([True, False], "booleans"),
])
def test_impossible_time_values(tmp_path, values, fragment):
    frame = ohlcv(n=2).reset_index(drop=True)
    frame.insert(0, "time", values)
    path = tmp_path / "odd.parquet"
    frame.to_parquet(path)
    with pytest.raises(CandleValidationError) as info:
        load_file(path)
    assert info.value.rule == "timestamp"
    assert fragment in str(info.value)
    assert_one_line_naming(info.value, path)


def test_calendar_dates_in_parquet(tmp_path):
    import datetime as dt

    frame = ohlcv(n=3).reset_index(drop=True)
    frame.insert(0, "Date", [dt.date(2024, 1, 2) + dt.timedelta(days=i) for i in range(3)])
    path = tmp_path / "dates.parquet"
    frame.to_parquet(path)
    candles = load_file(path)
    assert candles.start == pd.Timestamp("2024-01-02", tz="UTC") and candles.timeframe == "1d"


def test_blank_time_is_rejected_with_its_row(tmp_path):
    path = write(tmp_path / "blank.csv", "Date,Open,High,Low,Close,Volume\n"
                 "2024-01-02,1,2,0.5,1.5,10\n,1,2,0.5,1.5,10\n2024-01-04,1,2,0.5,1.5,10\n")
    with pytest.raises(CandleValidationError) as info:
        load_file(path)
    assert (info.value.rule, info.value.row) == ("timestamp", 1)
    assert_one_line_naming(info.value, path)
