"""Look-ahead check for any strategy: are its signals (and indicators) the same when the future is cut off?

``check_lookahead(strategy, candles)`` runs ``signals`` once on the whole series and again on truncated
prefixes (``candles[:end]``), and compares every output on the rows both share: the kernel's inputs
(``action``, ``confidence``, ``enter_tag``, ``exit_tag``) and every column the strategy's DataFrame holds beyond
the candles (its indicators, ``enter_long``, ``exit_long``...). A causal strategy gives identical values (NaN
equals NaN); a difference means a row used a later candle. The report names, per leaking column, the first
candle (row and UTC time) and the values with and without the future.

Prefix ends: ``prefixes`` ends spread evenly from ``startup_candles`` to the end, plus up to as many ends just
after candles that signal in the whole-series run (a signal that peeks at the next candle differs exactly when
the series is cut right after it). The check is what the worker and the optimiser run at start on a short
window: a simple pandas strategy on 1,000 candles takes well under a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.core.model import CandleArrays
from engine.strategy.base import BASE_COLUMNS, HOLD, Signals, Strategy, candle_time
from engine.strategy.params import StrategyError

DEFAULT_PREFIXES = 20
SIGNAL_COLUMNS: tuple[str, ...] = ("action", "confidence", "enter_tag", "exit_tag")


@dataclass(frozen=True, slots=True)
class Leak:
    """The first candle where ``column`` differs between the whole series and a prefix ending at ``end``."""

    column: str
    row: int
    when: str  # the candle's UTC time, YYYY-MM-DD HH:MM UTC
    end: int  # length of the prefix that showed it
    full_value: Any
    prefix_value: Any

    def describe(self) -> str:
        return (f"column {self.column!r} looks ahead: first at candle {self.when} (row {self.row}): "
                f"{self.full_value!r} with the whole series, {self.prefix_value!r} with the series cut after "
                f"candle {self.end - 1}")


@dataclass(slots=True)
class LookaheadReport:
    strategy: str
    rows: int
    prefix_ends: list[int]
    checked_values: int = 0
    leaks: list[Leak] = field(default_factory=list)  # one per leaking column, earliest candle first
    live_window: int | None = None  # the trailing window also compared (``live_window=``), or None
    window_differences: list[Leak] = field(default_factory=list)  # the kernel's inputs only; not look-ahead

    @property
    def clean(self) -> bool:
        return not self.leaks

    def summary(self) -> str:
        head = (f"{self.strategy}: {self.rows} candles, {len(self.prefix_ends)} truncated runs, "
                f"{self.checked_values} values compared: ")
        lines = [head + ("no look-ahead found" if self.clean else
                         f"look-ahead in {', '.join(repr(lk.column) for lk in self.leaks)}")]
        lines += ["  " + lk.describe() for lk in self.leaks]
        if self.live_window is not None:
            if not self.window_differences:
                lines.append(f"the live window ({self.live_window} candles) decides as the whole series does")
            for lk in self.window_differences:
                lines.append(f"  warm-up: {lk.column!r} at candle {lk.when} (row {lk.row}) is {lk.full_value!r} "
                             f"with the whole series, {lk.prefix_value!r} with the last {self.live_window} candles "
                             "(raise startup_candles)")
        return "\n".join(lines)

    def error(self) -> StrategyError | None:
        """None when clean, else one line for a person (what the worker and the optimiser refuse with)."""
        if self.clean:
            return None
        first = self.leaks[0]
        more = f" (and {len(self.leaks) - 1} more columns)" if len(self.leaks) > 1 else ""
        return StrategyError(f"{self.strategy} fails the look-ahead check: {first.describe()}{more}")


def prefix_ends(strategy: Strategy, full: Signals, count: int = DEFAULT_PREFIXES) -> list[int]:
    """Lengths of the truncated runs: ``count`` spread from ``startup_candles`` (at least 2) to n - 1, and up to
    ``count`` just after whole-series signals (spread over them)."""
    n = len(full)
    if n < 3 or count <= 0:
        return []
    lo = min(max(int(strategy.startup_candles) + 1, 2), n - 1)
    ends = {int(c) for c in np.linspace(lo, n - 1, count).round()}
    signalled = np.flatnonzero(full.action != HOLD) + 1
    signalled = signalled[(signalled >= lo) & (signalled < n)]
    if signalled.size:
        pick = np.linspace(0, signalled.size - 1, min(count, signalled.size)).round().astype(np.int64)
        ends.update(int(c) for c in signalled[pick])
    return sorted(ends)


def _columns(sig: Signals) -> dict[str, np.ndarray]:
    """Every compared output of one run, by name: the kernel's inputs, then the strategy's own columns."""
    out: dict[str, np.ndarray] = {"action": sig.action, "confidence": sig.confidence}
    if sig.enter_tag is not None:
        out["enter_tag"] = sig.enter_tag
    if sig.exit_tag is not None:
        out["exit_tag"] = sig.exit_tag
    frame: pd.DataFrame = sig.frame
    for i, name in enumerate(frame.columns):
        key = str(name)
        if key in BASE_COLUMNS or key in out:
            continue
        col = frame.iloc[:, i]
        if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_complex_dtype(col.dtype):
            out[key] = col.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            out[key] = col.to_numpy(dtype=object)
    return out


def _is_missing(v: Any) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def _first_difference(full: np.ndarray, part: np.ndarray) -> int | None:
    if full.dtype != object and part.dtype != object:
        same = (full == part) | (np.isnan(full) & np.isnan(part)) if full.dtype.kind == "f" else full == part
        bad = np.flatnonzero(~same)
        return int(bad[0]) if bad.size else None
    for i in range(part.shape[0]):
        a, b = full[i], part[i]
        if _is_missing(a) and _is_missing(b):
            continue
        try:
            equal = bool(a == b) and type(a) is type(b)
        except (TypeError, ValueError):
            equal = False
        if not equal:
            return i
    return None


def _value(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def check_lookahead(strategy: Strategy, candles: CandleArrays, *, prefixes: int | list[int] = DEFAULT_PREFIXES,
                    live_window: int | None = None) -> LookaheadReport:
    """Compare the whole-series run with truncated runs (module docstring). ``prefixes``: how many evenly spread
    ends (plus as many after signals), or the exact prefix lengths. A populate method that fails on a prefix is
    the StrategyError it raised.

    ``live_window`` (e.g. ``strategy.lookback``) also runs, at every prefix end at least that long, the trailing
    window of that many candles the live loop would hand over, and compares its last candle's kernel inputs
    (action, confidence, tags) with the whole series': a difference is not look-ahead but too short a warm-up
    (indicators such as an EMA depend a little on all history); it goes to ``window_differences``."""
    n = len(candles)
    full = strategy.signals(candles)
    if isinstance(prefixes, int):
        ends = prefix_ends(strategy, full, prefixes)
    else:
        ends = sorted(set(prefixes))
        for end in ends:
            if not 1 <= end <= n:
                raise ValueError(f"prefix end {end} outside 1..{n}")
    report = LookaheadReport(strategy.name, n, ends, live_window=live_window)
    if live_window is not None and live_window < 1:
        raise ValueError(f"live window {live_window} must be at least 1 candle")
    full_cols = _columns(full)
    first: dict[str, Leak] = {}
    for end in ends:
        part_cols = _columns(strategy.signals(candles.slice(0, end)))
        for name in full_cols.keys() | part_cols.keys():
            if name not in full_cols or name not in part_cols:
                row = end - 1  # a column only one run has: shown at the prefix's last candle
                if name not in first or row < first[name].row:
                    a = full_cols[name][row] if name in full_cols else "(no column)"
                    b = part_cols[name][row] if name in part_cols else "(no column)"
                    first[name] = Leak(name, row, _when(candles, row), end, _value(a), _value(b))
                continue
            f, p = full_cols[name][:end], part_cols[name]
            report.checked_values += int(p.shape[0])
            row_or_none = _first_difference(f, p)
            if row_or_none is not None and (name not in first or row_or_none < first[name].row):
                r = row_or_none
                first[name] = Leak(name, r, _when(candles, r), end, _value(f[r]), _value(p[r]))
        if live_window is not None and end >= live_window:
            _compare_window(strategy, candles, end, live_window, full_cols, report)
    order = {name: i for i, name in enumerate(full_cols)}
    report.leaks = sorted(first.values(), key=lambda lk: (lk.row, order.get(lk.column, len(order)), lk.column))
    return report


def _compare_window(strategy: Strategy, candles: CandleArrays, end: int, window: int,
                    full_cols: dict[str, np.ndarray], report: LookaheadReport) -> None:
    live = _columns(strategy.signals(candles.slice(end - window, end)))
    row = end - 1
    seen = {lk.column for lk in report.window_differences}
    for name in SIGNAL_COLUMNS:
        if name in seen or (name not in full_cols and name not in live):
            continue
        a = full_cols[name][row] if name in full_cols else None
        b = live[name][-1] if name in live else None
        if _first_difference(np.array([a], dtype=object), np.array([b], dtype=object)) is not None:
            report.window_differences.append(Leak(name, row, _when(candles, row), end, _value(a), _value(b)))


def _when(candles: CandleArrays, row: int) -> str:
    text = candle_time(pd.DataFrame(), row, np.asarray(candles.ts))
    return text[text.index("(") + 1:-1]


def require_causal(strategy: Strategy, candles: CandleArrays, *, prefixes: int | list[int] = DEFAULT_PREFIXES
                   ) -> LookaheadReport:
    """``check_lookahead``, raising its one-line StrategyError when it finds look-ahead (the worker's and the
    optimiser's start-up gate)."""
    report = check_lookahead(strategy, candles, prefixes=prefixes)
    problem = report.error()
    if problem is not None:
        raise problem
    return report
