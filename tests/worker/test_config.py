"""Start-up configuration errors of ``python -m bot``: one line on stderr naming the variable, exit 2,
no traceback, no secret echoed. And the ephemeral-disk warning on Heroku without DATABASE_URL (and
the worker's default TRADING_AGENT_JIT=0: numba is never imported)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sim.botapi import BotApiEmulator
from tests.worker.rig import TOKEN, Worker, worker_env

PASSWORD = "Pa55-w0rd-XYZ"

CASES: dict[str, tuple[dict[str, str], str]] = {
    "missing token": ({"TELEGRAM_BOT_TOKEN": ""}, "TELEGRAM_BOT_TOKEN"),
    "bad log level": ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    "bad log format": ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
    "bad port": ({"PORT": "99999"}, "PORT"),
    "port not a number": ({"PORT": "eighty"}, "PORT"),
    "webhook without port": ({"WEBHOOK_URL": "https://example.org/hook"}, "PORT"),
    "username as admin id": ({"TELEGRAM_ADMIN_IDS": "@alice"}, "TELEGRAM_ADMIN_IDS"),
    "bad viewer id": ({"TELEGRAM_VIEWER_IDS": "1,x"}, "TELEGRAM_VIEWER_IDS"),
    "bad time zone": ({"TIMEZONE": "Mars/Olympus"}, "TIMEZONE"),
    "bad summary time": ({"DAILY_SUMMARY_TIME": "25:00"}, "DAILY_SUMMARY_TIME"),
    "bad exchange url": ({"EXCHANGE_BASE_URL": "api.binance.com"}, "EXCHANGE_BASE_URL"),
    "unknown exchange": ({"EXCHANGE": "binanse"}, "did you mean binance"),
    "exchange id not a word": ({"EXCHANGE": "bin ance!"}, "EXCHANGE"),
    "no sandbox": ({"EXCHANGE": "upbit", "EXCHANGE_SANDBOX": "1"}, "EXCHANGE_SANDBOX=1: upbit has no sandbox"),
    "bad sandbox flag": ({"EXCHANGE_SANDBOX": "maybe"}, "EXCHANGE_SANDBOX"),
    "bad api url": ({"TELEGRAM_API_BASE_URL": "ftp://x"}, "TELEGRAM_API_BASE_URL"),
    "bad database url": ({"DATABASE_URL": f"mysql://agent:{PASSWORD}@db/agent"}, "DATABASE_URL"),
    "garbage database url": ({"DATABASE_URL": f"agent:{PASSWORD}"}, "DATABASE_URL"),
    "missing trading config": ({"TRADING_CONFIG": "/nonexistent/trading.toml"}, "trading config"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_config_error_is_one_line_naming_the_variable_exit_2(tmp_path: Path, case: str) -> None:
    extra, name = CASES[case]
    env = worker_env(tmp_path, emulator_url="http://127.0.0.1:9", exchange_url="http://127.0.0.1:9", db=None,
                     trading_config=tmp_path / "absent.toml", **{"TRADING_CONFIG": "", **extra})
    if not env["TRADING_CONFIG"]:
        env.pop("TRADING_CONFIG")
    proc = subprocess.run([sys.executable, "-m", "bot"], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2, (case, proc.stdout[-1000:], proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("configuration error: "), (case, lines)
    assert name in lines[0], (case, lines[0])
    both = proc.stdout + proc.stderr
    assert "Traceback" not in both
    for secret in (TOKEN, "TEST-TOKEN", PASSWORD):
        assert secret not in both, (case, secret)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("with_database", [False, True])
async def test_heroku_without_database_url_warns_loudly(tmp_path: Path, emu: BotApiEmulator,
                                                        with_database: bool) -> None:
    toml = tmp_path / "t.toml"
    toml.write_text('[trading]\nupdate_interval = 5\nfast = 3\nslow = 8\n[feed]\nsource = "synthetic"\n'
                    'history = 50\n', encoding="utf-8")
    extra = {"DYNO": "worker.1"}
    if with_database:
        extra["DATABASE_URL"] = f"sqlite:///{tmp_path / 'kept.db'}"
    env = worker_env(tmp_path, emulator_url=emu.base_url, exchange_url="http://127.0.0.1:9", db=None,
                     trading_config=toml, **extra)
    worker = await Worker.start(env, tmp_path)
    try:
        ready = await worker.wait_for("ready")
        assert ready["numba_loaded"] is False  # the worker defaults TRADING_AGENT_JIT=0
        warned = worker.logged("ephemeral_database")
        if with_database:
            assert not warned
        else:
            assert warned and warned[0]["level"] == "warning"
            assert "WILL BE LOST" in warned[0]["detail"] and "heroku-postgresql" in warned[0]["detail"]
        worker.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(worker.finish(), 15) == 0
    finally:
        worker.kill()

