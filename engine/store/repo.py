"""The repository: everything the engine and the bot read from and write to the database.

One ``AsyncSession`` per unit of work (``async with self._sessions.begin()``); ORM rows never
leave this module: reads return the dataclasses of ``engine.core.types`` or the small frozen
dataclasses below.

Alerts (outbox -> deliveries) — fan-out at insert time:
    Every event written to the outbox (by ``record_step`` or ``enqueue_events``) gets, in the same
    transaction, one ``deliveries`` row per chat that is active and whose mode for the event's kind
    is not "off" at that moment. A chat therefore receives alerts from the moment it is registered,
    never the backlog from before. ``pending_deliveries`` re-checks chat activity and modes when
    reading (and reads "silent" as ``Delivery.silent``). Switching a kind off, or deactivating a
    chat, drops that chat's pending deliveries (status "failed", last_error says why), so stale
    alerts do not come back later. Deliveries are returned ordered by outbox id, then chat; a
    sender must stop sending to a chat after a non-final failure within a batch, so that a later
    alert never overtakes an earlier one. A delivery is marked only after the send succeeds, so a
    crash between the two can repeat one message (at-least-once at the Telegram edge). Run one
    sender per database. Outbox ids follow commit order as long as one engine writes steps (the
    engine records its steps one at a time); concurrent writers on PostgreSQL could commit a
    higher id first.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import structlog
from sqlalchemy import ColumnElement, Select, delete, func, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from engine.core.types import Fill, OrderRequest, PositionView, Side, SignalRecord, StepRecord, Trade
from engine.events import ALERT_KINDS, EngineEvent, OrderCancelled, event_from_payload, to_payload
from engine.store.db import create_engine, normalize_database_url, redact_url
from engine.store.db import migrate as migrate_database
from engine.store.tables import (
    AlertSettingRow,
    CashLedgerRow,
    ChatRow,
    DecisionRow,
    DeliveryRow,
    EngineStateRow,
    EquitySnapshotRow,
    FillRow,
    OrderRow,
    OutboxRow,
    PositionRow,
    SignalRow,
    TradeRow,
    now_ms,
)

log = structlog.get_logger("engine.store")

ALERT_MODES: tuple[str, ...] = ("on", "silent", "off")
ORDER_STATUSES: tuple[str, ...] = ("pending", "filled", "cancelled", "refused")
STATE_ID = 1
MAX_ERROR_CHARS = 1_000
DEFAULT_SQLITE_PATH = "data/trading.db"


@dataclass(frozen=True, slots=True)
class Flags:
    """Process-level state the engine keeps outside its core-state blob."""

    clean_shutdown: bool
    last_heartbeat_ms: int | None
    paused: bool
    risk_state: str
    halted_reason: str | None


@dataclass(frozen=True, slots=True)
class Chat:
    chat_id: int
    thread_id: int | None
    active: bool
    role: str | None
    notes: str | None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One alert to send to one chat. ``silent``: send without a notification sound."""

    outbox_id: int
    chat_id: int
    thread_id: int | None
    kind: str
    event: EngineEvent
    silent: bool
    attempts: int


def fill_cash_amount(fill: Fill) -> float:
    """Signed change of cash for ``fill``, fee included."""
    gross = fill.quantity * fill.price
    return -gross - fill.fee if fill.side == Side.BUY else gross - fill.fee


class Store:
    """Async repository over one database (SQLite file or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._ledger_started = False  # True once a step committed here: the ledger is not empty

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Open the database at ``url`` (normalized first), migrating it to head unless told not to."""
        url = normalize_database_url(url, DEFAULT_SQLITE_PATH)
        if migrate:
            await migrate_database(url)
        store = cls(create_engine(url))
        log.info("store_opened", url=redact_url(url), backend=store.backend)
        return store

    async def close(self) -> None:
        await self._engine.dispose()

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    async def ping(self) -> float:
        """Round-trip time of a trivial query, in seconds."""
        start = time.perf_counter()
        async with self._engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return time.perf_counter() - start

    # ------------------------------------------------------------------ steps

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

    async def enqueue_events(self, *events: EngineEvent) -> list[int]:
        """Write events outside a step (lifecycle, feed health...) to the outbox; their ids."""
        async with self._sessions.begin() as session:
            return await _write_events(session, events)

    async def load_core_state(self) -> dict[str, Any] | None:
        async with self._sessions.begin() as session:
            state = await session.get(EngineStateRow, STATE_ID)
            return None if state is None or state.core_state is None else dict(state.core_state)

    async def set_flags(
        self,
        *,
        clean_shutdown: bool | None = None,
        heartbeat_ms: int | None = None,
        paused: bool | None = None,
        risk_state: str | None = None,
    ) -> None:
        """Update the given flags only."""
        async with self._sessions.begin() as session:
            state = await _engine_state(session)
            if clean_shutdown is not None:
                state.clean_shutdown = clean_shutdown
            if heartbeat_ms is not None:
                state.last_heartbeat = heartbeat_ms
            if paused is not None:
                state.paused = paused
            if risk_state is not None:
                state.risk_state = risk_state

    async def get_flags(self) -> Flags:
        async with self._sessions.begin() as session:
            state = await _engine_state(session)
            return Flags(
                clean_shutdown=state.clean_shutdown,
                last_heartbeat_ms=state.last_heartbeat,
                paused=state.paused,
                risk_state=state.risk_state,
                halted_reason=state.halted_reason,
            )

    # ------------------------------------------------------------------ reads

    async def trades(self, limit: int, offset: int = 0, symbol: str | None = None) -> list[Trade]:
        """Closed trades, newest exit first."""
        query = select(TradeRow).order_by(TradeRow.exit_time.desc(), TradeRow.id.desc())
        if symbol is not None:
            query = query.where(TradeRow.symbol == symbol)
        rows = await self._scalars(query.limit(limit).offset(offset))
        return [_trade(row) for row in rows]

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
        return [_trade(row) for row in await self._scalars(query)]

    async def fills(self, limit: int) -> list[Fill]:
        """Fills, newest first."""
        query = select(FillRow).order_by(FillRow.ts.desc(), FillRow.id.desc()).limit(limit)
        return [_fill(row) for row in await self._scalars(query)]

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
        return [_position(row) for row in rows]

    async def signals(self, symbol: str | None, limit: int) -> list[SignalRecord]:
        """Signals for ``symbol`` (all symbols when None), newest first."""
        query = select(SignalRow).order_by(SignalRow.ts.desc(), SignalRow.id.desc()).limit(limit)
        if symbol is not None:
            query = query.where(SignalRow.symbol == symbol)
        return [_signal(row) for row in await self._scalars(query)]

    async def order_status(self, order_id: str) -> str | None:
        """"pending" | "filled" | "cancelled" | "refused", or None for an unknown order."""
        async with self._sessions.begin() as session:
            return await session.scalar(select(OrderRow.status).where(OrderRow.order_id == order_id))

    async def set_order_status(self, order_id: str, status: str) -> bool:
        """Mark an order "cancelled" or "refused" (or back to "pending"); False if it is unknown."""
        if status not in ORDER_STATUSES:
            raise ValueError(f"unknown order status {status!r}; expected one of {', '.join(ORDER_STATUSES)}")
        statement = (
            update(OrderRow)
            .where(OrderRow.order_id == order_id)
            .values(status=status, updated_at=now_ms())
            .execution_options(synchronize_session=False)
        )
        async with self._sessions.begin() as session:
            result = await session.execute(statement)
        return bool(getattr(result, "rowcount", 0))

    async def pending_orders(self) -> list[OrderRequest]:
        """Orders decided but not filled (nor cancelled or refused), oldest first."""
        query = select(OrderRow).where(OrderRow.status == "pending").order_by(OrderRow.id)
        return [_order(row) for row in await self._scalars(query)]

    async def ledger_invariants(self) -> dict[str, float]:
        """Figures that must agree after any crash: ledger vs cash, ledger fees vs fill fees.

        ``ledger_sum`` (sum of signed amounts) == ``last_balance`` == ``cash`` (latest equity
        snapshot) and ``ledger_fees`` == ``fill_fees``; ``ledger_fill_rows`` == ``fill_count``.
        """
        async with self._sessions.begin() as session:
            ledger_sum, ledger_fees, fill_rows = (
                await session.execute(
                    select(
                        func.coalesce(func.sum(CashLedgerRow.amount), 0.0),
                        func.coalesce(func.sum(CashLedgerRow.fee), 0.0),
                        func.count(CashLedgerRow.order_id),
                    )
                )
            ).one()
            fill_fees, fill_count = (
                await session.execute(select(func.coalesce(func.sum(FillRow.fee), 0.0), func.count()))
            ).one()
            last_balance = await _last_balance(session)
            cash = await session.scalar(
                select(EquitySnapshotRow.cash).order_by(EquitySnapshotRow.id.desc()).limit(1)
            )
        return {
            "ledger_sum": float(ledger_sum),
            "last_balance": float(last_balance or 0.0),
            "cash": float(cash or 0.0),
            "ledger_fees": float(ledger_fees),
            "fill_fees": float(fill_fees),
            "ledger_fill_rows": float(fill_rows),
            "fill_count": float(fill_count),
        }

    async def _scalars(self, query: Select[Any]) -> Sequence[Any]:
        async with self._sessions.begin() as session:
            return (await session.scalars(query)).all()

    # ------------------------------------------------------------------ chats and alerts

    async def upsert_chat(self, chat_id: int, thread_id: int | None = None) -> None:
        """Register a chat (or re-activate it and update its thread)."""
        async with self._sessions.begin() as session:
            dialect_insert = _insert_for(session)
            now = now_ms()
            statement = dialect_insert(ChatRow).values(
                chat_id=chat_id, thread_id=thread_id, active=True, created_at=now, updated_at=now
            )
            statement = statement.on_conflict_do_update(
                index_elements=[ChatRow.chat_id],
                set_={"thread_id": thread_id, "active": True, "updated_at": now},
            )
            await session.execute(statement)

    async def set_chat_active(self, chat_id: int, active: bool) -> bool:
        """Switch a chat on or off; False if the chat is unknown. Deactivating drops its pending alerts."""
        async with self._sessions.begin() as session:
            chat = await session.get(ChatRow, chat_id)
            if chat is None:
                return False
            chat.active = active
            if not active:
                await _drop_pending(session, DeliveryRow.chat_id == chat_id, "chat deactivated")
            return True

    async def active_chats(self) -> list[Chat]:
        rows = await self._scalars(select(ChatRow).where(ChatRow.active).order_by(ChatRow.chat_id))
        return [Chat(r.chat_id, r.thread_id, r.active, r.role, r.notes) for r in rows]

    async def set_alert_mode(self, chat_id: int, kind: str, mode: str) -> None:
        """Set ``mode`` ("on" | "silent" | "off") for alerts of ``kind`` in a chat (registered if new)."""
        if kind not in ALERT_KINDS:
            raise ValueError(f"unknown alert kind {kind!r}; expected one of {', '.join(ALERT_KINDS)}")
        if mode not in ALERT_MODES:
            raise ValueError(f"unknown alert mode {mode!r}; expected one of {', '.join(ALERT_MODES)}")
        async with self._sessions.begin() as session:
            dialect_insert = _insert_for(session)
            now = now_ms()
            await session.execute(
                dialect_insert(ChatRow)
                .values(chat_id=chat_id, active=True, created_at=now, updated_at=now)
                .on_conflict_do_nothing(index_elements=[ChatRow.chat_id])
            )
            await session.execute(
                dialect_insert(AlertSettingRow)
                .values(chat_id=chat_id, kind=kind, mode=mode, created_at=now, updated_at=now)
                .on_conflict_do_update(
                    index_elements=[AlertSettingRow.chat_id, AlertSettingRow.kind],
                    set_={"mode": mode, "updated_at": now},
                )
            )
            if mode == "off":
                of_kind = select(OutboxRow.id).where(OutboxRow.kind == kind)
                pending_of_kind = DeliveryRow.outbox_id.in_(of_kind)
                await _drop_pending(
                    session, (DeliveryRow.chat_id == chat_id) & pending_of_kind, f"{kind} alerts switched off"
                )

    async def alert_modes(self, chat_id: int) -> dict[str, str]:
        """Mode of every alert kind for a chat ("on" unless set otherwise)."""
        query = select(AlertSettingRow.kind, AlertSettingRow.mode).where(AlertSettingRow.chat_id == chat_id)
        async with self._sessions.begin() as session:
            rows = (await session.execute(query)).all()
        modes = dict.fromkeys(ALERT_KINDS, "on")
        modes.update({kind: mode for kind, mode in rows if kind in modes})
        return modes

    async def pending_deliveries(self, limit: int = 100, *, kind: str | None = None) -> list[Delivery]:
        """Undelivered alerts for active chats, ordered by outbox id (so in order per chat); only those of one
        alert type with ``kind``."""
        mode = AlertSettingRow.mode
        query = (
            select(
                DeliveryRow.outbox_id,
                DeliveryRow.chat_id,
                DeliveryRow.attempts,
                ChatRow.thread_id,
                OutboxRow.kind,
                OutboxRow.payload,
                mode,
            )
            .join(ChatRow, ChatRow.chat_id == DeliveryRow.chat_id)
            .join(OutboxRow, OutboxRow.id == DeliveryRow.outbox_id)
            .outerjoin(
                AlertSettingRow,
                (AlertSettingRow.chat_id == DeliveryRow.chat_id) & (AlertSettingRow.kind == OutboxRow.kind),
            )
            .where(_deliverable() if kind is None else _deliverable() & (OutboxRow.kind == kind))
            .order_by(DeliveryRow.outbox_id, DeliveryRow.chat_id)
            .limit(limit)
        )
        async with self._sessions.begin() as session:
            rows = (await session.execute(query)).all()
        deliveries: list[Delivery] = []
        for outbox_id, chat_id, attempts, thread_id, kind, payload, chat_mode in rows:
            try:
                event = event_from_payload(payload)
            except (KeyError, TypeError) as exc:
                log.error("outbox_payload_undecodable", outbox_id=outbox_id, error=repr(exc))
                await self.mark_failed(outbox_id, chat_id, f"undecodable payload: {exc!r}", final=True)
                continue
            deliveries.append(
                Delivery(outbox_id, chat_id, thread_id, kind, event, chat_mode == "silent", attempts)
            )
        return deliveries

    async def mark_delivered(self, outbox_id: int, chat_id: int, message_id: int | None) -> bool:
        """Record a successful send; False if there was no pending delivery (already marked)."""
        now = now_ms()
        return await self._update_pending(
            outbox_id,
            chat_id,
            status="delivered",
            delivered_at=now,
            message_id=message_id,
            attempts=DeliveryRow.attempts + 1,
            updated_at=now,
        )

    async def mark_failed(self, outbox_id: int, chat_id: int, error: str, final: bool) -> bool:
        """Record a failed send; ``final`` gives up on it (it is skipped from then on)."""
        values: dict[str, Any] = {
            "last_error": error[:MAX_ERROR_CHARS],
            "attempts": DeliveryRow.attempts + 1,
            "updated_at": now_ms(),
        }
        if final:
            values["status"] = "failed"
        log.warning("delivery_failed", outbox_id=outbox_id, chat_id=chat_id, error=error, final=final)
        return await self._update_pending(outbox_id, chat_id, **values)

    async def _update_pending(self, outbox_id: int, chat_id: int, **values: Any) -> bool:
        statement = (
            update(DeliveryRow)
            .where(
                DeliveryRow.outbox_id == outbox_id,
                DeliveryRow.chat_id == chat_id,
                DeliveryRow.status == "pending",
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        async with self._sessions.begin() as session:
            result = await session.execute(statement)
        return bool(getattr(result, "rowcount", 0))

    async def outbox_backlog(self) -> int:
        """Number of alerts still waiting to be delivered to active chats."""
        query = (
            select(func.count())
            .select_from(DeliveryRow)
            .join(ChatRow, ChatRow.chat_id == DeliveryRow.chat_id)
            .join(OutboxRow, OutboxRow.id == DeliveryRow.outbox_id)
            .outerjoin(
                AlertSettingRow,
                (AlertSettingRow.chat_id == DeliveryRow.chat_id) & (AlertSettingRow.kind == OutboxRow.kind),
            )
            .where(_deliverable())
        )
        async with self._sessions.begin() as session:
            return int(await session.scalar(query) or 0)


# ---------------------------------------------------------------------- step writing


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
    await _write_orders(session, rec.orders)
    fills = await _write_fills(session, rec.fills)
    await _cancel_orders(session, [e.order_id for e in rec.events if isinstance(e, OrderCancelled)])
    if fills or not ledger_started:
        await _write_ledger(session, fills, rec)
    await _write_trades(session, rec.trades)
    await _replace_positions(session, rec.positions)
    await _write_events(session, rec.events)
    await session.execute(insert(EquitySnapshotRow).values(ts=rec.now_ms, equity=rec.equity, cash=rec.cash))
    if rec.signal is not None:
        await session.execute(insert(SignalRow).values(_signal_values(rec.signal)))
    await _write_core_state(session, rec.core_state)
    await session.flush()


async def _write_orders(session: AsyncSession, orders: Iterable[OrderRequest]) -> None:
    unique = {order.order_id: order for order in orders}
    if not unique:
        return
    existing = set(
        await session.scalars(select(OrderRow.order_id).where(OrderRow.order_id.in_(list(unique))))
    )
    new = [_order_values(order) for order_id, order in unique.items() if order_id not in existing]
    if existing:
        log.info("orders_already_recorded", order_ids=sorted(existing))
    if new:
        await session.execute(insert(OrderRow), new)


async def _cancel_orders(session: AsyncSession, order_ids: list[str]) -> None:
    """Mark the orders an ``OrderCancelled`` event reports as cancelled (only while still pending)."""
    if order_ids:
        await session.execute(
            update(OrderRow)
            .where(OrderRow.order_id.in_(order_ids), OrderRow.status == "pending")
            .values(status="cancelled", updated_at=now_ms())
            .execution_options(synchronize_session=False)
        )


async def _write_fills(session: AsyncSession, fills: Iterable[Fill]) -> list[Fill]:
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
    await session.execute(insert(FillRow), [_fill_values(fill) for fill in new])
    await session.execute(
        update(OrderRow)
        .where(OrderRow.order_id.in_([fill.order_id for fill in new]))
        .values(status="filled", updated_at=now_ms())
        .execution_options(synchronize_session=False)
    )
    return new


async def _last_balance(session: AsyncSession) -> float | None:
    query = select(CashLedgerRow.balance_after).order_by(CashLedgerRow.id.desc()).limit(1)
    balance = await session.scalar(query)
    return None if balance is None else float(balance)


async def _write_ledger(session: AsyncSession, fills: Sequence[Fill], rec: StepRecord) -> None:
    """One ledger row per fill; on an empty ledger first an opening deposit that makes it match cash."""
    amounts = [fill_cash_amount(fill) for fill in fills]
    balance = await _last_balance(session)
    rows: list[dict[str, Any]] = []
    if balance is None:
        balance = rec.cash - sum(amounts)
        rows.append(_ledger_values(rec.now_ms, "deposit", balance, 0.0, None, balance))
    for fill, amount in zip(fills, amounts, strict=True):
        balance += amount
        rows.append(_ledger_values(fill.ts, "fill", amount, fill.fee, fill.order_id, balance))
    if rows:
        await session.execute(insert(CashLedgerRow), rows)


async def _write_trades(session: AsyncSession, trades: Sequence[Trade]) -> None:
    if trades:
        await session.execute(insert(TradeRow), [_trade_values(trade) for trade in trades])


async def _replace_positions(session: AsyncSession, positions: Sequence[PositionView]) -> None:
    await session.execute(delete(PositionRow).execution_options(synchronize_session=False))
    if positions:
        await session.execute(insert(PositionRow), [_position_values(p) for p in positions])


async def _write_events(session: AsyncSession, events: Iterable[object]) -> list[int]:
    """Outbox rows for ``events`` and their deliveries to the chats that want them; the outbox ids."""
    events = list(events)
    if not events:
        return []
    recipients = await _recipients(session)
    ids: list[int] = []
    for event in events:
        if not isinstance(event, EngineEvent):
            raise TypeError(f"not an EngineEvent: {event!r}")
        kind = type(event).kind
        outbox_id = await session.scalar(
            insert(OutboxRow)
            .values(
                event_type=type(event).__name__,
                kind=kind,
                payload=to_payload(event),
                ts=event.ts,
                created_at=now_ms(),
            )
            .returning(OutboxRow.id)
        )
        assert outbox_id is not None
        ids.append(int(outbox_id))
        chats = [chat_id for chat_id, modes in recipients.items() if modes.get(kind, "on") != "off"]
        if chats:
            await session.execute(
                insert(DeliveryRow), [_delivery_values(int(outbox_id), chat) for chat in chats]
            )
    return ids


async def _recipients(session: AsyncSession) -> dict[int, dict[str, str]]:
    """Active chats and their explicit alert modes."""
    query = (
        select(ChatRow.chat_id, AlertSettingRow.kind, AlertSettingRow.mode)
        .outerjoin(AlertSettingRow, AlertSettingRow.chat_id == ChatRow.chat_id)
        .where(ChatRow.active)
    )
    recipients: dict[int, dict[str, str]] = {}
    for chat_id, kind, mode in (await session.execute(query)).all():
        modes = recipients.setdefault(int(chat_id), {})
        if kind is not None:
            modes[kind] = mode
    return recipients


async def _engine_state(session: AsyncSession) -> EngineStateRow:
    state = await session.get(EngineStateRow, STATE_ID)
    if state is None:
        state = EngineStateRow(id=STATE_ID, paused=False, risk_state="ACTIVE", clean_shutdown=True)
        session.add(state)
    return state


async def _write_core_state(session: AsyncSession, core_state: dict[str, object]) -> None:
    """Store the blob; mirror its "paused" / "risk_state" / "halted_reason" keys when present.

    One UPDATE of the single row; the ORM path (read, then write) only when the row does not exist yet."""
    values: dict[str, object] = {"core_state": dict(core_state)}
    if isinstance(core_state.get("paused"), bool):
        values["paused"] = core_state["paused"]
    if isinstance(core_state.get("risk_state"), str):
        values["risk_state"] = core_state["risk_state"]
    if "halted_reason" in core_state:
        reason = core_state["halted_reason"]
        values["halted_reason"] = reason if isinstance(reason, str) else None
    result = await session.execute(update(EngineStateRow).where(EngineStateRow.id == STATE_ID).values(values)
                                   .execution_options(synchronize_session=False))
    if cast(CursorResult[Any], result).rowcount == 1:
        return
    state = await _engine_state(session)
    for column, value in values.items():
        setattr(state, column, value)


def _deliverable() -> ColumnElement[bool]:
    return (
        (DeliveryRow.status == "pending")
        & ChatRow.active
        & or_(AlertSettingRow.mode.is_(None), AlertSettingRow.mode != "off")
    )


async def _drop_pending(session: AsyncSession, condition: ColumnElement[bool], why: str) -> None:
    await session.execute(
        update(DeliveryRow)
        .where(condition, DeliveryRow.status == "pending")
        .values(status="failed", last_error=why, updated_at=now_ms())
        .execution_options(synchronize_session=False)
    )


def _insert_for(session: AsyncSession) -> Any:
    """The dialect's INSERT (both SQLite and PostgreSQL support ON CONFLICT)."""
    return sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert


# ---------------------------------------------------------------------- row <-> value mapping


def _stamped(values: dict[str, Any]) -> dict[str, Any]:
    now = now_ms()
    return {**values, "created_at": now, "updated_at": now}


def _order_values(order: OrderRequest) -> dict[str, Any]:
    return _stamped(
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


def _fill_values(fill: Fill) -> dict[str, Any]:
    return _stamped(
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


def _ledger_values(
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


def _trade_values(trade: Trade) -> dict[str, Any]:
    return _stamped(
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
        }
    )


def _position_values(position: PositionView) -> dict[str, Any]:
    return _stamped(
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


def _delivery_values(outbox_id: int, chat_id: int) -> dict[str, Any]:
    return _stamped({"outbox_id": outbox_id, "chat_id": chat_id, "status": "pending", "attempts": 0})


def _signal_values(signal: SignalRecord) -> dict[str, Any]:
    return {"symbol": signal.symbol, "ts": signal.ts, "action": signal.action, "confidence": signal.confidence,
            "outcome": signal.outcome}


def _order(row: OrderRow) -> OrderRequest:
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


def _trade(row: TradeRow) -> Trade:
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
    )


def _fill(row: FillRow) -> Fill:
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


def _position(row: PositionRow) -> PositionView:
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


def _signal(row: SignalRow) -> SignalRecord:
    return SignalRecord(
        symbol=row.symbol, ts=row.ts, action=row.action, confidence=row.confidence, outcome=row.outcome
    )
