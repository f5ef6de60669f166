"""URLs, engines and migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from engine.store import Store, create_engine, migrate, normalize_database_url, redact_url
from engine.store.tables import Base

EXPECTED_TABLES = {
    "orders", "fills", "trades", "positions", "cash_ledger", "equity_snapshots", "signals", "decisions",
    "engine_state", "outbox", "chats", "alert_settings", "deliveries",
}  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("postgres://u:p@h:5432/db", "postgresql+asyncpg://u:p@h:5432/db"),
        ("postgresql://u:p@h/db?sslmode=require", "postgresql+asyncpg://u:p@h/db?ssl=require"),
        ("postgres://u:p%40ss@h/db?sslmode=require", "postgresql+asyncpg://u:p%40ss@h/db?ssl=require"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite+aiosqlite:////abs/x.db", "sqlite+aiosqlite:////abs/x.db"),
        ("  postgres://u:p@h/db  ", "postgresql+asyncpg://u:p@h/db"),
    ],
)
def test_normalize_database_url(raw: str, expected: str) -> None:
    assert normalize_database_url(raw, "unused.db") == expected


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_normalize_defaults_to_sqlite_file(raw: str | None) -> None:
    assert normalize_database_url(raw, "data/trading.db") == "sqlite+aiosqlite:///data/trading.db"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("postgresql+asyncpg://user:s3cr%40t@host:5432/db", "postgresql+asyncpg://user:***@host:5432/db"),
        ("postgres://user:hunter2@ec2.example.com:5432/d1", "postgres://user:***@ec2.example.com:5432/d1"),
        ("postgresql+asyncpg://user@host/db", "postgresql+asyncpg://user@host/db"),
        ("sqlite+aiosqlite:///data/trading.db", "sqlite+aiosqlite:///data/trading.db"),
        ("not a url://u:pw@h", "not a url://u:***@h"),
    ],
)
def test_redact_url(raw: str, expected: str) -> None:
    redacted = redact_url(raw)
    assert redacted == expected
    assert "hunter2" not in redacted and "s3cr" not in redacted


def _schema_diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _tables_and_version(connection: Connection) -> tuple[set[str], str]:
    tables = set(inspect(connection).get_table_names())
    version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    return tables, str(version)


async def test_migrations_apply_match_models_and_are_idempotent(db_url: str) -> None:
    await migrate(db_url)
    await migrate(db_url)  # a second run at head is a no-op
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            tables, version = await connection.run_sync(_tables_and_version)
            diff = await connection.run_sync(_schema_diff)
            state_rows = (await connection.execute(text("SELECT count(*) FROM engine_state"))).scalar_one()
    finally:
        await engine.dispose()
    assert tables == EXPECTED_TABLES | {"alembic_version"}
    assert version == "0001"
    assert diff == []  # migration 0001 creates exactly what tables.py declares
    assert state_rows == 1


async def test_open_migrates_and_reopen_is_idempotent(db_url: str) -> None:
    first = await Store.open(db_url)
    await first.set_flags(clean_shutdown=False)
    await first.close()
    second = await Store.open(db_url)
    try:
        assert (await second.get_flags()).clean_shutdown is False
        assert await second.ping() >= 0.0
    finally:
        await second.close()


async def test_sqlite_engine_is_tuned(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            if engine.dialect.name != "sqlite":
                assert engine.pool.size() > 1  # type: ignore[attr-defined]
                return
            journal = (await connection.execute(text("PRAGMA journal_mode"))).scalar_one()
            foreign_keys = (await connection.execute(text("PRAGMA foreign_keys"))).scalar_one()
            busy = (await connection.execute(text("PRAGMA busy_timeout"))).scalar_one()
    finally:
        await engine.dispose()
    assert (journal, foreign_keys) == ("wal", 1)
    assert busy >= 1000


async def test_sqlite_directory_is_created(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite:///{tmp_path / 'nested' / 'dir' / 'agent.db'}")
    try:
        assert store.backend == "sqlite"
        assert (tmp_path / "nested" / "dir" / "agent.db").exists()
    finally:
        await store.close()
