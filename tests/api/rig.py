"""The HTTP API over the real worker pieces, in-process: the engine and the PTB bot on the Bot API emulator exactly as
``tests.bot.harness.running_bot`` builds them, plus the worker's ``ApiServer`` (real uvicorn, a free port) over the
same facade, bus and store, and an ``httpx.AsyncClient`` talking to it through the socket.

    async with running_api(tmp_path) as r:
        token = await r.chat_token(ADMIN)                    # /apitoken in the admin's private chat
        answer = await r.client.post("/api/v1/trade", json={...}, headers=r.act(token))
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bot.api.hub import EventHub
from bot.api.limiter import FailureLimiter
from bot.api.server import ApiServer
from bot.api.tokens import TokenBook
from bot.app import build_application
from config.settings import ApiSettings, Settings
from engine.app import build
from engine.core.clock import LiveClock, SimClock
from engine.feeds.synthetic import DEFAULT_START_MS
from sim.botapi import BotApiEmulator
from tests.bot.harness import (
    ADMIN,
    ADMIN2,
    BOT_USERNAME,
    STEP_MS,
    SYMBOLS,
    TOKEN,
    VIEWER,
    WARMUP,
    Harness,
    make_feeds,
    trading_config,
)
from tests.engine.helpers import wait_until

__all__ = ["ADMIN", "ADMIN2", "SYMBOLS", "VIEWER", "ApiRig", "running_api"]

TOKEN_RE = re.compile(r"tak_[A-Za-z0-9_-]{43}")


@dataclass
class ApiRig:
    bot: Harness
    server: ApiServer
    tokens: TokenBook
    client: httpx.AsyncClient

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    async def chat_token(self, user_id: int) -> str:
        """``/apitoken`` in ``user_id``'s private chat; the token the bot showed."""
        (reply,) = await self.bot.ask(user_id, user_id, "/apitoken")
        found = TOKEN_RE.search(reply.text or "")
        assert found, reply.text
        return found.group(0)

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    @staticmethod
    def act(token: str, key: str | None = None) -> dict[str, str]:
        """Headers of an action: the token and an Idempotency-Key (a new one unless given)."""
        return {"Authorization": f"Bearer {token}", "Idempotency-Key": key or str(uuid.uuid4())}

    async def get(self, path: str, token: str, **params: Any) -> Any:
        answer = await self.client.get(f"/api/v1/{path}", headers=self.auth(token), params=params)
        assert answer.status_code == 200, (path, answer.status_code, answer.text)
        return answer.json()


def api_settings(*, env_tokens: tuple[tuple[str, str], ...] = (), cors: tuple[str, ...] = (),
                 admins: tuple[int, ...] = (ADMIN, ADMIN2), viewers: tuple[int, ...] = (VIEWER,)) -> ApiSettings:
    from pydantic import SecretStr

    tokens = SecretStr(",".join(f"{r}:{t}" for r, t in env_tokens)) if env_tokens else None
    return ApiSettings(enabled=True, host="127.0.0.1", port=0, tokens=tokens, cors_origins=cors, admin_ids=admins,
                       viewer_ids=viewers)


@asynccontextmanager
async def running_api(tmp_path: Path, *, symbols: tuple[str, ...] = SYMBOLS, settings: ApiSettings | None = None,
                      limiter: FailureLimiter | None = None, queue_size: int | None = None,
                      ping_s: float | None = None, admins: tuple[int, ...] = (ADMIN, ADMIN2),
                      viewers: tuple[int, ...] = (VIEWER,)) -> AsyncIterator[ApiRig]:
    """The whole stack (the SMA windows never cross: no automatic trades) with the API listening on a free port."""
    env = Settings(_env_file=None, telegram_bot_token=TOKEN, telegram_admin_ids=list(admins),
                   telegram_viewer_ids=list(viewers), sqlite_path=tmp_path / "agent.db",
                   models_dir=tmp_path / "models")
    clock = SimClock(DEFAULT_START_MS + WARMUP * STEP_MS)
    engine_app = await build(env, trading_config(symbols, 400, 500, history=505), clock=clock,
                             feeds=make_feeds("synthetic", symbols, clock), poll_interval=3600.0,
                             heartbeat_interval=3600.0)
    settings = settings or api_settings(admins=admins, viewers=viewers)
    tokens = TokenBook(engine_app.store, settings)
    hub = EventHub(engine_app.bus, **{k: v for k, v in (("queue_size", queue_size), ("ping_s", ping_s))
                                      if v is not None})
    server = ApiServer(engine_app.facade, settings, tokens=tokens, idempotency=engine_app.store,
                       bus=engine_app.bus, limiter=limiter, hub=hub)
    emu = BotApiEmulator(token=TOKEN, bot_username=BOT_USERNAME)
    async with emu.run() as url:
        await engine_app.start()
        await server.start()
        wall = SimClock(LiveClock().now_ms())
        app = build_application(engine_app.facade, env.telegram, base_url=f"{url}/bot",
                                base_file_url=f"{url}/file/bot", rate_limiter=False, concurrent_updates=8,
                                clock=wall.now_ms, tokens=tokens)
        harness = Harness(emu, engine_app, app, clock, wall)
        await wait_until(lambda: all(st.warmed for st in engine_app.engine.symbols.values()))
        await app.initialize()
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.0, timeout=1)
        # 60 s: the first order of a fresh checkout compiles the decision kernel (numba, no cache yet) in the request
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=60.0)
        try:
            yield ApiRig(harness, server, tokens, client)
        finally:
            await client.aclose()
            await app.updater.stop()
            await server.stop()
            await app.stop()
            await app.shutdown()
            await engine_app.stop()
