"""One port: ``python -m bot`` with PORT, WEBHOOK_URL, WEBHOOK_SECRET and API_ENABLED=1 serves the HTTP API and
Telegram's webhook from the same uvicorn server. setWebhook is called with the URL and the secret; the update the
emulator holds for the webhook, posted as Telegram posts it, reaches the bot through the shared port and is answered;
/api/v1/health answers on that port; a call without the secret (or a wrong one) is 403 and changes nothing."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from sim.botapi import BotApiEmulator
from tests.api.test_worker import env_for
from tests.worker.rig import ADMIN, TOKEN, Worker, free_port

SECRET = "one-port-secret-0123456789"
HEADER = "X-Telegram-Bot-Api-Secret-Token"


@pytest.fixture
async def emu() -> AsyncIterator[BotApiEmulator]:
    emulator = BotApiEmulator(token=TOKEN)
    async with emulator.run():
        yield emulator


@pytest.mark.timeout(90)
async def test_the_api_and_the_webhook_share_port(tmp_path: Path, emu: BotApiEmulator) -> None:
    port = free_port()
    hook = f"http://127.0.0.1:{port}/telegram/hook-path"
    env = env_for(tmp_path, emu.base_url, PORT=str(port), WEBHOOK_URL=hook, WEBHOOK_SECRET=SECRET, API_ENABLED="1")
    worker = await Worker.start(env, tmp_path)
    try:
        listening = await worker.wait_for("api_listening")
        assert listening["port"] == port and listening["host"] == "0.0.0.0"
        ready = await worker.wait_for("ready")
        assert ready["webhook"] is True and ready["one_port"] is True and ready["telegram"] is True
        set_hook = next(c for c in emu.calls if c.method == "setWebhook")
        assert set_hook.params["url"] == hook and set_hook.params["secret_token"] == SECRET
        assert emu.state.webhook["url"] == hook
        assert not any(c.method == "getUpdates" for c in emu.calls)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            health = await http.get("/api/v1/health")
            assert health.status_code == 200 and set(health.json()) == {"ok"}
            # the emulator holds the user's message for the webhook; post it as Telegram does
            emu.send_message(ADMIN, ADMIN, "/status")
            update = emu.state.injected[ADMIN][-1]
            for headers in ({}, {HEADER: "wrong"}, {HEADER: SECRET[:-1]}):
                refused = await http.post(hook, json=update, headers=headers)
                assert refused.status_code == 403, headers
                assert refused.json()["error"] == "forbidden"
            await asyncio.sleep(0.5)
            assert emu.transcript(ADMIN) == []  # nothing was processed
            bad = await http.post(hook, content=b"[1, 2]", headers={HEADER: SECRET})
            assert bad.status_code == 400 and bad.json()["error"] == "bad_request"
            assert (await http.get(hook)).status_code == 405  # POST only
            ok = await http.post(emu.state.webhook["url"], json=update, headers={HEADER: SECRET})
            assert ok.status_code == 200
            (reply,) = await emu.wait_for_messages(ADMIN, 1, timeout=10)
            assert reply.text and "PAPER" in reply.text
            assert (await http.get("/api/v1/health")).status_code == 200  # still serving the API
        assert SECRET not in worker.text()
        worker.proc.send_signal(signal.SIGTERM)
        assert await worker.finish(15) == 0
        assert not worker.logged("shutdown_step_timeout")
    finally:
        worker.kill()


def test_one_port_is_api_enabled_with_webhook_and_port() -> None:
    from config.settings import load_settings
    from config.worker import check_api

    hook = "https://x.example/telegram/hook"
    assert load_settings(_env_file=None, port=8443, webhook_url=hook).api.enabled is False  # safe by default
    one = load_settings(_env_file=None, port=8443, webhook_url=hook, api_enabled=True)
    check_api(one)  # no longer refused: the API's server takes the webhook
    assert (one.api.enabled, one.api.host, one.api.port) == (True, "0.0.0.0", 8443)
    from engine.errors import ConfigError

    for path in ("/api/v1/hook", "/static/x", "/api"):
        with pytest.raises(ConfigError, match="WEBHOOK_URL"):
            check_api(load_settings(_env_file=None, port=8443, webhook_url=f"https://x.example{path}",
                                    api_enabled=True))
