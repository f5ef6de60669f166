"""The engine's events for the WebSocket clients: ``EventHub`` is the bus's one subscriber while any client is
connected; it serialises each event once and puts it in every client's bounded queue without awaiting, so the
engine never waits for a client, and a client whose queue is full is marked too slow (``Subscriber.overflow``).
No FastAPI here: the dashboard's feed can use it as it is."""

from __future__ import annotations

import asyncio
import json

from engine.events import EngineEvent, EventBus, to_payload

QUEUE_SIZE = 256  # messages waiting for one client before it counts as too slow
PING_S = 20.0


def event_message(event: EngineEvent) -> str:
    data = to_payload(event)
    name = data.pop("type")
    return json.dumps({"type": "event", "event": name, "kind": event.kind, "data": data}, separators=(",", ":"))


class Subscriber:
    """One connected client's queue of messages to send."""

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue(size)
        self.overflow = asyncio.Event()

    def offer(self, message: str) -> None:
        """Queue ``message`` without waiting; a full queue marks the client too slow."""
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.overflow.set()


class EventHub:
    """The bus's one subscriber for every WebSocket client; subscribed while at least one client is connected."""

    def __init__(self, bus: EventBus, *, queue_size: int = QUEUE_SIZE, ping_s: float = PING_S) -> None:
        self._bus = bus
        self.queue_size = queue_size
        self.ping_s = ping_s
        self._clients: set[Subscriber] = set()
        self.dropped = 0  # clients dropped as too slow, since start

    @property
    def clients(self) -> int:
        return len(self._clients)

    def attach(self) -> Subscriber:
        client = Subscriber(self.queue_size)
        if not self._clients:
            self._bus.subscribe(self.on_event)
        self._clients.add(client)
        return client

    def detach(self, client: Subscriber) -> None:
        self._clients.discard(client)
        if not self._clients:
            self._bus.unsubscribe(self.on_event)

    def on_event(self, event: EngineEvent) -> None:
        """Called by the bus: never awaits, never raises for a client."""
        message = event_message(event)
        for client in self._clients:
            client.offer(message)
