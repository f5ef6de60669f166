"""The actions through the engine's commands: orders fill at the next candle, refusals are the engine's (409/422/404
with its reason, nothing changed), and an Idempotency-Key never acts twice: sent twice, at once, or after a restart
over the same database."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from httpx import ASGITransport, AsyncClient
from starlette.types import Receive, Scope, Send

from bot.api.errors import CatchAll
from tests.api.rig import ADMIN, ApiRig, running_api
from tests.worker.rig import rows

BUY = {"symbol": "BTCUSDT", "side": "buy", "amount": 500.0}


async def send(rig: ApiRig, token: str, method: str, path: str, body: Any = None, key: str | None = None) -> Any:
    return await rig.client.request(method, f"/api/v1/{path}", json=body, headers=rig.act(token, key))


def url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'agent.db'}"


async def test_a_trade_fills_at_the_next_candle_and_closes(rig: ApiRig) -> None:
    token = await rig.chat_token(ADMIN)
    placed = await send(rig, token, "POST", "trade", {"symbol": "ethusdt", "side": "Buy", "amount": 750,
                                                      "confidence": 0.8})
    assert placed.status_code == 202
    (ack,) = placed.json()["orders"]
    assert (ack["symbol"], ack["side"], ack["amount"], ack["paper"]) == ("ETHUSDT", "buy", 750.0, True)
    assert placed.json()["confidence"] == 0.8
    assert [o["order_id"] for o in (await rig.get("orders", token))["pending"]] == [ack["order_id"]]
    await rig.bot.candle()
    (position,) = (await rig.get("positions", token))["positions"]
    assert position["symbol"] == "ETHUSDT" and position["quantity"] * position["avg_price"] < 750
    closing = await send(rig, token, "POST", "close/ETHUSDT")
    assert closing.status_code == 202 and closing.json()["orders"][0]["side"] == "sell"
    await rig.bot.candle()
    assert (await rig.get("positions", token))["positions"] == []
    assert (await rig.get("trades", token))["total"] == 1


async def test_refusals_are_the_engines_with_their_status_and_change_nothing(rig: ApiRig) -> None:
    token = await rig.chat_token(ADMIN)
    before = await rig.bot.state()
    cases = [
        ("POST", "trade", {"symbol": "BTCUSDT", "side": "sell"}, 409, "no_position"),
        ("POST", "trade", {"symbol": "BTCUSDT", "side": "buy"}, 422, "bad_amount"),
        ("POST", "trade", {"symbol": "BTCUSDT", "side": "buy", "amount": -5}, 422, "bad_amount"),
        ("POST", "trade", {"symbol": "DOGEUSDT", "side": "buy", "amount": 10}, 422, "unknown_symbol"),
        ("POST", "trade", {"symbol": "BTCUSDT", "side": "short", "amount": 10}, 422, "bad_side"),
        ("POST", "trade", {"symbol": "BTCUSDT", "side": "buy", "amount": 10, "leverage": 5}, 422, "invalid_request"),
        ("POST", "trade", {"symbol": "BTCUSDT", "side": "buy", "amount": 10, "confidence": 2}, 422,
         "invalid_request"),
        ("POST", "close/BTCUSDT", None, 409, "no_position"),
        ("POST", "close/DOGEUSDT", None, 404, "unknown_symbol"),
        ("POST", "close-all", None, 409, "no_position"),
        ("PUT", "risk", {"key": "stop_loss_pct", "value": 5}, 422, "bad_risk_value"),
        ("PUT", "risk", {"key": "leverage", "value": 0.1}, 422, "bad_risk_value"),
        ("DELETE", "orders/BTCUSDT-1-manual-buy", None, 404, "unknown_order"),
        ("POST", "resume", None, 200, None),  # nothing to resume: changed false
    ]
    for method, path, body, status, code in cases:
        answer = await send(rig, token, method, path, body)
        assert answer.status_code == status, (path, body, answer.text)
        if code is not None:
            assert set(answer.json()) == {"error", "detail"} and answer.json()["error"] == code, answer.text
    assert "between 0 and 0.99" in (await send(rig, token, "PUT", "risk", {"key": "stop_loss_pct", "value": 5})).text
    assert await rig.bot.state() == before


async def test_pause_resume_risk_and_cancel(rig: ApiRig) -> None:
    token = await rig.chat_token(ADMIN)
    assert (await send(rig, token, "POST", "pause")).json() == {"paused": True, "risk_state": "ACTIVE",
                                                               "changed": True}
    assert (await send(rig, token, "POST", "pause")).json()["changed"] is False
    assert (await rig.get("status", token))["paused"] is True
    assert (await send(rig, token, "POST", "resume")).json() == {"paused": False, "risk_state": "ACTIVE",
                                                                "changed": True}
    changed = await send(rig, token, "PUT", "risk", {"key": "take_profit_pct", "value": 0.2})
    assert changed.status_code == 200 and changed.json()["limits"]["take_profit_pct"] == 0.2
    order_id = (await send(rig, token, "POST", "trade", BUY)).json()["orders"][0]["order_id"]
    pending = await send(rig, token, "POST", "trade", BUY)
    assert (pending.status_code, pending.json()["error"]) == (409, "pending")
    cancelled = await send(rig, token, "DELETE", f"orders/{order_id.lower()}")
    assert cancelled.status_code == 200 and cancelled.json()["cancelled"]["order_id"] == order_id
    again = await send(rig, token, "DELETE", f"orders/{order_id}")
    assert (again.status_code, again.json()["error"]) == (409, "cancelled")
    await rig.bot.candle()
    assert (await rig.get("positions", token))["positions"] == []


async def test_an_action_needs_an_idempotency_key(rig: ApiRig) -> None:
    token = await rig.chat_token(ADMIN)
    before = await rig.bot.state()
    for headers in (rig.auth(token), {**rig.auth(token), "Idempotency-Key": "x" * 129},
                    {**rig.auth(token), "Idempotency-Key": "k\u00e9y".encode("latin-1")}):  # type: ignore[dict-item]
        answer = await rig.client.post("/api/v1/trade", json=BUY, headers=headers)
        assert (answer.status_code, answer.json()["error"]) == (400, "bad_request")
    assert await rig.bot.state() == before


async def test_the_same_key_never_acts_twice(rig: ApiRig) -> None:
    token = await rig.chat_token(ADMIN)
    first = await send(rig, token, "POST", "trade", BUY, key="order-1")
    second = await send(rig, token, "POST", "trade", BUY, key="order-1")
    assert first.status_code == second.status_code == 202 and first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    other = await send(rig, token, "POST", "trade", {**BUY, "amount": 501.0}, key="order-1")
    assert (other.status_code, other.json()["error"]) == (422, "idempotency_key_reused")
    refused = await send(rig, token, "POST", "close/ETHUSDT", key="close-1")  # a refusal is an answer too
    assert (await send(rig, token, "POST", "close/ETHUSDT", key="close-1")).json() == refused.json()
    together = await asyncio.gather(*(send(rig, token, "POST", "pause", key="pause-1") for _ in range(5)))
    assert {a.status_code for a in together} <= {200, 409} and sum(a.status_code == 200 for a in together) >= 1
    assert all(a.json()["changed"] for a in together if a.status_code == 200)  # the one pause, answered again
    assert len((await rig.get("orders", token))["pending"]) == 1
    await rig.bot.candle()
    assert (await rig.get("trades", token))["total"] == 0 and len((await rig.get("positions", token))["positions"]) == 1


async def test_the_same_key_after_a_restart_returns_the_first_answer(tmp_path: Path) -> None:
    async with running_api(tmp_path) as rig:
        token = await rig.chat_token(ADMIN)  # kept (hashed) in the database: valid after the restart
        first = await send(rig, token, "POST", "trade", BUY, key="restart-1")
        assert first.status_code == 202
    async with running_api(tmp_path) as rig:  # a new engine app, API and bot over the same database
        again = await send(rig, token, "POST", "trade", BUY, key="restart-1")
        assert again.status_code == 202 and again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert len((await rig.get("orders", token))["pending"]) == 1  # the first order, restored
        await rig.bot.candle()
        assert len((await rig.get("positions", token))["positions"]) == 1
    assert await rows(url(tmp_path), "SELECT count(*) FROM orders") == [(1,)]
    assert await rows(url(tmp_path), "SELECT count(*) FROM fills") == [(1,)]


async def test_an_unexpected_error_is_a_bare_500_logged_not_shown() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("secret internals at /srv/agent.py line 42")

    async with AsyncClient(transport=ASGITransport(app=CatchAll(broken)), base_url="http://t") as client:
        answer = await client.get("/api/v1/status")
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal", "detail": "internal error; it has been logged"}
