"""Fixtures for the worker-process tests: the Bot API emulator and a fast fake exchange."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sim.botapi import BotApiEmulator
from tests.worker.rig import STARTED, TOKEN, FakeExchangeProc, write_market


@pytest.fixture(autouse=True)
def no_worker_left() -> Iterator[None]:
    """A worker a failed test left running is killed (it would trade on, and load the machine, for ever)."""
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.returncode is None:  # (its event loop is gone: signal the pid itself)
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)


@pytest.fixture
async def emu() -> AsyncIterator[BotApiEmulator]:
    emulator = BotApiEmulator(token=TOKEN)
    async with emulator.run():
        yield emulator


@pytest.fixture
def worker_db(db_url: str, tmp_path: Path) -> str | None:
    """DATABASE_URL for the worker: None on SQLite (it then uses SQLITE_PATH=<tmp>/agent.db)."""
    return None if db_url.startswith("sqlite") else db_url


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'agent.db'}"


def check_url(db: str | None, tmp_path: Path) -> str:
    return db if db is not None else sqlite_url(tmp_path)


async def fast_exchange(tmp_path: Path, *, candles: int, speed: float) -> FakeExchangeProc:
    return await FakeExchangeProc.start(write_market(tmp_path / "market", candles), speed=speed)
