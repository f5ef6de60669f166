"""uvicorn as the worker runs it (``ApiServer``): answers over a real socket without Nagle's delay, and stops
within its bounded step with a WebSocket still open."""

from __future__ import annotations

import statistics
import time

from websockets.asyncio.client import connect

from tests.api.rig import ADMIN, ApiRig


async def test_reads_over_the_socket_are_not_held_by_nagle(rig: ApiRig) -> None:
    headers = rig.auth(await rig.chat_token(ADMIN))
    took = []
    for _ in range(30):
        t0 = time.perf_counter()
        assert (await rig.client.get("/api/v1/status", headers=headers)).status_code == 200
        took.append(time.perf_counter() - t0)
    assert statistics.median(took) < 0.015  # a socket without TCP_NODELAY holds each answer ~40 ms


async def test_the_server_stops_within_its_step_with_a_websocket_open(rig: ApiRig) -> None:
    token = await rig.chat_token(ADMIN)
    async with connect(f"ws://127.0.0.1:{rig.server.port}/api/v1/ws", additional_headers=rig.auth(token)) as ws:
        await ws.recv()
        t0 = time.perf_counter()
        await rig.server.stop()
        assert time.perf_counter() - t0 < 3.0  # bot.runtime's STEP_TIMEOUT_S
        assert rig.server.app.state.context.hub.clients == 0
    await rig.server.stop()  # a second stop is a no-op
