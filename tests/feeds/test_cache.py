"""The columnar cache beside a large candle CSV, and the fast parser that fills it.

The cache is keyed by the CSV's size, mtime and inode: a changed CSV is parsed again, the same CSV is read
from the cache (proved by rewriting the CSV's numbers in place and restoring its mtime: the old values come
back). Where the cache cannot be written or read, the CSV is parsed and nothing is said.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.core.model import CandleArrays
from engine.feeds.cache import MIN_BYTES, cache_path, index_path
from engine.feeds.candle_file import load_candles
from engine.feeds.csvio import COLUMNS, append_csv, read_csv, write_csv
from engine.feeds.fastcsv import fast_columns
from engine.feeds.synthetic import synthetic_arrays

N = 110_000  # ~10 MB of text: above the cache's MIN_BYTES
START = 1_700_000_000_000 - 1_700_000_000_000 % 300_000


@pytest.fixture(scope="module")
def big_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "BTC_USDT-5m.csv"
    write_csv(path, synthetic_arrays(N, seed=5, start_ms=START, timeframe="5m", start_price=30000.0))
    assert path.stat().st_size >= MIN_BYTES
    return path


@pytest.fixture
def big(big_source: Path, tmp_path: Path) -> Path:
    path = tmp_path / big_source.name
    shutil.copyfile(big_source, path)
    return path


def same(a: CandleArrays, b: CandleArrays) -> bool:
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("ts", "open", "high", "low", "close", "volume"))


def loadtxt_arrays(path: Path) -> CandleArrays:
    """What the reader gave before the fast parser: numpy.loadtxt's float64 values."""
    t = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, comments=None, ndmin=2, encoding="utf-8")
    return CandleArrays(t[:, 0].astype(np.int64), *(np.ascontiguousarray(t[:, k]) for k in range(1, 6)))


def test_fast_parser_gives_numpys_values_to_the_last_bit(big: Path) -> None:
    columns = fast_columns(big, len(big.read_bytes().split(b"\n", 1)[0]) + 1, COLUMNS)

    assert columns is not None
    expected = loadtxt_arrays(big)
    assert np.array_equal(columns[0].astype(np.int64), expected.ts)
    for k, name in enumerate(COLUMNS[1:], start=1):
        assert np.array_equal(columns[k], getattr(expected, name)), name


def test_first_read_writes_the_cache_and_the_second_reads_it(big: Path) -> None:
    first = load_candles(big)
    assert cache_path(big).is_file()
    again = load_candles(big)

    assert same(first.arrays, loadtxt_arrays(big))
    assert same(again.arrays, first.arrays)
    assert (again.symbol, again.timeframe, again.notes, again.gaps) == (first.symbol, first.timeframe, first.notes,
                                                                        first.gaps)
    again.arrays.close[0] = 1.0  # the cached columns are private copies-on-write: the cache file is untouched
    assert same(load_candles(big).arrays, first.arrays)


def test_an_unchanged_csv_is_read_from_the_cache_not_parsed(big: Path) -> None:
    before = read_csv(big)
    st = big.stat()
    text = big.read_bytes()
    last = text.rstrip(b"\n").rsplit(b"\n", 1)[1]
    changed = last[:-1] + (b"1" if last[-1:] != b"1" else b"2")  # the volume's last digit: same length
    assert last[-1:].isdigit() and changed != last
    with open(big, "r+b") as f:  # in place: same inode and size; the old mtime put back
        f.seek(len(text.rstrip(b"\n")) - len(last))
        f.write(changed)
    os.utime(big, ns=(st.st_atime_ns, st.st_mtime_ns))

    assert same(read_csv(big), before)  # the cache's values: the text was not parsed
    os.utime(big, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert not same(read_csv(big), before)  # a newer mtime: parsed again


def test_an_appended_csv_is_parsed_again(big: Path) -> None:
    before = read_csv(big)
    step = int(before.ts[1] - before.ts[0])
    extra = CandleArrays(np.array([before.ts[-1] + step]), np.array([10.0]), np.array([12.0]), np.array([9.0]),
                         np.array([11.0]), np.array([1.0]))
    append_csv(big, extra)

    after = read_csv(big)
    assert len(after) == len(before) + 1 and after.close[-1] == 11.0


def test_a_cache_that_cannot_be_written_or_read_changes_nothing(big: Path, capfd: pytest.CaptureFixture[str]) -> None:
    cache_path(big).mkdir()  # where the cache file would go: cannot be written or read
    first = load_candles(big)
    shutil.rmtree(cache_path(big))
    cache_path(big).write_bytes(b"not an arrow file")
    second = load_candles(big)

    assert same(first.arrays, loadtxt_arrays(big)) and same(second.arrays, first.arrays)
    assert capfd.readouterr() == ("", "")
    assert load_candles(big).arrays.close.tolist() == first.arrays.close.tolist()  # the garbage was replaced


def test_a_read_only_folder_gets_no_cache_and_reads_the_same(big: Path) -> None:
    folder = big.parent
    folder.chmod(0o555)
    try:
        first, second = load_candles(big), load_candles(big)
        assert not cache_path(big).exists()
    finally:
        folder.chmod(0o755)
    assert same(first.arrays, loadtxt_arrays(big)) and same(second.arrays, first.arrays)


READ = "import sys; from engine.feeds.csvio import read_csv; read_csv(sys.argv[1]); print('pyarrow' in sys.modules)"


def test_a_cached_read_maps_the_columns_without_pyarrow_and_without_its_index_with_it(big: Path) -> None:
    def read_imports_pyarrow() -> bool:
        out = subprocess.run([sys.executable, "-c", READ, str(big)], capture_output=True, text=True, check=True)
        return out.stdout.strip() == "True"

    assert read_imports_pyarrow()  # the first read parses the CSV with pyarrow and writes the cache
    assert index_path(big).is_file()
    assert not read_imports_pyarrow()
    first = read_csv(big)
    index_path(big).unlink()
    assert read_imports_pyarrow()  # no index: pyarrow reads the cache (the text is not parsed)
    assert same(read_csv(big), first)


def test_a_stale_or_broken_index_is_not_trusted(big: Path) -> None:
    first = read_csv(big)
    index_path(big).write_text('{"arrow": [1, 2, 3], "rows": 5, "offsets": [0, 0, 0, 0, 0, 0]}')
    assert same(read_csv(big), first)
    index_path(big).write_text("not json")
    assert same(read_csv(big), first)


def test_small_files_get_no_cache(tmp_path: Path) -> None:
    path = tmp_path / "BTC_USDT-5m.csv"
    write_csv(path, synthetic_arrays(500, seed=1, start_ms=START, timeframe="5m", start_price=100.0))
    read_csv(path)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["BTC_USDT-5m.csv"]
