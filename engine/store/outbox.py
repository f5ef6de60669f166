"""Chats, their alert settings, and the alerts to send them (outbox -> deliveries).

Fan-out at insert time:
    Every event written to the outbox (by ``record_step``) gets, in the same transaction, one ``deliveries``
    row per chat that is active and whose mode for the event's kind is not "off" at that moment. A chat
    therefore receives alerts from the moment it is registered, never the backlog from before.
    ``pending_deliveries`` re-checks chat activity and modes when reading (and reads "silent" as
    ``Delivery.silent``). Switching a kind off, or deactivating a chat, drops that chat's pending
    deliveries (status "failed", last_error says why), so stale alerts do not come back later. Deliveries
    are returned ordered by outbox id, then chat; a sender must stop sending to a chat after a non-final
    failure within a batch, so that a later alert never overtakes an earlier one. A delivery is marked
    only after the send succeeds, so a crash between the two can repeat one message (at-least-once at the
    Telegram edge). Run one sender per database. Outbox ids follow commit order as long as one engine
    writes steps (the engine records its steps one at a time); concurrent writers on PostgreSQL could
    commit a higher id first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import ColumnElement, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engine.events import ALERT_KINDS, EngineEvent, event_from_payload, to_payload
from engine.store.sessions import Repository, insert_for, stamped
from engine.store.tables import AlertSettingRow, ChatRow, DeliveryRow, OutboxRow, now_ms

log = structlog.get_logger("engine.store")

ALERT_MODES: tuple[str, ...] = ("on", "silent", "off")
MAX_ERROR_CHARS = 1_000


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


class Outbox(Repository):
    """Chats, alert modes and deliveries."""

    async def upsert_chat(self, chat_id: int, thread_id: int | None = None) -> None:
        """Register a chat (or re-activate it and update its thread)."""
        async with self._sessions.begin() as session:
            dialect_insert = insert_for(session)
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
                await drop_pending(session, DeliveryRow.chat_id == chat_id, "chat deactivated")
            return True

    async def set_alert_mode(self, chat_id: int, kind: str, mode: str) -> None:
        """Set ``mode`` ("on" | "silent" | "off") for alerts of ``kind`` in a chat (registered if new)."""
        if kind not in ALERT_KINDS:
            raise ValueError(f"unknown alert kind {kind!r}; expected one of {', '.join(ALERT_KINDS)}")
        if mode not in ALERT_MODES:
            raise ValueError(f"unknown alert mode {mode!r}; expected one of {', '.join(ALERT_MODES)}")
        async with self._sessions.begin() as session:
            dialect_insert = insert_for(session)
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
                await drop_pending(
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
            .where(deliverable() if kind is None else deliverable() & (OutboxRow.kind == kind))
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
            .where(deliverable())
        )
        async with self._sessions.begin() as session:
            return int(await session.scalar(query) or 0)


async def write_events(session: AsyncSession, events: Iterable[object]) -> list[int]:
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
                insert(DeliveryRow), [delivery_values(int(outbox_id), chat) for chat in chats]
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


def deliverable() -> ColumnElement[bool]:
    return (
        (DeliveryRow.status == "pending")
        & ChatRow.active
        & or_(AlertSettingRow.mode.is_(None), AlertSettingRow.mode != "off")
    )


async def drop_pending(session: AsyncSession, condition: ColumnElement[bool], why: str) -> None:
    await session.execute(
        update(DeliveryRow)
        .where(condition, DeliveryRow.status == "pending")
        .values(status="failed", last_error=why, updated_at=now_ms())
        .execution_options(synchronize_session=False)
    )


def delivery_values(outbox_id: int, chat_id: int) -> dict[str, Any]:
    return stamped({"outbox_id": outbox_id, "chat_id": chat_id, "status": "pending", "attempts": 0})
