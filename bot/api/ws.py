"""``/api/v1/ws``: the engine's events as JSON, live, to every authenticated client (the dashboard's feed too).

Server to client, one JSON object per message::

    {"type": "ready", "role": "viewer"}                               once, when the client is subscribed
    {"type": "event", "event": "OrderFilled", "kind": "order_filled", "data": {"ts": ..., "symbol": ...}}
    {"type": "ping", "ts": 1733140800000}                             every ``ping_s``; a client may answer pong
    {"type": "pong"}                                                  the answer to a client's {"type": "ping"}
    {"type": "error", "detail": "..."}                                a message the server did not understand

The token comes in ``Authorization: Bearer`` or, for browsers (which cannot set headers on a WebSocket), ``?token=``;
without a valid one the connection is closed with 1008 (policy violation). The query string is never logged.

The engine never waits for a client (``bot.api.hub.EventHub``: each event is serialised once and put in every
client's bounded queue without awaiting); a client whose queue is full (it does not read, or reads slower than
events come) is dropped (1008, "too slow") and the others go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import structlog
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from bot.api.auth import check, client_address
from bot.api.context import Ctx
from bot.api.errors import ApiError
from bot.api.hub import Subscriber
from bot.handlers.commands import Role

log = structlog.get_logger("bot.api.ws")

router = APIRouter()

CLOSE_TIMEOUT_S = 1.0
POLICY_VIOLATION = 1008


@router.websocket("/ws")
async def events(websocket: WebSocket, context: Ctx) -> None:
    """The engine's events, live (see the module's docstring); a viewer's token suffices."""
    await websocket.accept()
    header = websocket.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    token = credentials.strip() if scheme.lower() == "bearer" else websocket.query_params.get("token")
    address = client_address(websocket.client.host if websocket.client else None)
    try:
        principal = check(context, address, token, Role.VIEWER)
    except ApiError as exc:
        await websocket.close(POLICY_VIOLATION, exc.detail[:120])
        return
    hub = context.hub
    client = hub.attach()
    client.offer(json.dumps({"type": "ready", "role": principal.role.name.lower()}))
    log.info("ws_connected", owner=principal.owner, clients=hub.clients)
    tasks = [asyncio.create_task(_write(websocket, client)), asyncio.create_task(_read(websocket, client)),
             asyncio.create_task(_ping(client, hub.ping_s)), asyncio.create_task(client.overflow.wait())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        hub.detach(client)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if client.overflow.is_set():
        hub.dropped += 1
        log.warning("ws_client_dropped", owner=principal.owner, why="too slow: its queue of events was full")
        with contextlib.suppress(Exception):  # a client that reads nothing may never take the close frame either
            await asyncio.wait_for(websocket.close(POLICY_VIOLATION, "too slow"), CLOSE_TIMEOUT_S)
    log.info("ws_disconnected", owner=principal.owner, clients=hub.clients)


async def _write(websocket: WebSocket, client: Subscriber) -> None:
    while True:
        message = await client.queue.get()
        await websocket.send_text(message)


async def _read(websocket: WebSocket, client: Subscriber) -> None:
    """Answer pings; anything else is told it was not understood. Returns when the client leaves."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            kind = _kind(message.get("text") or "")
            if kind == "ping":
                client.offer('{"type":"pong"}')
            elif kind != "pong":
                client.offer(json.dumps({"type": "error", "detail": 'send {"type": "ping"}; nothing else is '
                                                                    'understood'}))


def _kind(text: str) -> Any:
    try:
        message = json.loads(text)
    except ValueError:
        return None
    return message.get("type") if isinstance(message, dict) else None


async def _ping(client: Subscriber, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        client.offer(json.dumps({"type": "ping", "ts": int(time.time() * 1000)}))
