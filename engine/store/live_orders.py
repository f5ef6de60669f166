"""Live orders (``live_orders``): one row per intent, inserted before the order is sent and changed only by a
compare-and-set on its state, so two tasks (a submit and a poll) can never move it backwards.

The states and their transitions are ``engine.live.types``; this part stores them. A change is refused (None
returned, nothing written) when the row's state is not one the caller expected: the caller read an older row.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.core.types import Side
from engine.live.types import LiveOrder, OrderChange, OrderIntent, OrderState, OrderType
from engine.store.sessions import Repository, insert_for, stamped
from engine.store.tables import LiveOrderRow, now_ms

log = structlog.get_logger("engine.store")

MAX_LAST_ERROR_CHARS = 500


class LiveOrders(Repository):
    """The orders the agent sent (or is about to send) to the exchange."""

    async def add_live_order(self, intent: OrderIntent, client_id: str, *, state: OrderState, amount: float,
                             price: float | None, sent_at: int, expires_at: int | None,
                             last_error: str | None = None) -> tuple[LiveOrder, bool]:
        """Insert the order of ``intent`` unless its ``client_id`` is recorded already; the row, and whether it
        was inserted now (False: this intent was submitted before, and the row is as it was)."""
        values = stamped({"client_id": client_id, "symbol": intent.symbol, "side": str(intent.side),
                          "type": str(intent.type), "amount": amount, "price": price,
                          "decided_ts": intent.decided_ts, "reason": intent.reason, "seq": intent.seq,
                          "intent_id": intent.intent_id, "state": str(state), "exchange_id": None, "filled": 0.0,
                          "average": None, "cost": 0.0, "fees": {}, "sent_at": sent_at, "expires_at": expires_at,
                          "attempts": 0, "last_error": _clip(last_error)})
        async with self._sessions.begin() as session:
            statement = insert_for(session)(LiveOrderRow).values(values)
            result = await session.execute(statement.on_conflict_do_nothing(index_elements=["client_id"]))
            inserted = bool(getattr(result, "rowcount", 0))
            row = await _row(session, client_id)
            assert row is not None
            return live_order_from_row(row), inserted

    async def live_order(self, client_id: str) -> LiveOrder | None:
        async with self._sessions.begin() as session:
            row = await _row(session, client_id)
            return None if row is None else live_order_from_row(row)

    async def live_orders(self, states: Iterable[OrderState] | None = None,
                          symbol: str | None = None) -> list[LiveOrder]:
        """Orders in ``states`` (all without), of ``symbol`` (all without), oldest first."""
        query = select(LiveOrderRow).order_by(LiveOrderRow.id)
        if states is not None:
            query = query.where(LiveOrderRow.state.in_([str(s) for s in states]))
        if symbol is not None:
            query = query.where(LiveOrderRow.symbol == symbol)
        return [live_order_from_row(row) for row in await self._scalars(query)]

    async def change_live_order(self, client_id: str, expect: Collection[OrderState],
                                change: OrderChange) -> tuple[LiveOrder, LiveOrder] | None:
        """Apply ``change`` if the order is in one of ``expect`` (checked in the same transaction); the order
        before and after, or None (no such order, or in another state: nothing written)."""
        async with self._sessions.begin() as session:
            row = await _row(session, client_id, lock=True)
            if row is None or OrderState(row.state) not in expect:
                return None
            before = live_order_from_row(row)
            _apply(row, change)
            row.updated_at = now_ms()
            await session.flush()
            return before, live_order_from_row(row)


async def _row(session: AsyncSession, client_id: str, *, lock: bool = False) -> LiveOrderRow | None:
    query = select(LiveOrderRow).where(LiveOrderRow.client_id == client_id)
    if lock:
        query = query.with_for_update()  # PostgreSQL; SQLite's BEGIN IMMEDIATE holds the write lock already
    row: LiveOrderRow | None = await session.scalar(query)
    return row


def _apply(row: LiveOrderRow, change: OrderChange) -> None:
    if change.state is not None:
        row.state = str(change.state)
    if change.exchange_id is not None:
        row.exchange_id = change.exchange_id
    if change.filled is not None and change.filled >= row.filled:
        row.filled = change.filled
        if change.average is not None:
            row.average = change.average
        if change.cost is not None:
            row.cost = change.cost
        if change.fees is not None:
            row.fees = dict(change.fees)
    row.attempts += change.attempts
    if change.last_error is not None:
        row.last_error = _clip(change.last_error) or None


def _clip(text: str | None) -> str | None:
    return None if text is None else text[:MAX_LAST_ERROR_CHARS]


def live_order_from_row(row: LiveOrderRow) -> LiveOrder:
    fees: dict[str, Any] = row.fees or {}
    return LiveOrder(client_id=row.client_id, symbol=row.symbol, side=Side(row.side), type=OrderType(row.type),
                     amount=row.amount, price=row.price, decided_ts=row.decided_ts, reason=row.reason, seq=row.seq,
                     intent_id=row.intent_id, state=OrderState(row.state), exchange_id=row.exchange_id,
                     filled=row.filled, average=row.average, cost=row.cost,
                     fees={str(k): float(v) for k, v in fees.items()}, sent_at=row.sent_at,
                     expires_at=row.expires_at, attempts=row.attempts, last_error=row.last_error,
                     created_at=row.created_at, updated_at=row.updated_at)
