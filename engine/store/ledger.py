"""Positions and the money: the cash ledger (one row per fill, after an opening deposit), closed trades, the
open positions after each step, and the equity snapshots."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.core.types import Fill, PositionView, Side, StepRecord, Trade
from engine.store.sessions import Repository, stamped
from engine.store.tables import CashLedgerRow, EquitySnapshotRow, PositionRow, TradeRow, now_ms


def fill_cash_amount(fill: Fill) -> float:
    """Signed change of cash for ``fill``, fee included."""
    gross = fill.quantity * fill.price
    return -gross - fill.fee if fill.side == Side.BUY else gross - fill.fee


class Ledger(Repository):
    """Reads of trades, positions and equity."""

    async def trades(self, limit: int, offset: int = 0, symbol: str | None = None) -> list[Trade]:
        """Closed trades, newest exit first."""
        query = select(TradeRow).order_by(TradeRow.exit_time.desc(), TradeRow.id.desc())
        if symbol is not None:
            query = query.where(TradeRow.symbol == symbol)
        rows = await self._scalars(query.limit(limit).offset(offset))
        return [trade_from_row(row) for row in rows]

    async def trade_count(self, symbol: str | None = None) -> int:
        query = select(func.count()).select_from(TradeRow)
        if symbol is not None:
            query = query.where(TradeRow.symbol == symbol)
        async with self._sessions.begin() as session:
            return int(await session.scalar(query) or 0)

    async def trades_between(self, start_ms: int, end_ms: int) -> list[Trade]:
        """Trades that closed in ``[start_ms, end_ms)``, oldest first."""
        query = (
            select(TradeRow)
            .where(TradeRow.exit_time >= start_ms, TradeRow.exit_time < end_ms)
            .order_by(TradeRow.exit_time, TradeRow.id)
        )
        return [trade_from_row(row) for row in await self._scalars(query)]

    async def equity_series(self, since_ms: int | None = None) -> list[tuple[int, float]]:
        """(ts, equity) snapshots, oldest first."""
        query = select(EquitySnapshotRow.ts, EquitySnapshotRow.equity).order_by(
            EquitySnapshotRow.ts, EquitySnapshotRow.id
        )
        if since_ms is not None:
            query = query.where(EquitySnapshotRow.ts >= since_ms)
        async with self._sessions.begin() as session:
            return [(int(ts), float(equity)) for ts, equity in (await session.execute(query)).all()]

    async def first_equity_ts(self) -> int | None:
        """The time of the oldest equity snapshot (the agent's first decided candle); None before it."""
        async with self._sessions.begin() as session:
            value = (await session.execute(select(func.min(EquitySnapshotRow.ts)))).scalar_one_or_none()
        return None if value is None else int(value)

    async def equity_before(self, ts_ms: int, *, inclusive: bool = False) -> float | None:
        """The last equity snapshot before ``ts_ms`` (or at it, when ``inclusive``); None if there is none."""
        cond = EquitySnapshotRow.ts <= ts_ms if inclusive else EquitySnapshotRow.ts < ts_ms
        query = (select(EquitySnapshotRow.equity).where(cond)
                 .order_by(EquitySnapshotRow.ts.desc(), EquitySnapshotRow.id.desc()).limit(1))
        async with self._sessions.begin() as session:
            value = (await session.execute(query)).scalar_one_or_none()
        return None if value is None else float(value)

    async def positions(self) -> list[PositionView]:
        rows = await self._scalars(select(PositionRow).order_by(PositionRow.symbol))
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
    if trades:
        await session.execute(insert(TradeRow), [trade_values(trade) for trade in trades])


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


def trade_from_row(row: TradeRow) -> Trade:
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
