"""Deny by default: no token, a wrong token, a viewer acting, a revoked or replaced token, a demoted owner, brute
force (429), CORS off unless configured; each refused with nothing changed, and no token ever in a log line at
DEBUG."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from pydantic import SecretStr
from websockets.asyncio.client import connect

from bot.api.limiter import FailureLimiter
from bot.api.tokens import TokenBook
from bot.handlers.commands import Role
from config.settings import ApiSettings
from engine.logs import NOISY, configure_logging
from engine.store import Store
from tests.api.rig import ADMIN, VIEWER, ApiRig, api_settings, running_api

READS = ["status", "balance", "positions", "trades", "orders", "pnl", "daily", "performance", "risk", "signals",
         "signal/BTCUSDT", "strategy", "models", "health/details", "charts/equity.png", "charts/price/BTCUSDT.png"]
ACTIONS: list[tuple[str, str, Any]] = [
    ("POST", "trade", {"symbol": "BTCUSDT", "side": "buy", "amount": 100}), ("POST", "close/BTCUSDT", None),
    ("POST", "close-all", None), ("POST", "pause", None), ("POST", "resume", None),
    ("PUT", "risk", {"key": "stop_loss_pct", "value": 0.1}), ("DELETE", "orders/BTCUSDT-1-manual-buy", None)]
WRONG = "tak_" + "x" * 43


async def state(rig: ApiRig) -> tuple[object, ...]:
    return await rig.bot.state()


async def test_no_token_and_a_wrong_token_are_401_on_every_route(tmp_path: Path) -> None:
    async with running_api(tmp_path, limiter=FailureLimiter(max_failures=1000)) as rig:
        before = await state(rig)
        for headers in ({}, rig.auth(WRONG), {"Authorization": "Basic YWRtaW46YWRtaW4="}):
            for path in READS:
                answer = await rig.client.get(f"/api/v1/{path}", headers=headers)
                assert answer.status_code == 401, path
                assert answer.json()["error"] == "unauthorized" and answer.headers["www-authenticate"] == "Bearer"
            for method, path, body in ACTIONS:
                answer = await rig.client.request(method, f"/api/v1/{path}", json=body,
                                                  headers={**headers, "Idempotency-Key": "k"})
                assert answer.status_code == 401, path
        assert await state(rig) == before
        assert (await rig.client.get("/api/v1/health")).status_code == 200  # the one open route


async def test_a_viewer_reads_but_may_not_act(rig: ApiRig) -> None:
    token = await rig.chat_token(VIEWER)
    for path in READS:
        assert (await rig.client.get(f"/api/v1/{path}", headers=rig.auth(token))).status_code == 200, path
    before = await state(rig)
    for method, path, body in ACTIONS:
        answer = await rig.client.request(method, f"/api/v1/{path}", json=body, headers=rig.act(token))
        assert (answer.status_code, answer.json()["error"]) == (403, "forbidden"), path
    assert await state(rig) == before


async def test_a_revoked_or_replaced_token_is_refused(rig: ApiRig) -> None:
    first = await rig.chat_token(ADMIN)
    assert (await rig.client.get("/api/v1/status", headers=rig.auth(first))).status_code == 200
    second = await rig.chat_token(ADMIN)  # a new one replaces the first
    assert second != first
    assert (await rig.client.get("/api/v1/status", headers=rig.auth(first))).status_code == 401
    assert (await rig.client.get("/api/v1/status", headers=rig.auth(second))).status_code == 200
    (reply,) = await rig.bot.ask(ADMIN, ADMIN, "/apitoken revoke")
    assert reply.text == "Your HTTP API token is revoked."
    before = await state(rig)
    assert (await rig.client.get("/api/v1/status", headers=rig.auth(second))).status_code == 401
    answer = await rig.client.post("/api/v1/pause", headers=rig.act(second))
    assert answer.status_code == 401
    assert await state(rig) == before
    (again,) = await rig.bot.ask(ADMIN, ADMIN, "/apitoken revoke")
    assert again.text == "You had no HTTP API token."


async def test_tokens_are_given_only_in_a_private_chat(rig: ApiRig) -> None:
    (reply,) = await rig.bot.ask(-100777, ADMIN, "/apitoken", chat_type="group")
    assert "private chat" in (reply.text or "") and "tak_" not in (reply.text or "")
    (stranger,) = await rig.bot.ask(3003, 3003, "/apitoken")
    assert stranger.text == "Not authorised."


async def test_brute_force_is_429_with_retry_after_even_for_a_valid_token(tmp_path: Path) -> None:
    now = [1000.0]
    limiter = FailureLimiter(max_failures=5, window_s=60.0, clock=lambda: now[0])
    async with running_api(tmp_path, limiter=limiter) as rig:
        token = await rig.chat_token(ADMIN)
        before = await state(rig)
        codes = [(await rig.client.get("/api/v1/status", headers=rig.auth(f"{WRONG[:-2]}{i:02d}"))).status_code
                 for i in range(7)]
        assert codes == [401] * 5 + [429] * 2
        limited = await rig.client.post("/api/v1/pause", headers=rig.act(token))
        assert limited.status_code == 429 and limited.json()["error"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert await state(rig) == before
        now[0] += 61.0  # the window passed
        assert (await rig.client.get("/api/v1/status", headers=rig.auth(token))).status_code == 200


async def test_api_tokens_from_the_environment_carry_their_role(tmp_path: Path) -> None:
    admin, viewer = "an-admin-token-0123456789", "a-viewer-token-0123456789"
    settings = api_settings(env_tokens=(("admin", admin), ("viewer", viewer)))
    async with running_api(tmp_path, settings=settings) as rig:
        assert (await rig.client.get("/api/v1/risk", headers=rig.auth(viewer))).status_code == 200
        assert (await rig.client.post("/api/v1/pause", headers=rig.act(viewer))).status_code == 403
        paused = await rig.client.post("/api/v1/pause", headers=rig.act(admin))
        assert paused.status_code == 200 and paused.json() == {"paused": True, "risk_state": "ACTIVE", "changed": True}


async def test_a_chat_token_acts_with_its_owners_role_of_today(store: Store) -> None:
    def book(admins: tuple[int, ...], viewers: tuple[int, ...]) -> TokenBook:
        return TokenBook(store, ApiSettings(admin_ids=admins, viewer_ids=viewers))

    token = await book((7,), ()).issue(7, Role.ADMIN)
    for admins, viewers, role in (((7,), (), Role.ADMIN), ((), (7,), Role.VIEWER), ((), (), None)):
        later = book(admins, viewers)  # a restart with other TELEGRAM_* lists
        await later.load()
        principal = later.authenticate(token)
        assert (principal.role if principal else None) == role
    viewer_token = await book((), (8,)).issue(8, Role.VIEWER)
    promoted = book((8,), ())
    await promoted.load()
    assert promoted.authenticate(viewer_token).role is Role.VIEWER  # type: ignore[union-attr]  # never more


async def test_cors_is_off_unless_origins_are_configured(tmp_path: Path) -> None:
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "authorization"}
    async with running_api(tmp_path / "off") as rig:
        answer = await rig.client.options("/api/v1/status", headers=preflight)
        assert "access-control-allow-origin" not in answer.headers
    async with running_api(tmp_path / "on", settings=api_settings(cors=("https://dash.example",))) as rig:
        ok = await rig.client.options("/api/v1/status", headers={**preflight, "Origin": "https://dash.example"})
        assert ok.headers["access-control-allow-origin"] == "https://dash.example"
        other = await rig.client.options("/api/v1/status", headers=preflight)
        assert "access-control-allow-origin" not in other.headers


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    """The worker's logging set-up at DEBUG, into a buffer; the previous set-up restored afterwards."""
    root = logging.getLogger()
    names = (*NOISY, "uvicorn.error", "websockets.client")
    saved = (root.handlers[:], root.level, {n: logging.getLogger(n).level for n in names})
    stream = io.StringIO()
    configure_logging("DEBUG", "json", stream=stream)
    logging.getLogger("uvicorn.error").setLevel(logging.DEBUG)
    logging.getLogger("websockets.client").setLevel(logging.INFO)  # the test's own client, not the worker
    try:
        yield stream
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)
        structlog.reset_defaults()


async def test_no_token_reaches_a_log_line_at_debug(tmp_path: Path, debug_log: io.StringIO) -> None:
    env_token = "an-env-admin-token-0123456789"
    settings = api_settings(env_tokens=(("admin", env_token),))
    from config.settings import load_settings
    from config.worker import secrets_of  # the worker registers API_TOKENS' values for redaction at start

    configure_logging("DEBUG", "json", stream=debug_log,
                      secrets=secrets_of(load_settings(_env_file=None, api_tokens=SecretStr(f"admin:{env_token}"))))
    async with running_api(tmp_path, settings=settings) as rig:
        chat = await rig.chat_token(ADMIN)
        for token in (chat, env_token, WRONG):
            await rig.client.get("/api/v1/status", headers=rig.auth(token))
            await rig.client.post("/api/v1/pause", headers=rig.act(token))
            async with connect(f"ws://127.0.0.1:{rig.server.port}/api/v1/ws?token={token}") as ws:
                message = json.loads(await ws.recv()) if token != WRONG else None
                assert message is None or message["type"] == "ready"
    text = debug_log.getvalue()
    assert "sendMessage" in text and "/api/v1/ws?token=***" in text  # DEBUG was on: the reply and the path logged
    for token in (chat, env_token, WRONG):
        assert token not in text
