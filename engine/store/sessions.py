"""What every part of the repository shares: one session factory, one ``AsyncSession`` per unit of work.

Each aggregate's part of ``Store`` (``steps``, ``orders``, ``ledger``, ``state``, ``outbox``) is a class over
the same ``_sessions``; ``engine.store.repo.Store`` is all of them over one database. ORM rows never leave the
package: reads return the dataclasses of ``engine.core.types`` or the small frozen dataclasses of the parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.store.tables import now_ms


class Repository:
    """Base of the repository's parts: the session factories they share. ``_sessions`` for units of work that
    write (on SQLite they take the write lock up front); ``_reads`` for reads that never write (on SQLite a
    deferred transaction: a snapshot that neither waits for the engine's writes nor holds them up)."""

    _sessions: async_sessionmaker[AsyncSession]
    _reads: async_sessionmaker[AsyncSession]

    async def _scalars(self, query: Select[Any]) -> Sequence[Any]:
        async with self._sessions.begin() as session:
            return (await session.scalars(query)).all()

    async def _read_scalars(self, query: Select[Any]) -> Sequence[Any]:
        async with self._reads.begin() as session:
            return (await session.scalars(query)).all()


def insert_for(session: AsyncSession) -> Any:
    """The dialect's INSERT (both SQLite and PostgreSQL support ON CONFLICT)."""
    return sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert


def stamped(values: dict[str, Any]) -> dict[str, Any]:
    now = now_ms()
    return {**values, "created_at": now, "updated_at": now}
