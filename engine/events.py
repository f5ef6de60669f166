"""The in-process event bus, and the engine's typed events (defined in the pure ``engine.core.events``).

Events leave the engine two ways: on this bus for anything live, and in the store's outbox
(written in the same transaction as the change they describe) for anything that must reach a
person across a crash or a restart. ``to_payload`` / ``event_from_payload`` are the outbox codec.

A failing subscriber is logged and never stops the publisher.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from engine.core.events import (
    ALERT_KINDS,
    EVENT_TYPES,
    DailySummary,
    EngineEvent,
    EngineStarted,
    EngineStopped,
    FeedRecovered,
    FeedStale,
    ModelDegraded,
    ModelRecovered,
    OrderCancelled,
    OrderFilled,
    PositionClosed,
    PositionOpened,
    ProtectiveExitHit,
    RiskStateChanged,
    TradingPaused,
    event_from_payload,
    to_payload,
)

__all__ = ["ALERT_KINDS", "EVENT_TYPES", "DailySummary", "EngineEvent", "EngineStarted", "EngineStopped", "EventBus",
           "FeedRecovered", "FeedStale", "ModelDegraded", "ModelRecovered", "OrderCancelled", "OrderFilled",
           "PositionClosed", "PositionOpened", "ProtectiveExitHit", "RiskStateChanged", "Subscriber", "TradingPaused",
           "event_from_payload", "to_payload"]

log = structlog.get_logger("engine.events")


Subscriber = Callable[[EngineEvent], Awaitable[None] | None]


class EventBus:
    """In-process publish/subscribe. Async subscribers run as tasks the bus keeps a reference to."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    def publish(self, event: EngineEvent) -> None:
        for subscriber in list(self._subscribers):
            try:
                result = subscriber(event)
            except Exception:
                log.exception("subscriber_failed", subscriber=repr(subscriber), event=type(event).__name__)
                continue
            if result is not None:
                task = asyncio.ensure_future(self._guard(subscriber, event, result))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guard(subscriber: Subscriber, event: EngineEvent, awaitable: Awaitable[None]) -> None:
        try:
            await awaitable
        except Exception:
            log.exception("subscriber_failed", subscriber=repr(subscriber), event=type(event).__name__)

    async def drain(self) -> None:
        """Wait for async subscribers still running (used on shutdown and in tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
