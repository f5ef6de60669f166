"""Orders and fills: an order is recorded when it is decided, marked filled by its fill (in the same step),
or cancelled by an ``OrderCancelled`` event in the step that reports it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import structlog
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engine.core.types import Fill, OrderRequest, Side
from engine.store.sessions import Repository, stamped
from engine.store.tables import FillRow, OrderRow, now_ms

log = structlog.get_logger("engine.store")

ORDER_STATUSES: tuple[str, ...] = ("pending", "filled", "cancelled", "refused")


class Orders(Repository):
    """Reads of the orders table."""

    async def order_status(self, order_id: str) -> str | None:
        """"pending" | "filled" | "cancelled" | "refused", or None for an unknown order."""
        async with self._sessions.begin() as session:
            return await session.scalar(select(OrderRow.status).where(OrderRow.order_id == order_id))

    async def pending_orders(self) -> list[OrderRequest]:
        """Orders decided but not filled (nor cancelled or refused), oldest first."""
        query = select(OrderRow).where(OrderRow.status == "pending").order_by(OrderRow.id)
        return [order_from_row(row) for row in await self._scalars(query)]


async def write_orders(session: AsyncSession, orders: Iterable[OrderRequest]) -> None:
    unique = {order.order_id: order for order in orders}
    if not unique:
        return
    existing = set(
        await session.scalars(select(OrderRow.order_id).where(OrderRow.order_id.in_(list(unique))))
    )
    new = [order_values(order) for order_id, order in unique.items() if order_id not in existing]
    if existing:
        log.info("orders_already_recorded", order_ids=sorted(existing))
    if new:
        await session.execute(insert(OrderRow), new)


async def cancel_orders(session: AsyncSession, order_ids: list[str]) -> None:
    """Mark the orders an ``OrderCancelled`` event reports as cancelled (only while still pending)."""
    if order_ids:
        await session.execute(
            update(OrderRow)
            .where(OrderRow.order_id.in_(order_ids), OrderRow.status == "pending")
            .values(status="cancelled", updated_at=now_ms())
            .execution_options(synchronize_session=False)
        )


async def write_fills(session: AsyncSession, fills: Iterable[Fill]) -> list[Fill]:
    """Insert fills not recorded yet and mark their orders filled; the fills written."""
    unique = {fill.order_id: fill for fill in fills}
    if not unique:
        return []
    existing = set(await session.scalars(select(FillRow.order_id).where(FillRow.order_id.in_(list(unique)))))
    if existing:
        log.warning("fills_already_recorded", order_ids=sorted(existing))
    new = [fill for order_id, fill in unique.items() if order_id not in existing]
    if not new:
        return []
    await session.execute(insert(FillRow), [fill_values(fill) for fill in new])
    await session.execute(
        update(OrderRow)
        .where(OrderRow.order_id.in_([fill.order_id for fill in new]))
        .values(status="filled", updated_at=now_ms())
        .execution_options(synchronize_session=False)
    )
    return new


def order_values(order: OrderRequest) -> dict[str, Any]:
    return stamped(
        {
            "order_id": order.order_id,
            "symbol": order.symbol,
            "side": str(order.side),
            "reason": order.reason,
            "decided_ts": order.decided_ts,
            "quantity": order.quantity,
            "notional": order.notional,
            "fraction": order.fraction,
            "status": "pending",
        }
    )


def fill_values(fill: Fill) -> dict[str, Any]:
    return stamped(
        {
            "order_id": fill.order_id,
            "symbol": fill.symbol,
            "side": str(fill.side),
            "quantity": fill.quantity,
            "price": fill.price,
            "fee": fill.fee,
            "ts": fill.ts,
            "reason": fill.reason,
        }
    )


def order_from_row(row: OrderRow) -> OrderRequest:
    return OrderRequest(
        order_id=row.order_id,
        symbol=row.symbol,
        side=Side(row.side),
        reason=row.reason,
        decided_ts=row.decided_ts,
        quantity=row.quantity,
        notional=row.notional,
        fraction=row.fraction,
    )


def fill_from_row(row: FillRow) -> Fill:
    return Fill(
        order_id=row.order_id,
        symbol=row.symbol,
        side=Side(row.side),
        quantity=row.quantity,
        price=row.price,
        fee=row.fee,
        ts=row.ts,
        reason=row.reason,
    )
