"""The WebSocket: the engine's events as JSON (a real fill), ping/pong both ways, a client that never reads dropped
while the others get every event and the engine does not wait, and no token closed with 1008."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from engine.events import FeedStale
from tests.api.rig import ADMIN, VIEWER, ApiRig, running_api
from tests.engine.helpers import wait_until


def ws_url(rig: ApiRig, query: str = "") -> str:
    return f"ws://127.0.0.1:{rig.server.port}/api/v1/ws{query}"


async def next_of(ws: ClientConnection, kind: str, timeout: float = 5.0, **match: Any) -> dict[str, Any]:
    """The next message of ``type`` (or event name) ``kind`` whose data has ``match``; others are skipped."""
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await ws.recv())
            if kind in (message["type"], message.get("event")) and all(
                    message.get("data", {}).get(k) == v for k, v in match.items()):
                return dict(message)


async def test_a_fill_arrives_as_json(rig: ApiRig) -> None:
    admin, viewer = await rig.chat_token(ADMIN), await rig.chat_token(VIEWER)
    async with connect(ws_url(rig), additional_headers=rig.auth(admin)) as by_header, \
            connect(ws_url(rig, f"?token={viewer}")) as by_query:
        assert json.loads(await by_header.recv()) == {"type": "ready", "role": "admin"}
        assert json.loads(await by_query.recv()) == {"type": "ready", "role": "viewer"}
        placed = await rig.client.post("/api/v1/trade", json={"symbol": "BTCUSDT", "side": "buy", "amount": 400},
                                       headers=rig.act(admin))
        await rig.bot.candle()
        (position,) = (await rig.get("positions", admin))["positions"]
        for ws in (by_header, by_query):
            fill = await next_of(ws, "OrderFilled")
            assert fill["kind"] == "order_filled"
            assert fill["data"]["order_id"] == placed.json()["orders"][0]["order_id"]
            assert fill["data"]["quantity"] == position["quantity"] and fill["data"]["side"] == "buy"
            opened = await next_of(ws, "PositionOpened", symbol="BTCUSDT")
            assert opened["data"]["price"] == position["avg_price"]
        await rig.client.post("/api/v1/pause", headers=rig.act(admin))
        assert (await next_of(by_query, "TradingPaused"))["data"]["paused"] is True


async def test_ping_pong_both_ways(tmp_path: Path) -> None:
    async with running_api(tmp_path, ping_s=0.2) as rig:
        token = await rig.chat_token(VIEWER)
        async with connect(ws_url(rig), additional_headers=rig.auth(token)) as ws:
            await next_of(ws, "ready")
            await ws.send(json.dumps({"type": "ping"}))
            assert await next_of(ws, "pong") == {"type": "pong"}
            server_ping = await next_of(ws, "ping", timeout=3.0)
            assert isinstance(server_ping["ts"], int)
            await ws.send("not json")
            assert "ping" in (await next_of(ws, "error"))["detail"]
            await ws.send(json.dumps({"type": "pong"}))  # an answer to the server's ping: nothing comes back
            await ws.send(json.dumps({"type": "ping"}))
            assert await next_of(ws, "pong") == {"type": "pong"}


@pytest.mark.parametrize("how", ["none", "wrong header", "wrong query", "viewer of another bot"])
async def test_a_connection_without_a_valid_token_is_closed_1008(rig: ApiRig, how: str) -> None:
    headers, query = {}, ""
    if how == "wrong header":
        headers = rig.auth("tak_" + "y" * 43)
    elif how == "wrong query":
        query = "?token=nope"
    elif how == "viewer of another bot":
        headers = {"Authorization": "Basic dmlld2VyOnB3"}
    async with connect(ws_url(rig, query), additional_headers=headers) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert rig.server.app.state.context.hub.clients == 0


def stale(i: int) -> FeedStale:
    return FeedStale(ts=i, symbol="BTCUSDT", last_candle_ts=i, detail="x" * 4000)


async def test_a_client_that_never_reads_is_dropped_and_the_others_get_every_event(tmp_path: Path) -> None:
    async with running_api(tmp_path, queue_size=8) as rig:
        token = await rig.chat_token(VIEWER)
        hub = rig.server.app.state.context.hub
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # its window fills fast
        raw.connect(("127.0.0.1", rig.server.port))
        raw.setblocking(False)
        async with connect(ws_url(rig), additional_headers=rig.auth(token), sock=raw, max_queue=1,
                           close_timeout=1), \
                connect(ws_url(rig), additional_headers=rig.auth(token)) as fast:
            got: list[int] = []

            async def read_fast() -> None:
                while True:
                    message = json.loads(await fast.recv())
                    if message.get("event") == "FeedStale":
                        got.append(message["data"]["ts"])

            reader = asyncio.create_task(read_fast())
            await wait_until(lambda: hub.clients == 2)
            took: list[float] = []
            sent = 0
            while hub.dropped == 0 and sent < 20_000:
                for _ in range(4):
                    t0 = time.perf_counter()
                    rig.bot.engine.bus.publish(stale(sent))  # what the engine calls after each commit
                    took.append(time.perf_counter() - t0)
                    sent += 1
                await wait_until(lambda n=sent: len(got) == n, timeout=10.0)
            assert hub.dropped == 1 and hub.clients == 1, (sent, hub.dropped)
            for _ in range(5):  # the one left still gets everything (in bursts its queue of 8 holds)
                for _ in range(4):
                    rig.bot.engine.bus.publish(stale(sent))
                    sent += 1
                await wait_until(lambda n=sent: len(got) == n, timeout=10.0)
            assert got == list(range(sent))
            # publishing never waited for a client: a call is microseconds (p99; one call can still lose the CPU to
            # another process on a busy machine, so the slowest is only bounded far below a client's timeouts)
            took.sort()
            assert took[int(0.99 * (len(took) - 1))] < 0.005 and took[-1] < 0.5, (took[-5:], len(took))
            await rig.bot.candle()  # the engine goes on
            reader.cancel()
