"""Closed trades and equity snapshots grouped as the read side shows them: per UTC day, per symbol, per tag.

Pure functions over what the store returned (the facade fetches, these group), so /daily, /performance,
/performance tags and the HTTP API's figures are computed once, here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from engine.core.types import DAY_MS, Trade
from engine.views import UNTAGGED, DayView, SymbolPerformance, TagPerformance


def per_day(first_day: int, last_day: int, series: Sequence[tuple[int, float]], trades: Sequence[Trade],
            start_equity: float) -> tuple[DayView, ...]:
    """PnL of each UTC day from ``first_day`` to ``last_day`` (day numbers), newest first: a day ends at its
    last equity snapshot (none: the day before's end), starting from ``start_equity``."""
    prev = start_equity
    out = []
    for day in range(first_day, last_day + 1):
        in_day = [eq for ts, eq in series if day * DAY_MS <= ts < (day + 1) * DAY_MS]
        end = in_day[-1] if in_day else prev
        n = sum(1 for t in trades if day * DAY_MS <= t.exit_time < (day + 1) * DAY_MS)
        label = datetime.fromtimestamp(day * 86400, tz=UTC).strftime("%Y-%m-%d")
        out.append(DayView(label, end, end - prev, (end - prev) / prev if prev else 0.0, n))
        prev = end
    return tuple(reversed(out))


def _figures(mine: Sequence[Trade]) -> tuple[int, int, float, float, tuple[float, ...]]:
    return (len(mine), sum(1 for t in mine if t.pnl > 0), sum(t.pnl for t in mine), sum(t.fee for t in mine),
            tuple(t.pnl_pct for t in mine))


def per_symbol(trades: Sequence[Trade], symbols: Iterable[str]) -> tuple[SymbolPerformance, ...]:
    """Each traded or configured symbol's closed trades, by name."""
    return tuple(SymbolPerformance(symbol, *_figures([t for t in trades if t.symbol == symbol]))
                 for symbol in sorted({t.symbol for t in trades} | set(symbols)))


def per_tag(trades: Sequence[Trade]) -> tuple[TagPerformance, ...]:
    """Closed trades by entry tag (UNTAGGED without one), then by exit tag (an untagged exit by its reason),
    each group by PnL, best first: which of a strategy's rules earns."""
    out: list[TagPerformance] = []
    for kind in ("entry", "exit"):
        groups: dict[str, list[Trade]] = {}
        for t in trades:
            tag = (t.entry_tag or UNTAGGED) if kind == "entry" else (t.exit_tag or t.exit_reason)
            groups.setdefault(tag, []).append(t)
        rows = [TagPerformance(kind, tag, *_figures(mine)) for tag, mine in groups.items()]
        out += sorted(rows, key=lambda r: (-r.pnl, r.tag))
    return tuple(out)
