"""Fixtures for the worker-process tests: the Bot API emulator and a fast fake exchange."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sim.botapi import BotApiEmulator
from tests.worker.rig import TOKEN, FakeExchangeProc, write_market


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
