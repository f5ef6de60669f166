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

``load_candles`` is what the command-line tools read with: it also tells the timestamps' unit
(seconds, ms or µs, from their spacing and size) and converts to ms, takes the symbol and timeframe
from the arguments, the file name or (the timeframe) the timestamps, checks the spacing against the
timeframe, and counts the gaps. What it inferred or converted comes back as one-line notes.
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


# --------------------------------------------------------------------- reading for the command line

_TIMEFRAME_OF_MS = {ms: name for name, ms in TIMEFRAME_MS.items()}
# unit -> (multiply, divide) to turn a timestamp into ms; no two timeframes differ by a factor of 1000,
# so at most one unit makes the most common spacing a timeframe
_TO_MS = {"milliseconds": (1, 1), "seconds": (1000, 1), "microseconds": (1, 1000)}
_PLAUSIBLE_MS = (631_152_000_000, 4_102_444_800_000)  # 1990-01-01 .. 2100-01-01: tells a unit by size


def iso_utc(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration(ms: int) -> str:
    """``150_000_000`` -> ``1d 17h 40m``; below a second, ``250 ms``."""
    days, rest = divmod(ms // 1000, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")) if v]
    return " ".join(parts) or f"{ms} ms"


@dataclass(frozen=True, slots=True)
class Gaps:
    """Holes in a series: ``count`` of them, ``missing`` candles in all, the largest after ``after_ts``."""

    count: int
    missing: int
    largest: int
    after_ts: int
    step_ms: int

    def describe(self) -> str:
        s = "s" if self.count != 1 else ""
        return (f"{self.count:,} gap{s} in the candles ({self.missing:,} missing); the largest: {self.largest:,} "
                f"candles ({duration(self.largest * self.step_ms)}) after {iso_utc(self.after_ts)}")


@dataclass(frozen=True, slots=True)
class CandleFile:
    """A candle file as the command-line tools read it: ms timestamps, its symbol and timeframe."""

    path: Path
    arrays: CandleArrays
    symbol: str
    timeframe: str
    unit: str  # of the timestamps as written: "milliseconds", "seconds", "microseconds" or "ISO 8601"
    exact_header: bool
    notes: tuple[str, ...]  # what was inferred or converted, one line each
    gaps: Gaps | None

    @property
    def warnings(self) -> tuple[str, ...]:
        return () if self.gaps is None else (self.gaps.describe(),)


def load_candles(path: str | os.PathLike[str], *, symbol: str | None = None, timeframe: str | None = None,
                 min_candles: int = 2, needed_by: str = "telling their spacing") -> CandleFile:
    """Read a candle file for a command: CsvFormatError (or ValueError for an unknown ``timeframe``)
    with one line naming the problem, the first bad line where there is one.

    ``symbol`` and ``timeframe`` default to the file name's (``BASE_QUOTE-TF.csv``); without either, the
    timeframe is the most common spacing of the timestamps and the symbol the file name's letters.
    """
    p = Path(path)
    if timeframe is not None:
        timeframe_ms(timeframe)
    if p.is_dir():
        raise CsvFormatError(p, 0, "is a directory, not a candle file")
    if not p.is_file():
        raise CsvFormatError(p, 0, "no such file")
    rows = _read_rows(p)
    arrays = rows.arrays
    n = len(arrays)
    if n < min_candles:
        raise CsvFormatError(p, 0, "no candles, only a header" if n == 0 else
                             f"{n:,} candle{'s' if n != 1 else ''}; {needed_by} needs at least {min_candles:,}")
    check_arrays(arrays, path=p)  # sound prices, strictly increasing times: names the first bad line
    notes: list[str] = []
    file_symbol: str | None = None
    file_tf: str | None = None
    try:
        file_symbol, file_tf = symbol_from_filename(p)
    except ValueError:
        pass
    if symbol:
        name = symbol.strip().upper()
    elif file_symbol:
        name = file_symbol
    else:
        name = re.sub(r"[^A-Za-z0-9]", "", p.stem).upper() or "UNKNOWN"
        notes.append(f"symbol {name} taken from the file name (not BASE_QUOTE-TF.csv); pass --symbol to set it")
    expected = timeframe or file_tf
    source = "--timeframe" if timeframe else "the file name"
    if n < 2:  # no spacing to go by: the timeframe must be known, the unit goes by the size
        if expected is None:
            raise CsvFormatError(p, 0, f"cannot infer the timeframe from {n} candle{'s' if n != 1 else ''}; "
                                       f"pass --timeframe")
        unit = "ISO 8601" if rows.dated else (_unit_by_size(int(arrays.ts[0])) if n else None) or "milliseconds"
        step = timeframe_ms(expected)
    elif rows.dated:
        unit = "ISO 8601"
        step = _check_spacing_ms(p, _most_common_spacing(arrays.ts), expected, source)
    else:
        unit, step = _tell_unit(p, arrays.ts, expected, source)
    if unit in _TO_MS and unit != "milliseconds":
        notes.append(f"timestamps are in {unit}: converted to milliseconds")
        mul, div = _TO_MS[unit]
        arrays = CandleArrays(arrays.ts * mul // div, arrays.open, arrays.high, arrays.low, arrays.close,
                              arrays.volume)
    if rows.naive:
        notes.append("dates without a time zone read as UTC")
    tf = _TIMEFRAME_OF_MS[step]
    if expected is None:
        notes.append(f"timeframe {tf} inferred from the timestamps (their most common spacing); "
                     f"pass --timeframe to set it")
    gaps = _gaps(p, arrays.ts, step, tf)
    return CandleFile(p, arrays, name, tf, unit, rows.exact_header, tuple(notes), gaps)


def _most_common_spacing(ts: np.ndarray) -> int:
    d = np.diff(ts)
    median = np.median(d)  # the common case (few gaps) without a sort: the median is the majority value
    if median == int(median) and 2 * np.count_nonzero(d == int(median)) > d.size:
        return int(median)
    values, counts = np.unique(d, return_counts=True)
    return int(values[np.argmax(counts)])


def _check_spacing_ms(path: Path, spacing_ms: int, expected: str | None, source: str) -> int:
    if spacing_ms not in _TIMEFRAME_OF_MS:
        raise CsvFormatError(path, 0, f"the most common spacing between candles, {duration(spacing_ms)}, is not "
                                      f"a timeframe ({', '.join(TIMEFRAME_MS)})")
    if expected is not None and spacing_ms != timeframe_ms(expected):
        found = _TIMEFRAME_OF_MS[spacing_ms]
        raise CsvFormatError(path, 0, f"the candles are {found} apart, but {source} says {expected}; "
                                      f"pass --timeframe {found} if the data is right")
    return spacing_ms


def _unit_by_size(ts0: int) -> str | None:
    for name, (mul, div) in _TO_MS.items():
        if _PLAUSIBLE_MS[0] <= ts0 * mul // div < _PLAUSIBLE_MS[1]:
            return name
    return None


def _tell_unit(path: Path, ts: np.ndarray, expected: str | None, source: str) -> tuple[str, int]:
    """(unit, timeframe in ms) of integer timestamps, told by their spacing and size."""
    spacing = _most_common_spacing(ts)
    fits = [(name, spacing * mul // div) for name, (mul, div) in _TO_MS.items()
            if spacing * mul % div == 0 and spacing * mul // div in _TIMEFRAME_OF_MS]
    if not fits:
        raise CsvFormatError(path, 0, f"cannot tell the timestamps' unit: their most common spacing, {spacing:,}, "
                                      f"is no timeframe ({', '.join(TIMEFRAME_MS)}) in seconds, milliseconds "
                                      f"or microseconds")
    name, step = fits[0]
    by_size = _unit_by_size(int(ts[0]))
    if by_size is not None and by_size != name:
        raise CsvFormatError(path, 0, f"cannot tell the timestamps' unit: their spacing ({spacing:,}) reads as "
                                      f"{_TIMEFRAME_OF_MS[step]} in {name}, their size ({int(ts[0])}) as {by_size}")
    if expected is not None and step != timeframe_ms(expected):
        found = _TIMEFRAME_OF_MS[step]
        raise CsvFormatError(path, 0, f"the candles are {found} apart (timestamps in {name}), but {source} says "
                                      f"{expected}; pass --timeframe {found} if the data is right")
    return name, step


def _gaps(path: Path, ts: np.ndarray, step: int, timeframe: str) -> Gaps | None:
    """Refuse a spacing that is not whole candles (naming the line); count the holes."""
    d = np.diff(ts)
    off = d % step != 0
    if off.any():
        i = int(np.argmax(off))
        raise CsvFormatError(path, i + 3, f"{iso_utc(int(ts[i + 1]))} is {duration(int(d[i]))} after the previous "
                                          f"candle: not a whole number of {timeframe} candles")
    holes = np.flatnonzero(d > step)
    if holes.size == 0:
        return None
    missing = d[holes] // step - 1
    k = int(np.argmax(missing))
    return Gaps(int(holes.size), int(missing.sum()), int(missing[k]), int(ts[holes[k]]), step)


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
