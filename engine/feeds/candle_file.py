"""Candle files as the command-line tools (and the worker's replay files) read them.

``load_candles`` reads with :mod:`engine.feeds.csvio`, then tells the timestamps' unit (seconds, ms or µs,
from their spacing and size) and converts to ms, takes the symbol and timeframe from the arguments, the
file name or (the timeframe) the timestamps, checks the spacing against the timeframe, and counts the
gaps. What it inferred or converted comes back as one-line notes; a problem is a :class:`CsvFormatError`
with one line naming the file and, where there is one, the first bad line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from engine.core.model import CandleArrays
from engine.core.types import TIMEFRAME_MS, timeframe_ms
from engine.feeds.csvio import CsvFormatError, _read_rows, check_arrays, symbol_from_filename

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


