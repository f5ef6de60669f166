"""The API in the worker as the platform runs it: ``python -m bot`` with API_ENABLED=1 serves /api/v1 beside the bot
in its one loop and exits 0 on SIGTERM; the API's settings that cannot work are one line before anything starts."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from sim.botapi import BotApiEmulator
from tests.worker.rig import ADMIN, TOKEN, Worker, free_port, worker_env

VIEWER_TOKEN = "viewer-token-for-the-worker-test"
SYNTHETIC = '[trading]\nupdate_interval = 5\nfast = 3\nslow = 8\n[feed]\nsource = "synthetic"\nhistory = 50\n'


@pytest.fixture
async def emu() -> AsyncIterator[BotApiEmulator]:
    emulator = BotApiEmulator(token=TOKEN)
    async with emulator.run():
        yield emulator


def env_for(tmp_path: Path, emu_url: str, **extra: str) -> dict[str, str]:
    toml = tmp_path / "t.toml"
    toml.write_text(SYNTHETIC, encoding="utf-8")
    env = worker_env(tmp_path, emulator_url=emu_url, exchange_url="http://127.0.0.1:9", db=None,
                     trading_config=toml, **extra)
    return {k: v for k, v in env.items() if not k.startswith("API_")} | extra


@pytest.mark.timeout(90)
async def test_the_worker_serves_the_api_and_exits_0_on_sigterm(tmp_path: Path, emu: BotApiEmulator) -> None:
    port = free_port()
    env = env_for(tmp_path, emu.base_url, API_ENABLED="1", API_PORT=str(port), API_TOKENS=f"viewer:{VIEWER_TOKEN}")
    worker = await Worker.start(env, tmp_path)
    try:
        listening = await worker.wait_for("api_listening")
        assert (listening["host"], listening["port"]) == ("127.0.0.1", port)
        ready = await worker.wait_for("ready")
        assert ready["api"] == f"127.0.0.1:{port}" and ready["telegram"] is True
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            health = await http.get("/api/v1/health")
            assert health.status_code == 200 and set(health.json()) == {"ok"}
            assert (await http.get("/api/v1/status")).status_code == 401
            status = await http.get("/api/v1/status", headers={"Authorization": f"Bearer {VIEWER_TOKEN}"})
            assert status.status_code == 200 and status.json()["mode"] == "paper"
            assert (await http.get("/api/v1/openapi.json")).json()["info"]["title"] == "trading-agent"
        async with connect(f"ws://127.0.0.1:{port}/api/v1/ws?token={VIEWER_TOKEN}") as ws:
            assert json.loads(await ws.recv()) == {"type": "ready", "role": "viewer"}
            emu.send_message(ADMIN, ADMIN, "/status")  # the bot answers in the same loop meanwhile
            (reply,) = await emu.wait_for_messages(ADMIN, 1, timeout=10)
            assert reply.text and "PAPER" in reply.text
            worker.proc.send_signal(signal.SIGTERM)  # with a WebSocket open
            assert await worker.finish(15) == 0
        stopped = worker.logged("stopped")
        assert stopped and stopped[0]["took_s"] < 8
        assert not worker.logged("shutdown_step_timeout") and VIEWER_TOKEN not in worker.text()
    finally:
        worker.kill()


@pytest.mark.timeout(60)
async def test_a_taken_port_is_one_line_and_exit_1(tmp_path: Path, emu: BotApiEmulator) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = await Worker.start(env_for(tmp_path, emu.base_url, API_ENABLED="1", API_PORT=str(port)), tmp_path)
        try:
            assert await worker.finish(30) == 1
            err = (await worker.stderr()).strip()
        finally:
            worker.kill()
    assert err.splitlines() == [err]
    assert err.startswith(f"HTTP API error: the HTTP API cannot listen on 127.0.0.1:{port}")


@pytest.mark.parametrize(("extra", "says"), [
    ({"API_ENABLED": "1", "WEBHOOK_URL": "https://x.example/api/v1/hook", "PORT": "8443"}, "its path /api/v1/hook"),
    ({"API_TOKENS": "boss:0123456789abcdefghij"}, "API_TOKENS: entry 1 must be role:token"),
    ({"API_TOKENS": "admin:short"}, "the token must be at least 16 characters"),
    ({"API_CORS_ORIGINS": "example.org"}, "API_CORS_ORIGINS: 'example.org' is not an origin"),
    ({"API_PORT": "70000"}, "API_PORT"),
    ({"API_ENABLED": "maybe"}, "API_ENABLED"),
])
def test_api_settings_that_cannot_work_are_one_line_and_exit_2(tmp_path: Path, extra: dict[str, str],
                                                                says: str) -> None:
    env = env_for(tmp_path, "http://127.0.0.1:9", **extra)
    proc = subprocess.run([sys.executable, "-m", "bot"], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().startswith("configuration error:") and says in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "0123456789abcdefghij" not in proc.stderr + proc.stdout and "short" not in proc.stderr


def test_the_api_is_off_by_default_and_for_a_webhook_on_port() -> None:
    from config.settings import load_settings
    from config.worker import check_api

    assert load_settings(_env_file=None).api.enabled is False
    assert load_settings(_env_file=None, port=8443, webhook_url="https://x.example/hook").api.enabled is False
    web = load_settings(_env_file=None, port=5000).api
    assert (web.enabled, web.host, web.port) == (True, "0.0.0.0", 5000)
    local = load_settings(_env_file=None, api_enabled=True).api
    assert (local.enabled, local.host, local.port) == (True, "127.0.0.1", 8080)
    assert load_settings(_env_file=None, port=5000, api_enabled=False).api.enabled is False
    both = load_settings(_env_file=None, port=8443, webhook_url="https://x.example/hook", api_enabled=True,
                         api_port=9000)
    check_api(both)  # the webhook on PORT, the API on its own port: no conflict
    assert (both.api.host, both.api.port) == ("127.0.0.1", 9000)
