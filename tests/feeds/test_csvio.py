"""Candle CSV reading, writing, appending and the line-numbered errors."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.model import CandleArrays
from engine.core.types import Candle, timeframe_ms
from engine.feeds.csvio import (
    HEADER,
    CsvFormatError,
    append_csv,
    plain,
    read_csv,
    read_last_timestamp,
    symbol_from_filename,
    write_csv,
)
from engine.feeds.synthetic import synthetic_arrays
from tests.sample import SAMPLE, shared_files

# every file of the shipped sample, and of the optional larger set beside the checkout when it is there
CANDLE_FILES = sorted(SAMPLE.glob("*.csv")) + shared_files()


def same(a: CandleArrays, b: CandleArrays) -> bool:
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("ts", "open", "high", "low", "close", "volume"))


@pytest.mark.parametrize("path", CANDLE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_reads_every_real_file(path: Path, tmp_path: Path) -> None:
    symbol, timeframe = symbol_from_filename(path)
    arrays = read_csv(path, timeframe)
    data_lines = path.read_text().count("\n") - 1
    assert len(arrays) == data_lines > 0
    assert arrays.ts.dtype == np.int64 and arrays.close.dtype == np.float64
    assert np.all(np.diff(arrays.ts) > 0) and np.all(arrays.ts % timeframe_ms(timeframe) == 0)
    assert symbol.isalnum() and symbol.isupper()
    first = path.read_text().splitlines()[1].split(",")
    assert int(first[0]) == arrays.ts[0] and float(first[4]) == arrays.close[0]
    copy = tmp_path / path.name
    write_csv(copy, arrays)
    assert same(read_csv(copy, timeframe), arrays)  # write -> read is exact
    body = copy.read_text().split("\n", 1)[1]
    assert "e" not in body.lower()  # plain decimals, no exponent


def test_error_names_file_line_and_problem(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    rows = [f"{i * 60_000},10,11,9,10.5,1" for i in range(15)] + ["900000,10,9.0,8,10,1"]
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    with pytest.raises(CsvFormatError) as info:
        read_csv(path)
    assert str(info.value) == f"{path}:17: high 9.0 below max(open, close) 10.0"
    assert info.value.line == 17


def test_header_must_be_exact(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("time,open,high,low,close,volume\n60000,1,1,1,1,1\n")
    with pytest.raises(CsvFormatError, match=r"x\.csv:1: header must be exactly"):
        read_csv(path)


def test_header_only_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(HEADER + "\n")
    assert len(read_csv(path)) == 0
    assert read_last_timestamp(path) is None
    path.write_bytes(f"{HEADER}\r\n60000,1,2,0.5,1.5,3\r\n".encode())
    assert read_csv(path).candle(0) == Candle(60_000, 1.0, 2.0, 0.5, 1.5, 3.0)


def test_off_grid_timestamp_is_reported_when_timeframe_given(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(f"{HEADER}\n60000,1,1,1,1,1\n150000,1,1,1,1,1\n")
    assert len(read_csv(path)) == 2
    with pytest.raises(CsvFormatError, match=r":3: timestamp 150000 is off the 1m grid"):
        read_csv(path, "1m")


def test_plain_decimals() -> None:
    assert plain(300.0) == "300"
    assert plain(1e-05) == "0.00001"
    assert plain(0.00162008) == "0.00162008"
    assert plain(1.5e20) == "150000000000000000000"
    for x in (1e-05, 0.1 + 0.2, 123456.789, 3.3e-9):
        assert float(plain(x)) == x


def test_append_and_resume_point(tmp_path: Path) -> None:
    arrays = synthetic_arrays(50, seed=3, start_ms=0, timeframe="1m", start_price=100.0)
    path = tmp_path / "BTCUSDT-1m.csv"
    assert append_csv(path, arrays.slice(0, 20)) == 20  # creates with header
    assert read_last_timestamp(path) == int(arrays.ts[19])
    with path.open("rb+") as f:  # a file without a final newline still appends cleanly
        f.seek(-1, 2)
        f.truncate()
    assert append_csv(path, [arrays.candle(i) for i in range(20, 50)]) == 30
    assert same(read_csv(path, "1m"), arrays)
    with pytest.raises(CsvFormatError, match="already ends at"):
        append_csv(path, arrays.slice(49, 50))
    assert append_csv(path, []) == 0


def test_write_refuses_bad_candles(tmp_path: Path) -> None:
    with pytest.raises(CsvFormatError, match="high"):
        write_csv(tmp_path / "x.csv", [Candle(0, 10.0, 9.0, 8.0, 10.0, 1.0)])
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize(("name", "expected"), [
    ("BTC_USDT-5m.csv", ("BTCUSDT", "5m")),
    ("/some/dir/ETH_BTC-1h.csv", ("ETHBTC", "1h")),
    ("XRP_USDT_USDT-5m.csv", ("XRPUSDT", "5m")),
    ("BTCUSDT-1d.csv", ("BTCUSDT", "1d")),
])
def test_symbol_from_filename(name: str, expected: tuple[str, str]) -> None:
    assert symbol_from_filename(name) == expected


@pytest.mark.parametrize("name", ["BTC_USDT.csv", "BTC_USDT-7m.csv", "-5m.csv"])
def test_symbol_from_bad_filename(name: str) -> None:
    with pytest.raises(ValueError, match="cannot read symbol"):
        symbol_from_filename(name)


def test_reads_a_large_file_fast(tmp_path: Path) -> None:
    n = 200_000
    arrays = synthetic_arrays(n, seed=1, start_ms=0, timeframe="1m", start_price=20000.0)
    rounded = CandleArrays(arrays.ts, *(np.round(getattr(arrays, k), 2) for k in ("open", "high", "low", "close")),
                           np.round(arrays.volume, 4))
    rounded = CandleArrays(rounded.ts, rounded.open, np.maximum(rounded.high, np.maximum(rounded.open, rounded.close)),
                           np.minimum(rounded.low, np.minimum(rounded.open, rounded.close)), rounded.close,
                           rounded.volume)
    path = tmp_path / "big.csv"
    write_csv(path, rounded)
    started = time.perf_counter()
    back = read_csv(path)
    elapsed = time.perf_counter() - started
    assert same(back, rounded)
    assert elapsed < 2.0, f"{n} rows took {elapsed:.2f} s"  # about 0.25 s on a 2-core box (1M rows: about 1.1-1.5 s)


# ------------------------------------------------------------------------- hypothesis corruptions

CORRUPTIONS = {
    "high_low": ("high", lambda f: f.__setitem__(2, repr(min(float(f[1]), float(f[4])) / 2))),
    "low_high": ("low", lambda f: f.__setitem__(3, repr(max(float(f[1]), float(f[4])) * 1.5))),
    "neg_volume": ("volume -", lambda f: f.__setitem__(5, "-1.5")),
    "zero_price": ("open 0.0 is not positive", lambda f: f.__setitem__(1, "0")),
    "nan": ("close is not finite", lambda f: f.__setitem__(4, "nan")),
    "inf": ("volume is not finite", lambda f: f.__setitem__(5, "inf")),
    "text": ("is not a number", lambda f: f.__setitem__(3, "abc")),
    "empty_cell": ("empty close", lambda f: f.__setitem__(4, "")),
    "missing_field": ("expected 6 fields, got 5", lambda f: f.pop()),
    "extra_field": ("expected 6 fields, got 7", lambda f: f.append("1")),
    "float_ts": ("timestamp", lambda f: f.__setitem__(0, f[0] + ".5")),
}


@settings(max_examples=60, deadline=None)
@given(n=st.integers(min_value=1, max_value=40), data=st.data())
def test_corrupted_csv_names_line_and_problem(tmp_path_factory: pytest.TempPathFactory, n: int,
                                              data: st.DataObject) -> None:
    arrays = synthetic_arrays(n, seed=data.draw(st.integers(0, 5)), start_ms=0, timeframe="1m", start_price=50.0)
    path = tmp_path_factory.mktemp("csv") / "corrupt.csv"
    write_csv(path, arrays)
    lines = path.read_text().splitlines()
    row = data.draw(st.integers(0, n - 1), label="row")
    kinds = [*CORRUPTIONS, "empty_line"] + (["duplicate_ts", "older_ts"] if row > 0 else [])
    kind = data.draw(st.sampled_from(kinds), label="kind")
    line_no = row + 2
    if kind == "empty_line":
        lines.insert(row + 1, "")
        expected = "empty line"
    elif kind in ("duplicate_ts", "older_ts"):
        fields = lines[row + 1].split(",")
        prev = int(lines[row].split(",")[0])
        fields[0] = str(prev if kind == "duplicate_ts" else prev - 60_000)
        lines[row + 1] = ",".join(fields)
        expected = "duplicate timestamp" if kind == "duplicate_ts" else "timestamp out of order"
    else:
        expected, corrupt = CORRUPTIONS[kind]
        fields = lines[row + 1].split(",")
        corrupt(fields)
        lines[row + 1] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CsvFormatError) as info:
        read_csv(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line_no}: "), (kind, message)
    assert expected in message, (kind, message)
