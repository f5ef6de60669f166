"""Alerts: outbox -> deliveries, once per chat, in order, modes respected, across restarts."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from engine.events import ALERT_KINDS, EngineEvent, EngineStarted, FeedStale, OrderFilled, PositionClosed
from engine.store import Delivery, Store, create_engine
from engine.store.tables import DeliveryRow, OutboxRow
from tests.store import factories as f
from tests.store import queries

A, B, C = 101, -100_200_300_400, 303  # group chats have large negative ids


def _events(n: int, start: int = 0) -> list[EngineEvent]:
    return [f.closed_event(f.T0 + (start + i) * f.MINUTE, pnl=float(start + i)) for i in range(n)]


async def _step_with(store: Store, events: list[EngineEvent], candle: int) -> None:
    assert await store.record_step(f.step(f.T0 + candle * f.MINUTE, events=events))


def _by_chat(deliveries: list[Delivery]) -> dict[int, list[EngineEvent]]:
    out: dict[int, list[EngineEvent]] = {}
    for d in deliveries:
        out.setdefault(d.chat_id, []).append(d.event)
    return out


async def test_each_alert_once_per_chat_in_order_across_restart(db_url: str) -> None:
    store = await Store.open(db_url)
    try:
        await store.upsert_chat(A)
        await store.upsert_chat(B, thread_id=7)
        events = _events(3)
        await _step_with(store, events[:2], candle=0)
        await _step_with(store, events[2:], candle=1)

        pending = await store.pending_deliveries()
        assert _by_chat(pending) == {A: events, B: events}
        assert [d.outbox_id for d in pending] == sorted(d.outbox_id for d in pending)
        assert {d.thread_id for d in pending if d.chat_id == B} == {7}
        assert {(d.kind, d.silent, d.attempts) for d in pending} == {("position_closed", False, 0)}
        assert await store.outbox_backlog() == 6

        for d in pending:
            if d.chat_id == A or d.event == events[0]:
                assert await store.mark_delivered(d.outbox_id, d.chat_id, message_id=1000 + d.outbox_id)
        assert await store.mark_delivered(pending[0].outbox_id, pending[0].chat_id, 1) is False  # once
    finally:
        await store.close()

    restarted = await Store.open(db_url)
    try:
        left = await restarted.pending_deliveries()
        assert _by_chat(left) == {B: events[1:]}
        assert await restarted.outbox_backlog() == 2
        for d in left:
            await restarted.mark_delivered(d.outbox_id, d.chat_id, None)
        assert await restarted.pending_deliveries() == []
        assert await restarted.outbox_backlog() == 0
    finally:
        await restarted.close()


async def test_limit_returns_a_prefix_per_chat(store: Store) -> None:
    await store.upsert_chat(A)
    await store.upsert_chat(B)
    events = _events(5)
    await _step_with(store, events, candle=0)
    first = await store.pending_deliveries(limit=3)
    assert _by_chat(first) == {B: events[:2], A: events[:1]}  # (outbox id, chat id) order; B < A


async def test_modes_on_silent_off(store: Store) -> None:
    await store.upsert_chat(A)
    await store.upsert_chat(B)
    assert await store.alert_modes(A) == dict.fromkeys(ALERT_KINDS, "on")
    await store.set_alert_mode(A, "order_filled", "off")
    await store.set_alert_mode(A, "position_closed", "silent")
    await store.set_alert_mode(A, "position_closed", "silent")  # idempotent
    modes = await store.alert_modes(A)
    assert (modes["order_filled"], modes["position_closed"], modes["lifecycle"]) == ("off", "silent", "on")

    buy = f.fill("o-1")
    filled, closed = f.filled_event(buy), f.closed_event(f.T0 + 2 * f.MINUTE)
    await store.record_step(f.step(f.T0, orders=[f.order("o-1")], fills=[buy], events=[filled, closed]))

    pending = await store.pending_deliveries()
    assert [(d.chat_id, d.event, d.silent) for d in pending if d.chat_id == A] == [(A, closed, True)]
    assert [(d.event, d.silent) for d in pending if d.chat_id == B] == [(filled, False), (closed, False)]


async def test_switching_a_kind_off_drops_its_pending_alerts(store: Store) -> None:
    await store.upsert_chat(A)
    feed = FeedStale(ts=f.T0, symbol=f.SYMBOL, last_candle_ts=None, detail="no candles for 3m")
    started = EngineStarted(ts=f.T0, mode="paper")
    await queries.enqueue_events(store, feed, started)
    await store.set_alert_mode(A, "feed", "off")
    assert [d.event for d in await store.pending_deliveries()] == [started]
    await store.set_alert_mode(A, "feed", "on")  # switching back on does not resurrect old alerts
    assert [d.event for d in await store.pending_deliveries()] == [started]
    new_feed = FeedStale(ts=f.T0 + 1, symbol=f.SYMBOL, last_candle_ts=f.T0, detail="still stale")
    await queries.enqueue_events(store, new_feed)
    assert [d.event for d in await store.pending_deliveries()] == [started, new_feed]


async def test_inactive_chats_are_skipped(store: Store) -> None:
    await store.upsert_chat(A)
    await store.upsert_chat(B)
    await store.upsert_chat(C)
    assert await store.set_chat_active(C, False) is True
    assert await store.set_chat_active(999, False) is False
    assert [c.chat_id for c in await queries.active_chats(store)] == [B, A]  # ordered by chat id
    events = _events(2)
    await _step_with(store, events[:1], candle=0)
    assert {d.chat_id for d in await store.pending_deliveries()} == {A, B}

    await store.set_chat_active(B, False)  # drops B's pending alerts
    assert {d.chat_id for d in await store.pending_deliveries()} == {A}
    await store.upsert_chat(B)  # back, but only for what happens from now on
    await store.upsert_chat(C)
    await _step_with(store, events[1:], candle=1)
    assert _by_chat(await store.pending_deliveries()) == {A: events, B: events[1:], C: events[1:]}


async def test_new_chat_gets_no_backlog(store: Store) -> None:
    await store.upsert_chat(A)
    events = _events(2)
    await _step_with(store, events[:1], candle=0)
    await store.upsert_chat(B)
    await _step_with(store, events[1:], candle=1)
    assert _by_chat(await store.pending_deliveries()) == {A: events, B: events[1:]}


async def test_failures_retry_then_give_up(store: Store) -> None:
    await store.upsert_chat(A)
    events = _events(2)
    await _step_with(store, events, candle=0)
    first, second = await store.pending_deliveries()

    assert await store.mark_failed(first.outbox_id, A, "timed out", final=False)
    retry = await store.pending_deliveries()
    assert [(d.event, d.attempts) for d in retry] == [(events[0], 1), (events[1], 0)]

    assert await store.mark_failed(first.outbox_id, A, "chat not found " * 200, final=True)
    assert [d.event for d in await store.pending_deliveries()] == [events[1]]
    assert await store.mark_failed(first.outbox_id, A, "again", final=True) is False
    assert await store.outbox_backlog() == 1
    assert await store.mark_delivered(second.outbox_id, A, 5)
    assert await store.outbox_backlog() == 0


async def test_undecodable_payload_is_failed_not_returned(store: Store, db_url: str) -> None:
    await store.upsert_chat(A)
    engine = create_engine(db_url)
    try:
        async with engine.begin() as connection:
            outbox_id = (
                await connection.execute(
                    insert(OutboxRow)
                    .values(event_type="Gone", kind="feed", payload={"type": "Gone"}, ts=1, created_at=1)
                    .returning(OutboxRow.id)
                )
            ).scalar_one()
            await connection.execute(
                insert(DeliveryRow).values(
                    outbox_id=outbox_id, chat_id=A, status="pending", attempts=0, created_at=1, updated_at=1
                )
            )
    finally:
        await engine.dispose()
    started = EngineStarted(ts=2, mode="paper")
    await queries.enqueue_events(store, started)
    assert [d.event for d in await store.pending_deliveries()] == [started]
    assert [d.event for d in await store.pending_deliveries()] == [started]
    assert await store.outbox_backlog() == 1


async def test_payload_round_trip_keeps_every_field(store: Store) -> None:
    await store.upsert_chat(A)
    event = OrderFilled(ts=5, order_id="x", symbol="ETHUSDT", side="sell", quantity=1.5, price=2_000.25,
                        fee=0.75, reason="stop_loss", paper=True)  # fmt: skip
    closed = PositionClosed(ts=6, symbol="ETHUSDT", quantity=1.5, entry_price=1.0, exit_price=2.0, pnl=1.5,
                            reason="manual")  # fmt: skip
    ids = await queries.enqueue_events(store, event, closed)
    assert ids == sorted(ids) and len(ids) == 2
    assert [d.event for d in await store.pending_deliveries()] == [event, closed]


async def test_invalid_alert_settings_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="kind"):
        await store.set_alert_mode(A, "weather", "on")
    with pytest.raises(ValueError, match="mode"):
        await store.set_alert_mode(A, "feed", "loud")
    await store.set_alert_mode(A, "feed", "silent")  # an unknown chat is registered on the way
    assert [c.chat_id for c in await queries.active_chats(store)] == [A]
