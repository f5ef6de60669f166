"""Reads and writes that only tests need, over a real ``Store``'s own session factory (so they see exactly what
it committed): fills, the ledger's invariants, the active chats, events outside a step, an order's status."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.core.types import Fill
from engine.events import EngineEvent
from engine.store import Chat, Store
from engine.store.ledger import last_balance
from engine.store.orders import ORDER_STATUSES, fill_from_row
from engine.store.outbox import write_events
from engine.store.tables import CashLedgerRow, ChatRow, EquitySnapshotRow, FillRow, OrderRow, now_ms


def sessions(store: Store) -> async_sessionmaker[AsyncSession]:
    return store._sessions  # the store's own unit of work, not a second connection setup


async def fills(store: Store, limit: int) -> list[Fill]:
    """Fills, newest first."""
    query = select(FillRow).order_by(FillRow.ts.desc(), FillRow.id.desc()).limit(limit)
    async with sessions(store).begin() as session:
        return [fill_from_row(row) for row in (await session.scalars(query)).all()]


async def active_chats(store: Store) -> list[Chat]:
    query = select(ChatRow).where(ChatRow.active).order_by(ChatRow.chat_id)
    async with sessions(store).begin() as session:
        rows = (await session.scalars(query)).all()
    return [Chat(r.chat_id, r.thread_id, r.active, r.role, r.notes) for r in rows]


async def enqueue_events(store: Store, *events: EngineEvent) -> list[int]:
    """Write events outside a step to the outbox (with their deliveries), as a step writes them; their ids."""
    async with sessions(store).begin() as session:
        return await write_events(session, events)


async def set_order_status(store: Store, order_id: str, status: str) -> bool:
    """Mark an order "cancelled" or "refused" (or back to "pending"); False if it is unknown."""
    if status not in ORDER_STATUSES:
        raise ValueError(f"unknown order status {status!r}; expected one of {', '.join(ORDER_STATUSES)}")
    statement = (update(OrderRow).where(OrderRow.order_id == order_id).values(status=status, updated_at=now_ms())
                 .execution_options(synchronize_session=False))
    async with sessions(store).begin() as session:
        result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


async def ledger_invariants(store: Store) -> dict[str, float]:
    """Figures that must agree after any crash: ledger vs cash, ledger fees vs fill fees.

    ``ledger_sum`` (sum of signed amounts) == ``last_balance`` == ``cash`` (latest equity snapshot) and
    ``ledger_fees`` == ``fill_fees``; ``ledger_fill_rows`` == ``fill_count``.
    """
    ledger = select(func.coalesce(func.sum(CashLedgerRow.amount), 0.0),
                    func.coalesce(func.sum(CashLedgerRow.fee), 0.0), func.count(CashLedgerRow.order_id))
    async with sessions(store).begin() as session:
        ledger_sum, ledger_fees, fill_rows = (await session.execute(ledger)).one()
        fill_fees, fill_count = (
            await session.execute(select(func.coalesce(func.sum(FillRow.fee), 0.0), func.count()))
        ).one()
        balance = await last_balance(session)
        cash = await session.scalar(select(EquitySnapshotRow.cash).order_by(EquitySnapshotRow.id.desc()).limit(1))
    return {
        "ledger_sum": float(ledger_sum),
        "last_balance": float(balance or 0.0),
        "cash": float(cash or 0.0),
        "ledger_fees": float(ledger_fees),
        "fill_fees": float(fill_fees),
        "ledger_fill_rows": float(fill_rows),
        "fill_count": float(fill_count),
    }
