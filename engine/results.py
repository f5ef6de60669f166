"""Closed trades and equity snapshots grouped as the read side shows them: per UTC day, per symbol, per tag.

``ClosedTrades`` is the read model of the closed trades: loaded once from the store, then fed each step's trades as
its transaction commits (``engine.store.ledger``), so /performance, /performance tags, /pnl, /daily, the first pages
of /trades and the HTTP API's figures are answered from memory, without a query. Every figure is computed as the
per-trade computation over the store's trades in their order (exit time, then id) always was: the same ``sum``,
``max`` and ``min`` over the same values in the same order, so the numbers are the same to the last bit.
"""

from __future__ import annotations

import operator
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat

from engine.core.types import DAY_MS, Trade
from engine.views import UNTAGGED, DayView, SymbolPerformance, TagPerformance

RECENT = 1_000
"""The newest closed trades kept whole in memory, for /trades' pages (a page beyond them is queried)."""


@dataclass(frozen=True, slots=True)
class Figures:
    """What the read side shows of a group of closed trades."""

    trades: int
    wins: int  # trades with pnl > 0
    pnl: float  # sum of their pnl, oldest first
    fees: float  # sum of their fees, oldest first
    pnl_pct_sum: float  # sum of their pnl_pct, oldest first (the average is pnl_pct_sum / trades)
    best_pnl_pct: float | None  # max of their pnl_pct (None: no trade)
    worst_pnl_pct: float | None


Figured = tuple[int, str, int, float, float, float, "str | None", "str | None", str]
"""What the figures need of a stored trade: id, symbol, exit_time, pnl, fee, pnl_pct, entry_tag, exit_tag,
exit_reason (``engine.store.ledger.FIGURE_COLUMNS``)."""


FOLDS = sum([1e16, 1.0, -1e16]) == 0.0
"""Whether this Python's ``sum`` of floats is a plain left fold (``((0 + a) + b) + c``, CPython before 3.12), so that
adding the newest trade's value to a group's sum gives ``sum`` of the whole group to the last bit. Otherwise
(3.12's compensated ``sum``) a group's sums are recomputed with ``sum`` after each change, on the next read."""


class _Group:
    """One group's trades in the store's order (exit time, then id), as columns."""

    __slots__ = ("_figures", "exits", "fee", "ids", "pct", "pnl", "won")

    def __init__(self) -> None:
        self.exits = array("q")
        self.ids = array("q")
        self.pnl = array("d")
        self.fee = array("d")
        self.pct = array("d")
        self.won = array("b")
        self._figures: Figures | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def extend(self, rows: Sequence[Figured]) -> None:
        """Append rows that come after every trade here, in the store's order."""
        if not rows:
            return
        ids, _, exits, pnl, fee, pct, *_ = zip(*rows, strict=True)  # columns
        self.ids.extend(array("q", ids))
        self.exits.extend(array("q", exits))
        self.pnl.extend(array("d", pnl))
        self.fee.extend(array("d", fee))
        self.pct.extend(array("d", pct))
        self.won.extend(array("b", map(operator.gt, pnl, repeat(0))))
        self._figures = None

    def add(self, trade_id: int, t: Trade) -> None:
        n = len(self.ids)
        if n == 0 or (t.exit_time, trade_id) > (self.exits[-1], self.ids[-1]):
            i = n  # the usual case: the newest
        else:
            i = bisect_right(range(n), (t.exit_time, trade_id), key=lambda j: (self.exits[j], self.ids[j]))
        self.exits.insert(i, t.exit_time)
        self.ids.insert(i, trade_id)
        self.pnl.insert(i, t.pnl)
        self.fee.insert(i, t.fee)
        self.pct.insert(i, t.pnl_pct)
        self.won.insert(i, t.pnl > 0)
        f = self._figures
        if f is not None and i == n and FOLDS:  # the newest: the figures' fold one step on (as sum, max, min do)
            best = f.best_pnl_pct if f.best_pnl_pct is not None and not t.pnl_pct > f.best_pnl_pct else t.pnl_pct
            worst = f.worst_pnl_pct if f.worst_pnl_pct is not None and not t.pnl_pct < f.worst_pnl_pct else t.pnl_pct
            self._figures = Figures(n + 1, f.wins + (t.pnl > 0), f.pnl + t.pnl, f.fees + t.fee,
                                    f.pnl_pct_sum + t.pnl_pct, best, worst)
        else:
            self._figures = None

    def figures(self, end_ms: int | None = None) -> Figures:
        """The group's figures; only of the trades that closed before ``end_ms`` when given."""
        if end_ms is not None and self.exits and self.exits[-1] >= end_ms:
            return self.slice(0, bisect_left(self.exits, end_ms))
        if self._figures is None:
            self._figures = self.slice(0, len(self.ids))
        return self._figures

    def slice(self, i: int, j: int) -> Figures:
        pct = self.pct[i:j]
        return Figures(j - i, self.won[i:j].count(1), sum(self.pnl[i:j]), sum(self.fee[i:j]), sum(pct),
                       max(pct, default=None), min(pct, default=None))

    def span(self, start_ms: int, end_ms: int) -> tuple[int, int]:
        """The positions of the trades that closed in ``[start_ms, end_ms)``."""
        return bisect_left(self.exits, start_ms), bisect_left(self.exits, end_ms)


class ClosedTrades:
    """Every closed trade's figures, grouped by symbol, entry tag and exit tag (or reason), in memory.

    ``add`` takes a trade with its store id; trades may come in any order (the model keeps the store's).
    ``version`` counts the changes (a reader may cache what it computed from one version)."""

    def __init__(self, rows: Iterable[tuple[int, Trade]] = ()) -> None:
        self._all = _Group()
        self._symbol: dict[str, _Group] = {}
        self._entry: dict[str, _Group] = {}
        self._exit: dict[str, _Group] = {}
        self._recent: list[tuple[int, int, Trade]] = []  # (exit_time, id, trade), the newest RECENT, oldest first
        self._periods: dict[tuple[int, int], Figures] = {}
        self.version = 0
        self.add(rows)

    @classmethod
    def loaded(cls, rows: Sequence[Figured], recent: Sequence[tuple[int, Trade]]) -> ClosedTrades:
        """The model of the stored trades: ``rows`` of every one in the store's order (exit time, then id), and
        the newest ``RECENT`` of them whole, in the same order."""
        model = cls()
        model._all.extend(rows)
        for groups, column in ((model._symbol, 1), (model._entry, 6), (model._exit, 7)):
            members: dict[str, list[Figured]] = {}
            if column == 1:
                for r in rows:
                    members.setdefault(r[1], []).append(r)
            elif column == 6:
                for r in rows:
                    members.setdefault(r[6] or UNTAGGED, []).append(r)
            else:
                for r in rows:
                    members.setdefault(r[7] or r[8], []).append(r)
            for key, mine in members.items():
                groups[key] = group = _Group()
                group.extend(mine)
        model._recent = [(t.exit_time, trade_id, t) for trade_id, t in recent[-RECENT:]]
        model.version = 1
        return model

    def __len__(self) -> int:
        return len(self._all)

    def add(self, rows: Iterable[tuple[int, Trade]]) -> None:
        for trade_id, t in rows:
            self._all.add(trade_id, t)
            for groups, key in ((self._symbol, t.symbol), (self._entry, t.entry_tag or UNTAGGED),
                                (self._exit, t.exit_tag or t.exit_reason)):
                group = groups.get(key)
                if group is None:
                    group = groups[key] = _Group()
                group.add(trade_id, t)
            item = (t.exit_time, trade_id, t)
            recent = self._recent
            if not recent or item[:2] > recent[-1][:2]:
                recent.append(item)
            else:
                recent.insert(bisect_right(recent, item[:2], key=lambda r: r[:2]), item)
            if len(recent) > RECENT:
                del recent[0]
            self.version += 1
            self._periods.clear()

    def by_symbol(self, end_ms: int | None = None) -> dict[str, Figures]:
        """Each symbol's figures (of the trades that closed before ``end_ms`` when given)."""
        return {k: g.figures(end_ms) for k, g in self._symbol.items() if end_ms is None or g.span(0, end_ms)[1]}

    def by_entry_tag(self, end_ms: int | None = None) -> dict[str, Figures]:
        """Each entry tag's figures (UNTAGGED: the trades opened without one)."""
        return {k: g.figures(end_ms) for k, g in self._entry.items() if end_ms is None or g.span(0, end_ms)[1]}

    def by_exit_tag(self, end_ms: int | None = None) -> dict[str, Figures]:
        """Each exit tag's figures (a trade closed without one: by its exit reason)."""
        return {k: g.figures(end_ms) for k, g in self._exit.items() if end_ms is None or g.span(0, end_ms)[1]}

    def between(self, start_ms: int, end_ms: int) -> Figures:
        """The figures of the trades that closed in ``[start_ms, end_ms)``."""
        span = self._all.span(start_ms, end_ms)
        if span == (0, len(self._all)):
            return self._all.figures()
        found = self._periods.get(span)
        if found is None:
            if len(self._periods) > 64:
                self._periods.clear()
            found = self._periods[span] = self._all.slice(*span)
        return found

    def count_between(self, start_ms: int, end_ms: int) -> int:
        i, j = self._all.span(start_ms, end_ms)
        return max(0, j - i)

    def newest(self, limit: int, offset: int = 0) -> list[Trade] | None:
        """Closed trades, newest exit first (as ``Ledger.trades``), or None when the page reaches past the newest
        ``RECENT`` kept whole (ask the store)."""
        recent = self._recent
        if offset + limit > len(recent) and len(recent) < len(self):
            return None
        end = len(recent) - offset
        return [t for _, _, t in reversed(recent[max(0, end - limit):max(0, end)])]


def per_day(first_day: int, last_day: int, series: Sequence[tuple[int, float]], closed: ClosedTrades,
            start_equity: float, end_ms: int) -> tuple[DayView, ...]:
    """PnL of each UTC day from ``first_day`` to ``last_day`` (day numbers), newest first: a day ends at its
    last equity snapshot (none: the day before's end), starting from ``start_equity``; its trades are those that
    closed in it before ``end_ms``."""
    prev = start_equity
    out = []
    for day in range(first_day, last_day + 1):
        in_day = [eq for ts, eq in series if day * DAY_MS <= ts < (day + 1) * DAY_MS]
        end = in_day[-1] if in_day else prev
        n = closed.count_between(day * DAY_MS, min((day + 1) * DAY_MS, end_ms))
        label = datetime.fromtimestamp(day * 86400, tz=UTC).strftime("%Y-%m-%d")
        out.append(DayView(label, end, end - prev, (end - prev) / prev if prev else 0.0, n))
        prev = end
    return tuple(reversed(out))


def _view_fields(f: Figures) -> tuple[int, int, float, float, float, float | None, float | None]:
    return f.trades, f.wins, f.pnl, f.fees, f.pnl_pct_sum, f.best_pnl_pct, f.worst_pnl_pct


NO_TRADES = Figures(0, 0, 0, 0, 0, None, None)  # sum() of nothing: the int 0, as before


def per_symbol(closed: ClosedTrades, symbols: Iterable[str], end_ms: int) -> tuple[SymbolPerformance, ...]:
    """Each traded or configured symbol's trades closed before ``end_ms``, by name."""
    found = closed.by_symbol(end_ms)
    return tuple(SymbolPerformance(symbol, *_view_fields(found.get(symbol, NO_TRADES)))
                 for symbol in sorted(found.keys() | set(symbols)))


def per_tag(closed: ClosedTrades, end_ms: int) -> tuple[TagPerformance, ...]:
    """Trades closed before ``end_ms`` by entry tag (UNTAGGED without one), then by exit tag (an untagged exit by
    its reason), each group by PnL, best first: which of a strategy's rules earns."""
    out: list[TagPerformance] = []
    for kind, groups in (("entry", closed.by_entry_tag(end_ms)), ("exit", closed.by_exit_tag(end_ms))):
        rows = [TagPerformance(kind, tag, *_view_fields(f)) for tag, f in groups.items()]
        out += sorted(rows, key=lambda r: (-r.pnl, r.tag))
    return tuple(out)
