"""The fake exchange speaks Binance's klines dialect (checked over HTTP with aiohttp)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from engine.core.clock import ScaledClock, SimClock
from engine.core.model import CandleArrays
from sim.exchange import FakeExchange, Fault

from .conftest import STEP, SYMBOL, TF


async def get(session: aiohttp.ClientSession, url: str, **params: Any) -> tuple[int, Any]:
    async with session.get(url, params={k: str(v) for k, v in params.items()}) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_klines_default_limit_includes_open_candle(base_url: str, session: aiohttp.ClientSession,
                                                         arrays: CandleArrays, clock: SimClock) -> None:
    status, rows = await get(session, f"{base_url}/api/v3/klines", symbol=SYMBOL, interval=TF)
    assert status == 200 and len(rows) == 500
    assert [r[0] for r in rows] == arrays.ts[1501:2001].tolist()  # last row: the open candle 2000
    closed = rows[-2]
    assert closed[6] == closed[0] + STEP - 1 and isinstance(closed[1], str)
    assert [float(x) for x in closed[1:6]] == [arrays.open[1999], arrays.high[1999], arrays.low[1999],
                                              arrays.close[1999], arrays.volume[1999]]
    live = [float(x) for x in rows[-1][1:6]]  # partial: 2 of 5 minutes, no look-ahead to the final close
    assert live[0] == arrays.open[2000] and live[4] != arrays.close[2000]
    assert live[1] >= max(live[0], live[3]) and live[2] <= min(live[0], live[3])
    assert live[4] == pytest.approx(arrays.volume[2000] * 0.4)


async def test_klines_time_filters_and_limit(base_url: str, session: aiohttp.ClientSession,
                                             arrays: CandleArrays) -> None:
    url = f"{base_url}/api/v3/klines"
    t = arrays.ts.tolist()
    _, rows = await get(session, url, symbol=SYMBOL, interval=TF, startTime=t[10] - 1, endTime=t[20], limit=1000)
    assert [r[0] for r in rows] == t[10:21]  # both ends inclusive, on open time
    _, rows = await get(session, url, symbol=SYMBOL, interval=TF, startTime=t[10], limit=3)
    assert [r[0] for r in rows] == t[10:13]
    _, rows = await get(session, url, symbol=SYMBOL, interval=TF, endTime=t[50], limit=3)
    assert [r[0] for r in rows] == t[48:51]
    _, rows = await get(session, url, symbol=SYMBOL, interval=TF, startTime=t[2500], limit=5)
    assert rows == []  # the future is not served
    _, rows = await get(session, url, symbol=SYMBOL, interval=TF, startTime=t[0], limit=1000)
    assert len(rows) == 1000


@pytest.mark.parametrize(("params", "code"), [
    ({"symbol": "NOPE", "interval": TF}, -1121),
    ({"interval": TF}, -1102),
    ({"symbol": SYMBOL, "interval": "7m"}, -1120),
    ({"symbol": SYMBOL, "interval": TF, "limit": 1001}, -1130),
    ({"symbol": SYMBOL, "interval": TF, "limit": 0}, -1130),
    ({"symbol": SYMBOL, "interval": TF, "startTime": "x"}, -1100),
    ({"symbol": SYMBOL, "interval": TF, "startTime": 10, "endTime": 5}, -1023),
])
async def test_klines_errors_are_binance_style(base_url: str, session: aiohttp.ClientSession,
                                               params: dict[str, Any], code: int) -> None:
    status, body = await get(session, f"{base_url}/api/v3/klines", **params)
    assert status == 400 and body["code"] == code and isinstance(body["msg"], str)
    if code == -1121:
        assert body == {"code": -1121, "msg": "Invalid symbol."}


async def test_time_ping_and_request_count(base_url: str, session: aiohttp.ClientSession, fake: FakeExchange,
                                           clock: SimClock) -> None:
    assert await get(session, f"{base_url}/api/v3/time") == (200, {"serverTime": clock.now_ms()})
    assert await get(session, f"{base_url}/api/v3/ping") == (200, {})
    assert fake.requests == 2 and [p for p, _ in fake.request_log] == ["/api/v3/time", "/api/v3/ping"]


async def test_faults_are_consumed_in_order(base_url: str, session: aiohttp.ClientSession,
                                            fake: FakeExchange) -> None:
    fake.inject(Fault.SERVER_ERROR, times=2, status=502)
    fake.inject(Fault.RATE_LIMIT)
    fake.inject(Fault.MALFORMED_JSON)
    assert fake.pending_faults == 4
    url = f"{base_url}/api/v3/klines"
    params = {"symbol": SYMBOL, "interval": TF, "limit": "3"}
    statuses = []
    for _ in range(5):
        async with session.get(url, params=params) as resp:
            statuses.append((resp.status, resp.headers.get("Retry-After")))
            text = await resp.text()
    assert statuses == [(502, None), (502, None), (429, "3"), (200, None), (200, None)]
    assert text.startswith("[[") and fake.pending_faults == 0


async def test_data_faults_shape_rows(base_url: str, session: aiohttp.ClientSession, fake: FakeExchange,
                                      arrays: CandleArrays) -> None:
    url = f"{base_url}/api/v3/klines"
    params = {"symbol": SYMBOL, "interval": TF, "startTime": int(arrays.ts[0]), "limit": 5}
    ts = arrays.ts[:5].tolist()
    cases = {
        Fault.DUPLICATE: [ts[0], ts[1], ts[1], ts[2], ts[3], ts[4]],
        Fault.OUT_OF_ORDER: [ts[0], ts[2], ts[1], ts[3], ts[4]],
        Fault.GAP: [ts[0], ts[3], ts[4]],
    }
    for fault, expected in cases.items():
        fake.inject(fault, row=1, span=2)
        _, rows = await get(session, url, **params)
        assert [r[0] for r in rows] == expected, fault
    fake.inject(Fault.BAD_CANDLE, row=-1)
    _, rows = await get(session, url, **params)
    assert float(rows[-1][2]) < float(rows[-1][4]) and [r[0] for r in rows] == ts
    fake.inject(Fault.BAD_CANDLE, row=0, nan=True)
    _, rows = await get(session, url, **params)
    assert rows[0][4] == "NaN"


def test_scaled_clock_runs_faster_than_wall_time() -> None:
    wall = [100.0]
    clock = ScaledClock(1_000_000, speed=60, wall=lambda: wall[0])
    assert clock.now_ms() == 1_000_000
    wall[0] += 5  # five wall seconds are five candle minutes
    assert clock.now_ms() == 1_000_000 + 300_000
