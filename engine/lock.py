"""One active engine per database.

Two workers on one database must never both trade: during a deploy the platform starts the new
process before the old one has exited. Before it reads any state, the engine takes a lock that the
operating system or the database server releases by itself when the holder dies (even by kill -9):

* PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a dedicated connection,
  held for the whole life of the process. The server drops it when that connection closes.
* SQLite: ``fcntl.flock`` on ``<database file>.lock`` next to the database. The kernel drops it
  when the file descriptor is closed, i.e. at the latest when the process exits.
* An in-memory SQLite database is private to its process: no lock is needed.

A second worker waits (polling every ``retry_s``), says why in the log every ``log_every_s``, and
takes over as soon as the first one exits. ``watch`` notices a lost PostgreSQL session (server
restart, network cut), after which another worker may already hold the lock: the caller must stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Protocol

import structlog
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from engine.errors import LockLost as LockLost  # defined with the whole tree; raised and caught by this name
from engine.store.db import redact_url

log = structlog.get_logger("engine.lock")

# pg advisory lock keys are bigints; one fixed key per database ("TRADEAGT" in ASCII, as an int64).
ADVISORY_KEY = int.from_bytes(b"TRADEAGT", "big") & 0x7FFF_FFFF_FFFF_FFFF


class EngineLock(Protocol):
    description: str

    async def try_acquire(self) -> bool: ...

    async def check(self) -> None:
        """Raise LockLost if the lock is no longer held."""

    async def release(self) -> None: ...


class NoLock:
    description = "no lock (in-memory database)"

    async def try_acquire(self) -> bool:
        return True

    async def check(self) -> None:
        return None

    async def release(self) -> None:
        return None


class FileLock:
    """``flock(LOCK_EX | LOCK_NB)`` on a file next to the SQLite database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"file lock {path}"
        self._fd: int | None = None

    async def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def holder(self) -> str:
        """The pid written by the current holder (best effort, for the waiting message)."""
        try:
            return self.path.read_text(encoding="utf-8").strip() or "?"
        except OSError:
            return "?"

    async def check(self) -> None:
        if self._fd is None:
            raise LockLost("file lock not held")

    async def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class AdvisoryLock:
    """A session-level PostgreSQL advisory lock on its own connection (outside the store's pool)."""

    def __init__(self, url: str, key: int = ADVISORY_KEY) -> None:
        self.url = url
        self.key = key
        self.description = f"PostgreSQL advisory lock {key} on {redact_url(url)}"
        self._engine: AsyncEngine | None = None
        self._conn: AsyncConnection | None = None

    async def _connection(self) -> AsyncConnection:
        if self._conn is None:
            self._engine = create_async_engine(self.url, poolclass=NullPool)
            conn = await self._engine.connect()
            self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    async def try_acquire(self) -> bool:
        conn = await self._connection()
        got = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key})).scalar_one()
        return bool(got)

    async def check(self) -> None:
        if self._conn is None:
            raise LockLost("advisory lock connection not open")
        try:
            held = (await self._conn.execute(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                "AND granted AND classid = :hi AND objid = :lo"),
                {"hi": self.key >> 32, "lo": self.key & 0xFFFFFFFF})).scalar_one()
        except Exception as exc:  # whatever broke the lock's connection, the lock can no longer be trusted
            raise LockLost(f"advisory lock connection failed: {type(exc).__name__}") from exc
        if not held:
            raise LockLost("advisory lock no longer held by this session")

    async def release(self) -> None:
        conn, engine = self._conn, self._engine
        self._conn = self._engine = None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            with contextlib.suppress(Exception):
                await conn.close()
        if engine is not None:
            await engine.dispose()


def lock_for(url: str) -> EngineLock:
    """The right lock for a normalized async database URL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if not database or database == ":memory:" or database.startswith("file:") or "mode=memory" in url:
            return NoLock()
        return FileLock(Path(database).with_name(Path(database).name + ".lock"))
    if parsed.get_backend_name() == "postgresql":
        return AdvisoryLock(url)
    return NoLock()


async def acquire(lock: EngineLock, *, retry_s: float = 1.0, log_every_s: float = 15.0) -> float:
    """Wait until ``lock`` is ours; returns how long we waited. Cancel to give up."""
    started = time.monotonic()
    last_log = -1e9
    while not await lock.try_acquire():
        now = time.monotonic()
        if now - last_log >= log_every_s:
            last_log = now
            holder = lock.holder() if isinstance(lock, FileLock) else None
            log.warning("engine_lock_waiting", lock=lock.description, holder_pid=holder,
                        waited_s=round(now - started, 1),
                        why="another worker is trading on this database; taking over when it exits")
        await asyncio.sleep(retry_s)
    waited = time.monotonic() - started
    log.info("engine_lock_acquired", lock=lock.description, waited_s=round(waited, 2))
    return waited
