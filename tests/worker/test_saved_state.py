"""A real ``python -m bot`` on a database whose saved engine state it cannot read (written by a newer version):
one line saying so and what to do, exit 1, no traceback, and the saved state left as it was."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from engine.core.types import StepRecord
from engine.store import Store
from tests.bot.test_chat import chat
from tests.store.dbutil import core_state_of
from tests.worker.test_startup import one_line, run_worker

FUTURE = {"version": 99, "portfolio": {}, "symbols": [], "paused": False, "risk_state": "ACTIVE"}


async def saved(url: str, core_state: dict[str, object]) -> None:
    store = await Store.open(url)
    try:
        await store.record_step(StepRecord(None, None, 0, (), (), (), (), None, 0.0, 0.0, (), core_state))
    finally:
        await store.close()


def test_a_saved_state_from_a_newer_version_is_one_line_exit_1(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'agent.db'}"  # the worker's SQLITE_PATH in these tests
    asyncio.run(saved(url, FUTURE))
    proc = run_worker(tmp_path)
    assert proc.returncode == 1
    line = one_line(proc, "database error: the saved engine state is version 99, newer than this agent reads")
    assert line.endswith("start this version on an empty database, or run the version that wrote it")
    assert json.loads(str(asyncio.run(core_state_of(url)))) == FUTURE  # SQLite keeps JSON as text


def test_the_local_chat_on_such_a_database_is_one_line_exit_1(tmp_path: Path) -> None:
    db = tmp_path / "kept.db"
    asyncio.run(saved(f"sqlite+aiosqlite:///{db}", FUTURE))
    proc = chat(tmp_path, "/status\n", "--db", str(db))
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "database error: the saved engine state is version 99, newer than this agent reads")
