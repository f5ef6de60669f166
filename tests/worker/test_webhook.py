"""Webhook mode of the worker process: with WEBHOOK_URL and PORT set, ``python -m bot`` registers the
webhook with its secret token and serves it (PTB's webhook server); a POST without the secret token or
with a wrong one is refused, with the right one it is processed. Without them it long-polls."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import pytest

from sim.botapi import BotApiEmulator
from tests.worker.rig import ADMIN, Worker, free_port, worker_env

SECRET = "hook-secret-0123456789"


def update(update_id: int) -> dict[str, object]:
    return {"update_id": update_id,
            "message": {"message_id": update_id, "date": 0, "text": "/status",
                        "entities": [{"type": "bot_command", "offset": 0, "length": 7}],
                        "chat": {"id": ADMIN, "type": "private"},
                        "from": {"id": ADMIN, "is_bot": False, "first_name": "Ann"}}}


@pytest.mark.timeout(60)
async def test_worker_webhook_checks_the_secret_token(tmp_path: Path, emu: BotApiEmulator) -> None:
    toml = tmp_path / "t.toml"
    toml.write_text('[trading]\nupdate_interval = 5\nfast = 3\nslow = 8\n[feed]\nsource = "synthetic"\n'
                    'history = 50\n', encoding="utf-8")
    port = free_port()
    hook = f"http://127.0.0.1:{port}/telegram/hook"
    env = worker_env(tmp_path, emulator_url=emu.base_url, exchange_url="http://127.0.0.1:9", db=None,
                     trading_config=toml, WEBHOOK_URL=hook, PORT=str(port), WEBHOOK_SECRET=SECRET)
    worker = await Worker.start(env, tmp_path)
    try:
        ready = await worker.wait_for("ready")
        assert ready["webhook"] is True
        set_hook = next(c for c in emu.calls if c.method == "setWebhook")
        assert set_hook.params["url"] == hook and set_hook.params["secret_token"] == SECRET
        assert not any(c.method == "getUpdates" for c in emu.calls)
        async with aiohttp.ClientSession() as http:
            for n, headers in enumerate(({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}), start=1):
                async with http.post(hook, json=update(n), headers=headers) as refused:
                    assert refused.status == 403, headers
            await asyncio.sleep(0.5)
            assert emu.transcript(ADMIN) == []  # nothing was processed
            async with http.post(hook, json=update(3), headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as ok:
                assert ok.status == 200
        (reply,) = await emu.wait_for_messages(ADMIN, 1, timeout=10)
        assert reply.text and "PAPER" in reply.text
        assert SECRET not in worker.text()
        worker.proc.send_signal(signal.SIGTERM)
        assert await worker.finish() == 0
    finally:
        worker.kill()
