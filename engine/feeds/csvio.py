"""Candle CSV files: ``timestamp,open,high,low,close,volume``, timestamp = open time in ms UTC.

``read_csv`` parses with pyarrow in bounded chunks (``engine.feeds.fastcsv``; numpy when pyarrow
declines anything) and validates with vectorized checks; only when something is wrong does it look at
the file line by line to name the first bad line. A large file's parsed columns are cached beside it
(``engine.feeds.cache``), so its next read parses no text; the checks run either way. Every problem raises
:class:`CsvFormatError` with ``<file>:<line>: <problem>`` (1-based line numbers, the header is line 1).
``write_csv`` writes floats as plain decimals (shortest repr, no exponent), so a file read back holds
exactly the same float64 values.

Also read: a UTF-8 BOM, CRLF line ends, the header in any capitalisation and column order, and a
``date`` column of ISO 8601 times (``2023-01-01T00:00:00Z``, ``2023-01-01 00:00:00+00:00``; no zone
means UTC) in place of ``timestamp``. A file with the exact header takes the fast path unchanged.

The command-line tools read candle files through ``engine.feeds.candle_file.load_candles``, which builds
on this module.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from engine.core.model import CandleArrays
from engine.core.types import TIMEFRAME_MS, Candle, timeframe_ms
from engine.errors import CsvFormatError as CsvFormatError  # defined with the whole tree; imported from here too
from engine.feeds.cache import cached_rows, store_rows
from engine.feeds.fastcsv import fast_columns

HEADER = "timestamp,open,high,low,close,volume"
COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
MAX_EXACT_INT = 2**53  # timestamps are parsed as float64; below this every integer is exact
_INT = re.compile(r"[+-]?\d+")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[+-]?(nan|inf|infinity)", re.IGNORECASE)


def empty_arrays() -> CandleArrays:
    f = np.empty(0, dtype=np.float64)
    return CandleArrays(np.empty(0, dtype=np.int64), f, f.copy(), f.copy(), f.copy(), f.copy())


def plain(x: float) -> str:
    """Shortest round-trip decimal for ``x`` without an exponent (``1e-05`` -> ``0.00001``)."""
    text = repr(float(x))
    if "e" in text or "E" in text:
        text = np.format_float_positional(x, unique=True, trim="-")
    if text.endswith(".0"):
        text = text[:-2]
    return text


# --------------------------------------------------------------------------------------- reading


def read_csv(path: str | os.PathLike[str], timeframe: str | None = None) -> CandleArrays:
    """Load and validate a candle CSV; with ``timeframe`` also check every ts is on its grid."""
    arrays = _read_rows(path).arrays
    check_arrays(arrays, path=path, timeframe=timeframe)
    return arrays


@dataclass(frozen=True, slots=True)
class _Rows:
    """A file's rows before any check: ``arrays.ts`` as written (ms from ISO dates)."""

    arrays: CandleArrays
    exact_header: bool  # the header is exactly HEADER (what write_csv and append_csv write)
    dated: bool = False  # the times came from a ``date`` column of ISO 8601 times
    naive: bool = False  # some of those times had no zone (read as UTC)


def _read_rows(path: str | os.PathLike[str]) -> _Rows:
    """A file's rows: from its columnar cache when that is current, else parsed (and the cache written)."""
    cached = cached_rows(path)
    if cached is not None:
        return _Rows(cached[0], *cached[1])
    rows = _parse_rows(path)
    if len(rows.arrays) > 0:
        store_rows(path, rows.arrays, (rows.exact_header, rows.dated, rows.naive))
    return rows


def _parse_rows(path: str | os.PathLike[str]) -> _Rows:
    with open(path, "rb") as f:
        first = f.readline()
    header = first.rstrip(b"\n").decode("utf-8", errors="replace").rstrip("\r")
    if header != HEADER:
        raw = Path(path).read_bytes()
        return _read_variant(path, raw, raw.find(b"\n"))
    columns = fast_columns(path, len(first), COLUMNS)  # None: empty, odd or bad; the careful path below names it
    if columns is not None:
        return _Rows(_arrays_from_columns(path, columns), True)
    raw = Path(path).read_bytes()
    newline = raw.find(b"\n")
    body = b"" if newline < 0 else raw[newline + 1:]
    if not body.strip():
        if body:
            _scan_lines(path, body)  # blank lines only: name the first one
        return _Rows(empty_arrays(), True)
    expected_rows = body.count(b"\n") + (0 if body.endswith(b"\n") else 1)
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, comments=None, ndmin=2,
                           encoding="utf-8")
    except ValueError as exc:
        _scan_lines(path, body)
        raise CsvFormatError(path, 0, f"unreadable: {exc}") from None
    if table.shape[0] != expected_rows or table.shape[1] != len(COLUMNS):
        _scan_lines(path, body)
        raise CsvFormatError(path, 0, f"expected {expected_rows} rows of {len(COLUMNS)} columns, "
                                      f"read {table.shape[0]} of {table.shape[1]}")
    return _Rows(_arrays_from_columns(path, [table[:, k] for k in range(len(COLUMNS))]), True)


DATE_COLUMN = "date"
HEADER_RULE = (f"header must be exactly {HEADER!r} (any capitalisation or column order; or {DATE_COLUMN!r} "
               f"holding ISO 8601 times in place of 'timestamp')")


def _header_names(path: str | os.PathLike[str], raw: bytes, newline: int) -> tuple[str, ...]:
    """The column names of the first line (BOM, spaces and capitalisation dropped); CsvFormatError if unknown."""
    if not raw.strip():
        raise CsvFormatError(path, 0, "the file is empty: no header and no candles")
    first = raw if newline < 0 else raw[:newline]
    try:
        text = first.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError:
        raise CsvFormatError(path, 1, "the header is not UTF-8 text") from None
    names = tuple(name.strip().lower() for name in text.split(","))
    if sorted(names) not in (sorted(COLUMNS), sorted((DATE_COLUMN, *COLUMNS[1:]))):
        raise CsvFormatError(path, 1, f"{HEADER_RULE}, got {text[:80]!r}")
    return names


def _read_variant(path: str | os.PathLike[str], raw: bytes, newline: int) -> _Rows:
    """A file whose header is not exactly HEADER: BOM, other capitalisation or order, ISO dates."""
    names = _header_names(path, raw, newline)
    body = b"" if newline < 0 else raw[newline + 1:]
    if not body.strip():
        if body:
            _scan_lines(path, body, names)
        return _Rows(empty_arrays(), False)
    if DATE_COLUMN in names:
        return _read_dated(path, body, names)
    columns = fast_columns(path, newline + 1, names)
    if columns is not None:
        return _Rows(_arrays_from_columns(path, [columns[names.index(name)] for name in COLUMNS]), False)
    expected_rows = body.count(b"\n") + (0 if body.endswith(b"\n") else 1)
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, comments=None, ndmin=2,
                           encoding="utf-8")
    except ValueError as exc:
        _scan_lines(path, body, names)
        raise CsvFormatError(path, 0, f"unreadable: {exc}") from None
    if table.shape != (expected_rows, len(COLUMNS)):
        _scan_lines(path, body, names)
        raise CsvFormatError(path, 0, f"expected {expected_rows} rows of {len(COLUMNS)} columns, "
                                      f"read {table.shape[0]} of {table.shape[1]}")
    return _Rows(_arrays_from_columns(path, [table[:, names.index(name)] for name in COLUMNS]), False)


def _iso_ms(text: str) -> tuple[int, bool] | None:
    """ms since the epoch of an ISO 8601 time and whether it was naive (read as UTC); None if not one."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    naive = moment.tzinfo is None
    if naive:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(milliseconds=1), naive


def _read_dated(path: str | os.PathLike[str], body: bytes, names: tuple[str, ...]) -> _Rows:
    try:
        lines = body.decode("utf-8").split("\n")
    except UnicodeDecodeError as exc:
        raise CsvFormatError(path, body[:exc.start].count(b"\n") + 2, "not UTF-8 text") from None
    if lines[-1] == "":
        lines.pop()
    rows = [line.rstrip("\r").split(",") for line in lines]
    if any(len(fields) != len(COLUMNS) for fields in rows):
        _scan_lines(path, body, names)
    at = names.index(DATE_COLUMN)
    ts = np.empty(len(rows), dtype=np.int64)
    naive = False
    for k, fields in enumerate(rows):
        parsed = _iso_ms(fields[at])
        if parsed is None:
            _scan_lines(path, body, names)
            raise CsvFormatError(path, k + 2, f"date {fields[at].strip()[:40]!r} is not an ISO 8601 time")
        ts[k], was_naive = parsed
        naive |= was_naive
    numbers = [",".join(fields[names.index(name)] for name in COLUMNS[1:]) for fields in rows]
    try:
        table = np.loadtxt(numbers, delimiter=",", dtype=np.float64, comments=None, ndmin=2)
    except ValueError as exc:
        _scan_lines(path, body, names)
        raise CsvFormatError(path, 0, f"unreadable: {exc}") from None
    cols = [np.ascontiguousarray(table[:, k]) for k in range(5)]
    return _Rows(CandleArrays(ts, *cols), False, dated=True, naive=naive)


def _arrays_from_columns(path: str | os.PathLike[str], columns: Sequence[np.ndarray]) -> CandleArrays:
    """The six float64 columns in COLUMNS order as CandleArrays; the timestamps must be whole numbers."""
    ts_f = columns[0]
    bad = ~np.isfinite(ts_f) | (ts_f != np.floor(ts_f)) | (np.abs(ts_f) >= MAX_EXACT_INT)
    if bad.any():
        i = int(np.argmax(bad))
        raise CsvFormatError(path, i + 2, f"timestamp {ts_f[i]!r} is not an integer number of ms")
    cols = [np.ascontiguousarray(c) for c in columns[1:]]
    return CandleArrays(ts_f.astype(np.int64), cols[0], cols[1], cols[2], cols[3], cols[4])


def check_arrays(arrays: CandleArrays, *, path: str | os.PathLike[str] = "<arrays>",
                 timeframe: str | None = None, first_line: int = 2) -> None:
    """Raise CsvFormatError for the first unsound row (row i is reported as line ``first_line + i``)."""
    n = len(arrays)
    if n == 0:
        return
    o, h, lo, c, v, ts = arrays.open, arrays.high, arrays.low, arrays.close, arrays.volume, arrays.ts
    with np.errstate(invalid="ignore"):
        checks: list[tuple[np.ndarray, str]] = [
            (~(np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c) & np.isfinite(v)), "finite"),
            (~((o > 0) & (h > 0) & (lo > 0) & (c > 0)), "positive"),
            (h < np.maximum(o, c), "high"),
            (lo > np.minimum(o, c), "low"),
            (v < 0, "volume"),
        ]
    bad_rows = np.zeros(n, dtype=bool)
    for mask, _ in checks:
        bad_rows |= mask
    order_bad = np.zeros(n, dtype=bool)
    order_bad[1:] = np.diff(ts) <= 0
    grid_bad = np.zeros(n, dtype=bool) if timeframe is None else (ts % timeframe_ms(timeframe) != 0)
    any_bad = bad_rows | order_bad | grid_bad
    if not any_bad.any():
        return
    i = int(np.argmax(any_bad))
    line = first_line + i
    candle = arrays.candle(i)
    if bad_rows[i]:
        raise CsvFormatError(path, line, _row_problem(candle))
    if order_bad[i]:
        prev = int(ts[i - 1])
        what = "duplicate timestamp" if int(ts[i]) == prev else "timestamp out of order:"
        raise CsvFormatError(path, line, f"{what} {int(ts[i])} not after previous {prev}")
    raise CsvFormatError(path, line, f"timestamp {int(ts[i])} is off the {timeframe} grid")


def _row_problem(c: Candle) -> str:
    for name in COLUMNS[1:]:
        value = getattr(c, name)
        if not math.isfinite(value):
            return f"{name} is not finite ({value!r})"
    for name in COLUMNS[1:5]:
        if getattr(c, name) <= 0:
            return f"{name} {getattr(c, name)!r} is not positive"
    if c.high < max(c.open, c.close):
        return f"high {c.high!r} below max(open, close) {max(c.open, c.close)!r}"
    if c.low > min(c.open, c.close):
        return f"low {c.low!r} above min(open, close) {min(c.open, c.close)!r}"
    return f"volume {c.volume!r} is negative"


def _scan_lines(path: str | os.PathLike[str], body: bytes, names: Sequence[str] = COLUMNS) -> None:
    """Find the first line numpy could not parse and raise a CsvFormatError naming it."""
    lines = body.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for k, raw_line in enumerate(lines):
        line_no = k + 2
        text = raw_line.decode("utf-8", errors="replace").rstrip("\r")
        if not text.strip():
            raise CsvFormatError(path, line_no, "empty line")
        fields = text.split(",")
        if len(fields) != len(names):
            raise CsvFormatError(path, line_no, f"expected {len(names)} fields, got {len(fields)}")
        for name, field in zip(names, fields, strict=True):
            if not field.strip():
                raise CsvFormatError(path, line_no, f"empty {name}")
            if name == DATE_COLUMN:
                if _iso_ms(field) is None:
                    raise CsvFormatError(path, line_no, f"date {field.strip()[:40]!r} is not an ISO 8601 time")
                continue
            pattern = _INT if name == "timestamp" else _NUMBER
            if not pattern.fullmatch(field.strip()):
                kind = "an integer" if name == "timestamp" else "a number"
                raise CsvFormatError(path, line_no, f"{name} {field.strip()[:40]!r} is not {kind}")


def read_last_timestamp(path: str | os.PathLike[str]) -> int | None:
    """The timestamp of the last row, read from the file's tail (None for a header-only file)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        chunk = min(size, 4096)
        while True:
            f.seek(size - chunk)
            tail = f.read(chunk)
            lines = [ln for ln in tail.split(b"\n") if ln.strip()]
            if len(lines) >= 2 or chunk == size:
                break
            chunk = min(size, chunk * 4)
    if not lines:
        return None
    last = lines[-1].decode("utf-8", errors="replace").strip()
    if last == HEADER:
        return None
    try:
        return int(last.split(",", 1)[0])
    except ValueError:
        raise CsvFormatError(path, 0, f"last row {last[:80]!r} does not start with a timestamp") from None


# --------------------------------------------------------------------------------------- writing


def _as_arrays(data: CandleArrays | Sequence[Candle]) -> CandleArrays:
    if isinstance(data, CandleArrays):
        return data
    return CandleArrays.from_candles(list(data)) if data else empty_arrays()


def _column_text(values: np.ndarray) -> list[str]:
    """Shortest round-trip decimals of a float column (repr, rewritten only where it has an exponent)."""
    floats = values.tolist()
    texts = list(map(repr, floats))
    return [t if "e" not in t else plain(x) for t, x in zip(texts, floats, strict=True)]


def _rows(arrays: CandleArrays) -> list[str]:
    cols = zip(map(str, arrays.ts.tolist()), _column_text(arrays.open), _column_text(arrays.high),
               _column_text(arrays.low), _column_text(arrays.close), _column_text(arrays.volume), strict=True)
    return [",".join(row) + "\n" for row in cols]


def write_csv(path: str | os.PathLike[str], data: CandleArrays | Sequence[Candle]) -> int:
    """Write candles (validated first) to ``path`` atomically; returns the number of rows."""
    arrays = _as_arrays(data)
    check_arrays(arrays, path=path)
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(HEADER + "\n")
        f.writelines(_rows(arrays))
    os.replace(tmp, target)
    return len(arrays)


def append_csv(path: str | os.PathLike[str], data: CandleArrays | Sequence[Candle]) -> int:
    """Append candles to ``path`` (created with a header if absent); they must follow its last row."""
    target = Path(path)
    if not target.exists() or target.stat().st_size == 0:
        return write_csv(target, data)
    arrays = _as_arrays(data)
    if len(arrays) == 0:
        return 0
    last = read_last_timestamp(target)
    check_arrays(arrays, path=path)
    if last is not None and int(arrays.ts[0]) <= last:
        raise CsvFormatError(path, 0, f"cannot append ts {int(arrays.ts[0])}: file already ends at {last}")
    with open(target, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        needs_newline = f.read(1) != b"\n"
    with open(target, "a", encoding="utf-8", newline="\n") as f:
        if needs_newline:
            f.write("\n")
        f.writelines(_rows(arrays))
    return len(arrays)


def symbol_from_filename(name: str | os.PathLike[str]) -> tuple[str, str]:
    """``BTC_USDT-5m.csv`` -> ``("BTCUSDT", "5m")``; ``XRP_USDT_USDT-5m.csv`` (futures) -> XRPUSDT."""
    stem = Path(name).name
    if stem.endswith(".csv"):
        stem = stem[: -len(".csv")]
    pair, sep, timeframe = stem.rpartition("-")
    if not sep or not pair or timeframe not in TIMEFRAME_MS:
        raise ValueError(f"cannot read symbol and timeframe from {Path(name).name!r}; expected BASE_QUOTE-TF.csv")
    parts = pair.split("_")
    if len(parts) == 3 and parts[1] == parts[2]:
        parts = parts[:2]  # BASE_QUOTE_SETTLE futures naming, settle == quote
    return "".join(parts).upper(), timeframe
