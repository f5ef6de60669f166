"""Positions and the money: the cash ledger (one row per fill, after an opening deposit), closed trades, the
open positions after each step, and the equity snapshots.

The read side's figures of the closed trades come from ``engine.results.ClosedTrades``, a read model in memory:
``Ledger.closed_trades`` loads it from the database once (the first read), and from then on ``write_trades`` feeds
it the rows each step inserted (as the database returned them), when that step's transaction commits. A read of
/performance, /pnl or the newest /trades then costs no query: on SQLite under a busy event loop every query costs
several thread hand-offs (aiosqlite), tens of ms each when the loop and the engine keep the GIL busy. This holds for
the trades written through this ``Store``: the one worker that trades a database writes them all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, delete, event, exists, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.core.types import Fill, PositionView, Side, StepRecord, Trade
from engine.results import RECENT, ClosedTrades
from engine.store.sessions import Repository, stamped
from engine.store.tables import CashLedgerRow, EquitySnapshotRow, PositionRow, TradeRow, now_ms

LEDGER_READS = "ledger_reads"
"""The key of the store's ``LedgerReads`` in the info of its write sessions (``Store._sessions``)."""

FIGURE_COLUMNS = (TradeRow.id, TradeRow.symbol, TradeRow.exit_time, TradeRow.pnl, TradeRow.fee, TradeRow.pnl_pct,
                  TradeRow.entry_tag, TradeRow.exit_tag, TradeRow.exit_reason)  # engine.results.Figured
TRADE_COLUMNS = (TradeRow.id, TradeRow.symbol, TradeRow.side, TradeRow.entry_time, TradeRow.exit_time,
                 TradeRow.entry_price, TradeRow.exit_price, TradeRow.quantity, TradeRow.fee, TradeRow.pnl,
                 TradeRow.exit_reason, TradeRow.pnl_pct, TradeRow.entry_tag, TradeRow.exit_tag)


class LedgerReads:
    """What a store keeps in memory for the read side: the closed trades' read model and the equity at the start
    of a period once it cannot change."""

    def __init__(self) -> None:
        self.closed: ClosedTrades | None = None
        self._pending: list[tuple[int, Trade]] | None = None  # committed while the model loads
        self._loading = asyncio.Lock()
        self.equity_before: dict[tuple[int, bool], float | None] = {}
        self.first_equity_ts: int | None = None

    def committed(self, rows: Sequence[tuple[int, Trade]]) -> None:
        """A step's transaction that inserted these trades committed."""
        if self.closed is not None:
            self.closed.add(rows)
        elif self._pending is not None:
            self._pending.extend(rows)
        # else: not loaded yet; the first read loads them with the rest

    async def load(self, sessions: async_sessionmaker[AsyncSession]) -> ClosedTrades:
        async with self._loading:
            if self.closed is not None:
                return self.closed
            self._pending = []
            try:
                order = (TradeRow.exit_time, TradeRow.id)
                async with sessions.begin() as session:  # one snapshot on SQLite; PostgreSQL: one per statement
                    rows = (await session.execute(select(*FIGURE_COLUMNS).order_by(*order))).all()
                    newest = (await session.execute(select(*TRADE_COLUMNS).order_by(*(c.desc() for c in order))
                                                    .limit(RECENT))).all()
                loaded = {row[0] for row in rows}  # a trade committed between the two is fed below, once
                closed = ClosedTrades.loaded(rows, [(row.id, trade_from_row(row)) for row in reversed(newest)
                                                    if row.id in loaded])
                if self._pending:  # committed during the load: some may be in it already
                    closed.add(r for r in self._pending if r[0] not in loaded)
                self.closed = closed
            finally:
                self._pending = None
            return closed


def fill_cash_amount(fill: Fill) -> float:
    """Signed change of cash for ``fill``, fee included."""
    gross = fill.quantity * fill.price
    return -gross - fill.fee if fill.side == Side.BUY else gross - fill.fee


class Ledger(Repository):
    """Reads of trades, positions and equity."""

    _ledger_reads: LedgerReads

    async def closed_trades(self) -> ClosedTrades:
        """The read model of every closed trade (``engine.results.ClosedTrades``), current as of the last commit
        of this store; loaded from the database by the first call, kept current without a query after it."""
        reads = self._ledger_reads
        return reads.closed if reads.closed is not None else await reads.load(self._reads)

    async def trades(self, limit: int, offset: int = 0, symbol: str | None = None) -> list[Trade]:
        """Closed trades, newest exit first."""
        query = select(TradeRow).order_by(TradeRow.exit_time.desc(), TradeRow.id.desc())
        if symbol is not None:
            query = query.where(TradeRow.symbol == symbol)
        rows = await self._read_scalars(query.limit(limit).offset(offset))
        return [trade_from_row(row) for row in rows]

    async def trade_count(self, symbol: str | None = None) -> int:
        query = select(func.count()).select_from(TradeRow)
        if symbol is not None:
            query = query.where(TradeRow.symbol == symbol)
        async with self._reads.begin() as session:
            return int(await session.scalar(query) or 0)

    async def trades_between(self, start_ms: int, end_ms: int) -> list[Trade]:
        """Trades that closed in ``[start_ms, end_ms)``, oldest first."""
        query = (
            select(TradeRow)
            .where(TradeRow.exit_time >= start_ms, TradeRow.exit_time < end_ms)
            .order_by(TradeRow.exit_time, TradeRow.id)
        )
        return [trade_from_row(row) for row in await self._read_scalars(query)]

    async def equity_series(self, since_ms: int | None = None) -> list[tuple[int, float]]:
        """(ts, equity) snapshots, oldest first."""
        query = select(EquitySnapshotRow.ts, EquitySnapshotRow.equity).order_by(
            EquitySnapshotRow.ts, EquitySnapshotRow.id
        )
        if since_ms is not None:
            query = query.where(EquitySnapshotRow.ts >= since_ms)
        async with self._reads.begin() as session:
            return [(int(ts), float(equity)) for ts, equity in (await session.execute(query)).all()]

    async def first_equity_ts(self) -> int | None:
        """The time of the oldest equity snapshot (the agent's first decided candle); None before it."""
        reads = self._ledger_reads
        if reads.first_equity_ts is None:  # once there is one, the oldest stays the oldest
            async with self._reads.begin() as session:
                value = (await session.execute(select(func.min(EquitySnapshotRow.ts)))).scalar_one_or_none()
            reads.first_equity_ts = None if value is None else int(value)
        return reads.first_equity_ts

    async def equity_before(self, ts_ms: int, *, inclusive: bool = False) -> float | None:
        """The last equity snapshot before ``ts_ms`` (or at it, when ``inclusive``); None if there is none.

        Kept once a later snapshot exists: the engine writes its snapshots one step at a time under its lock, each
        stamped with its clock's time, so none at or before ``ts_ms`` can come after one past it."""
        memo = self._ledger_reads.equity_before
        if (ts_ms, inclusive) in memo:
            return memo[ts_ms, inclusive]
        cond = EquitySnapshotRow.ts <= ts_ms if inclusive else EquitySnapshotRow.ts < ts_ms
        query = (select(EquitySnapshotRow.equity).where(cond)
                 .order_by(EquitySnapshotRow.ts.desc(), EquitySnapshotRow.id.desc()).limit(1))
        later = exists().where(EquitySnapshotRow.ts > ts_ms)
        async with self._reads.begin() as session:
            value, final = (await session.execute(select(query.scalar_subquery(), later))).one()
        found = None if value is None else float(value)
        if final:
            if len(memo) > 64:
                memo.clear()
            memo[ts_ms, inclusive] = found
        return found

    async def positions(self) -> list[PositionView]:
        rows = await self._read_scalars(select(PositionRow).order_by(PositionRow.symbol))
        return [position_from_row(row) for row in rows]


async def last_balance(session: AsyncSession) -> float | None:
    query = select(CashLedgerRow.balance_after).order_by(CashLedgerRow.id.desc()).limit(1)
    balance = await session.scalar(query)
    return None if balance is None else float(balance)


async def write_ledger(session: AsyncSession, fills: Sequence[Fill], rec: StepRecord) -> None:
    """One ledger row per fill; on an empty ledger first an opening deposit that makes it match cash."""
    amounts = [fill_cash_amount(fill) for fill in fills]
    balance = await last_balance(session)
    rows: list[dict[str, Any]] = []
    if balance is None:
        balance = rec.cash - sum(amounts)
        rows.append(ledger_values(rec.now_ms, "deposit", balance, 0.0, None, balance))
    for fill, amount in zip(fills, amounts, strict=True):
        balance += amount
        rows.append(ledger_values(fill.ts, "fill", amount, fill.fee, fill.order_id, balance))
    if rows:
        await session.execute(insert(CashLedgerRow), rows)


async def write_trades(session: AsyncSession, trades: Sequence[Trade]) -> None:
    """Insert the closed trades; when the session's transaction commits, the store's read model gets them as the
    database returned them (``RETURNING``: its ids, and its values as a read would give them)."""
    if not trades:
        return
    statement = insert(TradeRow).returning(*TRADE_COLUMNS, sort_by_parameter_order=True)
    rows = (await session.execute(statement, [trade_values(trade) for trade in trades])).all()
    reads = session.info.get(LEDGER_READS)
    if isinstance(reads, LedgerReads):
        committed = [(int(row.id), trade_from_row(row)) for row in rows]
        event.listen(session.sync_session, "after_commit", lambda _: reads.committed(committed), once=True)


async def replace_positions(session: AsyncSession, positions: Sequence[PositionView]) -> None:
    await session.execute(delete(PositionRow).execution_options(synchronize_session=False))
    if positions:
        await session.execute(insert(PositionRow), [position_values(p) for p in positions])


def ledger_values(
    ts: int, kind: str, amount: float, fee: float, order_id: str | None, balance_after: float
) -> dict[str, Any]:
    return {
        "ts": ts,
        "kind": kind,
        "amount": amount,
        "fee": fee,
        "order_id": order_id,
        "balance_after": balance_after,
        "created_at": now_ms(),
    }


def trade_values(trade: Trade) -> dict[str, Any]:
    return stamped(
        {
            "symbol": trade.symbol,
            "side": trade.side,
            "entry_time": trade.entry_time,
            "exit_time": trade.exit_time,
            "entry_price": trade.entry_price,
            "exit_price": trade.exit_price,
            "quantity": trade.quantity,
            "fee": trade.fee,
            "pnl": trade.pnl,
            "exit_reason": trade.exit_reason,
            "pnl_pct": trade.pnl_pct,
            "entry_tag": _tag(trade.entry_tag),
            "exit_tag": _tag(trade.exit_tag),
        }
    )


TAG_LENGTH = 64  # the column's; a longer tag (user code) is kept to its first 63 characters and an ellipsis


def _tag(tag: str | None) -> str | None:
    if tag is None:
        return None
    text = str(tag)
    return text if len(text) <= TAG_LENGTH else text[:TAG_LENGTH - 1] + "…"


def position_values(position: PositionView) -> dict[str, Any]:
    return stamped(
        {
            "symbol": position.symbol,
            "quantity": position.quantity,
            "avg_price": position.avg_price,
            "entry_ts": position.entry_ts,
            "mark_price": position.mark_price,
            "unrealized_pnl": position.unrealized_pnl,
            "stop_price": position.stop_price,
            "target_price": position.target_price,
            "trail_price": position.trail_price,
        }
    )


def trade_from_row(row: TradeRow | Row[*tuple[Any, ...]]) -> Trade:
    return Trade(
        symbol=row.symbol,
        side=row.side,
        entry_time=row.entry_time,
        exit_time=row.exit_time,
        entry_price=row.entry_price,
        exit_price=row.exit_price,
        quantity=row.quantity,
        fee=row.fee,
        pnl=row.pnl,
        exit_reason=row.exit_reason,
        pnl_pct=row.pnl_pct,
        entry_tag=row.entry_tag,
        exit_tag=row.exit_tag,
    )


def position_from_row(row: PositionRow) -> PositionView:
    return PositionView(
        symbol=row.symbol,
        quantity=row.quantity,
        avg_price=row.avg_price,
        entry_ts=row.entry_ts,
        mark_price=row.mark_price,
        unrealized_pnl=row.unrealized_pnl,
        stop_price=row.stop_price,
        target_price=row.target_price,
        trail_price=row.trail_price,
    )
