"""One engine step in one transaction: the decision that makes it idempotent, its orders, fills, ledger rows,
trades, positions, alerts, equity snapshot, signal and the core's snapshot, all or nothing."""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from engine.core.types import SignalRecord, StepRecord
from engine.events import OrderCancelled
from engine.store.ledger import replace_positions, write_ledger, write_trades
from engine.store.orders import cancel_orders, write_fills, write_orders
from engine.store.outbox import write_events
from engine.store.sessions import Repository
from engine.store.state import write_core_state
from engine.store.tables import DecisionRow, EquitySnapshotRow, SignalRow

log = structlog.get_logger("engine.store")


class Steps(Repository):
    """Steps and what only they write: decisions and signals."""

    _ledger_started: bool  # True once a step committed here: the ledger is not empty

    async def record_step(self, rec: StepRecord) -> bool:
        """Persist one engine step atomically; False (and nothing written) if its candle was done."""
        try:
            async with self._sessions.begin() as session:
                if rec.candle_ts is not None:
                    # the unique (symbol, candle_ts) key is the idempotency check: a second step for the
                    # same candle fails here, before anything else is written, and rolls back whole
                    await session.execute(insert(DecisionRow).values(symbol=_decision_symbol(rec),
                                                                     candle_ts=rec.candle_ts))
                await _write_step(session, rec, ledger_started=self._ledger_started)
        except IntegrityError:
            if rec.candle_ts is not None and rec.symbol is not None:
                if await self._decision_recorded(rec.symbol, rec.candle_ts):
                    log.info("step_already_recorded", symbol=rec.symbol, candle_ts=rec.candle_ts)
                    return False
            raise
        self._ledger_started = True  # committed: the ledger has its opening deposit from now on
        return True

    async def _decision_recorded(self, symbol: str, candle_ts: int) -> bool:
        async with self._sessions.begin() as session:
            return await _decision_exists(session, symbol, candle_ts)

    async def signals(self, symbol: str | None, limit: int) -> list[SignalRecord]:
        """Signals for ``symbol`` (all symbols when None), newest first."""
        query = select(SignalRow).order_by(SignalRow.ts.desc(), SignalRow.id.desc()).limit(limit)
        if symbol is not None:
            query = query.where(SignalRow.symbol == symbol)
        return [signal_from_row(row) for row in await self._scalars(query)]


def _decision_symbol(rec: StepRecord) -> str:
    if rec.symbol is None:
        raise ValueError("a step with candle_ts needs a symbol")
    return rec.symbol


async def _decision_exists(session: AsyncSession, symbol: str, candle_ts: int) -> bool:
    query = select(DecisionRow.id).where(DecisionRow.symbol == symbol, DecisionRow.candle_ts == candle_ts)
    return (await session.scalar(query)) is not None


async def _write_step(session: AsyncSession, rec: StepRecord, *, ledger_started: bool = False) -> None:
    """One step's rows. Core ``insert``/``update`` statements rather than ORM objects: a step runs per
    candle and symbol, and the unit of work cost more than the SQL (see ``bench/worker.py``)."""
    await write_orders(session, rec.orders)
    fills = await write_fills(session, rec.fills)
    await cancel_orders(session, [e.order_id for e in rec.events if isinstance(e, OrderCancelled)])
    if fills or not ledger_started:
        await write_ledger(session, fills, rec)
    await write_trades(session, rec.trades)
    await replace_positions(session, rec.positions)
    await write_events(session, rec.events)
    await session.execute(insert(EquitySnapshotRow).values(ts=rec.now_ms, equity=rec.equity, cash=rec.cash))
    if rec.signal is not None:
        await session.execute(insert(SignalRow).values(_signal_values(rec.signal)))
    await write_core_state(session, rec.core_state)
    await session.flush()


def _signal_values(signal: SignalRecord) -> dict[str, Any]:
    return {"symbol": signal.symbol, "ts": signal.ts, "action": signal.action, "confidence": signal.confidence,
            "outcome": signal.outcome}


def signal_from_row(row: SignalRow) -> SignalRecord:
    return SignalRecord(
        symbol=row.symbol, ts=row.ts, action=row.action, confidence=row.confidence, outcome=row.outcome
    )
