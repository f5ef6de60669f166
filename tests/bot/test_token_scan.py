"""No secret in any log line: a whole session at DEBUG (engine, bot, emulator, alerts, a rejected token,
a database URL with a password), in process and as the ``python -m bot`` worker process."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from bot.alerts import AlertSender
from bot.app import build_application
from bot.runtime import Runtime
from config.settings import Settings, load_settings, load_trading_config
from config.worker import secrets_of
from engine.app import build
from engine.core.clock import SimClock
from engine.events import ModelDegraded
from engine.feeds.synthetic import DEFAULT_START_MS
from engine.logs import NOISY, configure_logging
from engine.store.db import DatabaseUnavailable
from sim.botapi import BotApiEmulator

TOKEN = "123456:TEST-TOKEN"
WRONG_TOKEN = "654321:TEST-WRONG-TOKEN"
PASSWORD = "S3cr3t-Passw0rd"
ADMIN = 1
STEP = 300_000


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pg_url(port: int) -> str:
    return f"postgresql://agent:{PASSWORD}@127.0.0.1:{port}/agent"


def config_toml(path: Path) -> Path:
    path.write_text('[trading]\nsymbols = ["BTCUSDT"]\nupdate_interval = 0.2\nfast = 3\nslow = 8\n'
                    '[feed]\nsource = "synthetic"\nhistory = 50\n', encoding="utf-8")
    return path


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """DEBUG logging through engine.logs.configure_logging into a StringIO; the old set-up restored after."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, {n: logging.getLogger(n).level for n in NOISY}, structlog.get_config())
    stream = io.StringIO()
    try:
        yield stream
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)
        structlog.configure(**saved[3])


@pytest.fixture
async def emu() -> AsyncIterator[BotApiEmulator]:
    emulator = BotApiEmulator(token=TOKEN)
    async with emulator.run():
        yield emulator


def session_settings(tmp_path: Path, emu: BotApiEmulator, token: str, **extra: Any) -> Settings:
    return load_settings(_env_file=None, telegram_bot_token=token, telegram_admin_ids=[ADMIN],
                         telegram_api_base_url=emu.base_url, sqlite_path=tmp_path / "agent.db", **extra)


async def run_session(tmp_path: Path, emu: BotApiEmulator, http: str) -> None:
    """Engine + bot + alerts on the emulator: commands, a confirmation, a chart, trading, alerts, stop."""
    settings = session_settings(tmp_path, emu, TOKEN, telegram_http=http)
    config = load_trading_config(config_toml(tmp_path / "trading.toml"))
    clock = SimClock(DEFAULT_START_MS + 60 * STEP)
    engine_app = await build(settings, config, clock=clock, poll_interval=3600.0, heartbeat_interval=3600.0)
    application = build_application(engine_app.facade, settings.telegram, rate_limiter=False)
    sender = AlertSender(application.bot, engine_app.facade, chat_rate=0.0)
    runtime = Runtime(engine_app, application, settings.telegram, sender=sender, poll_timeout=1.0)
    await runtime.start()
    try:
        for text in ("/start", "/status", "/balance", "/chart BTCUSDT", "/buy BTCUSDT 100"):
            before = len(emu.transcript(ADMIN))
            emu.send_message(ADMIN, ADMIN, text)
            await emu.wait_for_messages(ADMIN, 1, since=before, timeout=10)
        prompt = emu.transcript(ADMIN)[-1]
        if prompt.buttons():
            emu.press_button(ADMIN, ADMIN, prompt.message_id, prompt.buttons()[0][0]["callback_data"])
        for _ in range(40):
            clock.advance(STEP)
            await engine_app.engine.poll_once("BTCUSDT")
        await engine_app.facade.publish(ModelDegraded(ts=clock.now_ms(), model="m", reason="drift"))
        await asyncio.sleep(0.5)
    finally:
        await runtime.stop(3.0)
    assert any(m.text and m.text.startswith("🛑 Agent stopped") for m in emu.transcript(ADMIN))


async def rejected_token_attempt(tmp_path: Path, emu: BotApiEmulator, http: str) -> None:
    from telegram.error import InvalidToken

    settings = session_settings(tmp_path / "wrong", emu, WRONG_TOKEN, telegram_http=http)
    config = load_trading_config(config_toml(tmp_path / "trading.toml"))
    engine_app = await build(settings, config, clock=SimClock(DEFAULT_START_MS + 60 * STEP), poll_interval=3600.0)
    runtime = Runtime(engine_app, build_application(engine_app.facade, settings.telegram), settings.telegram)
    with pytest.raises(InvalidToken):
        try:
            await runtime.start()
        except InvalidToken:
            structlog.get_logger("test").exception("start_failed")
            raise
        finally:
            await runtime.stop(1.0)


async def database_password_attempt(tmp_path: Path) -> None:
    settings = load_settings(_env_file=None, telegram_bot_token=TOKEN, database_url=pg_url(closed_port()))
    configure_logging("DEBUG", "json", secrets=secrets_of(settings), stream=logging.getLogger().handlers[0].stream)
    with pytest.raises(DatabaseUnavailable) as info:
        try:
            await build(settings, load_trading_config(config_toml(tmp_path / "trading.toml")))
        except DatabaseUnavailable:
            structlog.get_logger("test").exception("start_failed")
            raise
    assert PASSWORD not in str(info.value) and "127.0.0.1" in str(info.value)


def assert_clean(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, f"{secret!r} leaked: ...{text[max(0, text.find(secret) - 300):][:600]}..."


@pytest.mark.parametrize("http", ["aiohttp", "httpx"])  # both Bot API transports (TELEGRAM_HTTP)
async def test_a_whole_session_at_debug_logs_no_secret(tmp_path: Path, emu: BotApiEmulator,
                                                       captured_logs: io.StringIO, http: str) -> None:
    settings = session_settings(tmp_path, emu, TOKEN)
    wrong = session_settings(tmp_path, emu, WRONG_TOKEN)
    configure_logging("DEBUG", "json", secrets=[*secrets_of(settings), *secrets_of(wrong)], stream=captured_logs)
    await run_session(tmp_path, emu, http)
    await rejected_token_attempt(tmp_path, emu, http)
    await database_password_attempt(tmp_path)

    logged = captured_logs.getvalue()
    assert_clean(logged, TOKEN, "TEST-TOKEN", WRONG_TOKEN, "TEST-WRONG-TOKEN", PASSWORD)
    # the scan is meaningful: these lines did carry the secrets before redaction
    assert "/bot***/getMe" in logged and "/bot***/sendMessage" in logged
    assert '"event": "ready"' in logged and "InvalidToken" in logged
    assert "agent:***@127.0.0.1" in logged or "Connect call failed" in logged
    assert len(logged.splitlines()) > 500


# ---------------------------------------------------------------------------- the worker process


def worker_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    drop = ("TELEGRAM_", "DATABASE_URL", "WEBHOOK_", "PORT", "TRADING_CONFIG", "SQLITE_PATH", "LOG_")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(drop)}
    env.pop("PTB_TIMEDELTA", None)  # the worker sets it itself
    env.update({"SQLITE_PATH": str(tmp_path / "agent.db"), "TRADING_CONFIG": str(config_toml(tmp_path / "t.toml")),
                "LOG_LEVEL": "DEBUG", "LOG_FORMAT": "json", **extra})
    return env


async def start_worker(tmp_path: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", cwd=tmp_path, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def read_until(stream: asyncio.StreamReader, needle: str, sink: list[str], wait_s: float) -> None:
    async with asyncio.timeout(wait_s):
        while line := (await stream.readline()).decode():
            sink.append(line)
            if needle in line:
                return
    raise AssertionError(f"{needle!r} never logged: {''.join(sink)[-2000:]}")


@pytest.mark.timeout(60)
async def test_worker_runs_answers_and_stops_cleanly_on_sigterm_without_leaking(
        tmp_path: Path, emu: BotApiEmulator) -> None:
    env = worker_env(tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL=emu.base_url,
                     TELEGRAM_ADMIN_IDS=str(ADMIN))
    proc = await start_worker(tmp_path, env)
    assert proc.stdout is not None and proc.stderr is not None
    out: list[str] = []
    await read_until(proc.stdout, '"event": "ready"', out, 30)
    emu.send_message(ADMIN, ADMIN, "/status")
    (reply,) = await emu.wait_for_messages(ADMIN, 1, timeout=10)
    assert reply.text and "PAPER" in reply.text

    loop = asyncio.get_running_loop()
    t0 = loop.time()
    proc.send_signal(signal.SIGTERM)
    rest, err = await asyncio.wait_for(proc.communicate(), 15)
    assert loop.time() - t0 < 10
    assert proc.returncode == 0, err.decode()[-2000:]
    logged = "".join(out) + rest.decode() + err.decode()
    assert_clean(logged, TOKEN, "TEST-TOKEN")
    assert '"event": "stopped"' in logged and "Traceback" not in logged
    assert any(m.text and m.text.startswith("🛑 Agent stopped") for m in emu.transcript(ADMIN))


@pytest.mark.timeout(60)
async def test_worker_config_errors_are_one_line_and_exit_2(tmp_path: Path, emu: BotApiEmulator) -> None:
    cases = {
        "missing token": worker_env(tmp_path),
        "bad timezone": worker_env(tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TIMEZONE="Mars/Olympus"),
        "rejected token": worker_env(tmp_path, TELEGRAM_BOT_TOKEN=WRONG_TOKEN, TELEGRAM_API_BASE_URL=emu.base_url),
    }
    for name, env in cases.items():
        proc = await start_worker(tmp_path, env)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 2, (name, err.decode()[-2000:])
        lines = err.decode().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("configuration error: "), (name, lines)
        assert_clean(out.decode() + err.decode(), WRONG_TOKEN, "TEST-WRONG-TOKEN", TOKEN)
        assert "Traceback" not in out.decode() + err.decode()


@pytest.mark.timeout(60)
async def test_worker_with_unreachable_database_does_not_log_its_password(tmp_path: Path) -> None:
    env = worker_env(tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, DATABASE_URL=pg_url(closed_port()))
    proc = await start_worker(tmp_path, env)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode != 0
    assert_clean(out.decode() + err.decode(), PASSWORD, TOKEN)
