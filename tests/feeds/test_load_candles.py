"""``load_candles``: the reader of the command-line tools tells the unit and the timeframe, or refuses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.model import CandleArrays
from engine.core.types import TIMEFRAME_MS
from engine.feeds.candle_file import duration, load_candles
from engine.feeds.csvio import HEADER, CsvFormatError, read_csv, write_csv
from engine.feeds.synthetic import synthetic_arrays
from engine.models.validation import load_candles_csv
from tests.sample import sample_path

UNIT_FACTOR = {"milliseconds": (1, 1), "seconds": (1, 1000), "microseconds": (1000, 1)}  # ms -> unit: * a / b


def _write(path: Path, ts: list[int], arrays: CandleArrays) -> None:
    rows = [f"{t},{o!r},{h!r},{lo!r},{c!r},{v!r}" for t, o, h, lo, c, v in
            zip(ts, arrays.open.tolist(), arrays.high.tolist(), arrays.low.tolist(), arrays.close.tolist(),
                arrays.volume.tolist(), strict=True)]
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n")


@settings(max_examples=60, deadline=None)
@given(tf=st.sampled_from(list(TIMEFRAME_MS)), unit=st.sampled_from(list(UNIT_FACTOR)),
       n=st.integers(3, 200), start_day=st.integers(7_400, 20_000), data=st.data())
def test_unit_and_timeframe_are_told_despite_gaps(tmp_path_factory: pytest.TempPathFactory, tf: str, unit: str,
                                                  n: int, start_day: int, data: st.DataObject) -> None:
    step = TIMEFRAME_MS[tf]
    # most spacings are one candle; up to a third of them are holes of 1..50 candles
    holes = data.draw(st.lists(st.integers(0, 49), min_size=n - 1, max_size=n - 1).map(
        lambda xs: [x if i % 3 == 0 else 0 for i, x in enumerate(xs)]))
    offsets = np.concatenate([[0], np.cumsum(np.array(holes) + 1)])
    ts_ms = start_day * 86_400_000 + offsets * step
    arrays = synthetic_arrays(n, seed=1, start_ms=0, timeframe="1m", start_price=50.0)
    a, b = UNIT_FACTOR[unit]
    path = tmp_path_factory.mktemp("unit") / "prices.csv"
    _write(path, [int(t) * a // b for t in ts_ms], arrays)
    got = load_candles(path)
    assert got.timeframe == tf and got.unit == unit
    assert got.arrays.ts.tolist() == ts_ms.tolist()
    assert np.array_equal(got.arrays.close, arrays.close)
    missing = int(sum(holes))
    assert (got.gaps is None) == (missing == 0)
    if got.gaps is not None:
        assert got.gaps.missing == missing and got.gaps.largest == max(holes)
        assert got.gaps.count == sum(1 for h in holes if h)


def test_one_candle_needs_a_timeframe_and_goes_by_its_size(tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    path.write_text(f"{HEADER}\n1672531200,1,2,0.5,1.5,3\n")
    with pytest.raises(CsvFormatError, match="cannot infer the timeframe from 1 candle; pass --timeframe"):
        load_candles(path, min_candles=1)
    got = load_candles(path, timeframe="1h", min_candles=1)
    assert got.arrays.ts.tolist() == [1_672_531_200_000] and got.unit == "seconds"


def test_synthetic_files_from_1970_stay_milliseconds(tmp_path: Path) -> None:
    arrays = synthetic_arrays(50, seed=2, start_ms=0, timeframe="1m", start_price=10.0)
    path = tmp_path / "BTC_USDT-1m.csv"
    write_csv(path, arrays)
    got = load_candles(path)
    assert got.unit == "milliseconds" and got.notes == () and got.symbol == "BTCUSDT"
    assert np.array_equal(got.arrays.ts, arrays.ts)


def test_validation_reads_as_the_backtest_does(tmp_path: Path) -> None:
    clean = sample_path("BTC_USDT-5m.csv")
    lines = clean.read_text().splitlines()
    seconds = tmp_path / "BTC_USDT-5m.csv"
    seconds.write_text("\n".join([lines[0].upper()] + [f"{int(r.split(',')[0]) // 1000},{r.split(',', 1)[1]}"
                                                        for r in lines[1:]]) + "\n")
    ds = load_candles_csv(seconds)
    assert np.array_equal(ds.arrays.ts, read_csv(clean).ts)
    assert (ds.symbol, ds.timeframe) == ("BTC/USDT", "5m")
    assert ds.notes == ("timestamps are in seconds: converted to milliseconds",)
    assert load_candles_csv(seconds, symbol="xbt").symbol == "XBT"


@pytest.mark.parametrize(("ms", "text"), [(300_000, "5m"), (150_000_000, "1d 17h 40m"), (90_000, "1m 30s"),
                                          (86_400_000, "1d"), (250, "250 ms")])
def test_duration(ms: int, text: str) -> None:
    assert duration(ms) == text
