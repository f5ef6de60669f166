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
from engine.store.db import HEAD_REVISION
from engine.store.tables import Base

EXPECTED_TABLES = {
    "orders", "fills", "trades", "positions", "cash_ledger", "equity_snapshots", "signals", "decisions",
    "engine_state", "outbox", "chats", "alert_settings", "deliveries", "live_orders", "api_tokens",
    "api_idempotency",
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
    assert version == HEAD_REVISION
    assert diff == []  # the migrations create exactly what tables.py declares
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


def _schema(connection: Connection) -> dict[str, Any]:
    """Everything the inspector reports, per table, plus SQLite's own CREATE statements."""
    insp = inspect(connection)
    out: dict[str, Any] = {}
    for table in sorted(insp.get_table_names()):
        out[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                        for c in insp.get_columns(table)],
            "pk": insp.get_pk_constraint(table),
            "fks": sorted(map(repr, insp.get_foreign_keys(table))),
            "indexes": sorted(map(repr, insp.get_indexes(table))),
            "uniques": sorted(map(repr, insp.get_unique_constraints(table))),
            "checks": sorted(map(repr, insp.get_check_constraints(table))),
        }
    if connection.dialect.name == "sqlite":
        rows = connection.execute(text("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")).all()
        # the CREATE text itself, AUTOINCREMENT included, as a multiset of its comma-separated parts:
        # create_all and Alembic list a table's constraints in different orders
        out["sqlite_master"] = [(t, n, sorted(" ".join((sql or "").split()).removesuffix(" )").split(", ")))
                                for t, n, sql in rows]
    return out


def _seed(connection: Connection) -> list[Any]:
    rows = connection.execute(text("SELECT id, paused, risk_state, clean_shutdown, halted_reason, core_state "
                                   "FROM engine_state")).all()
    return [tuple(r) for r in rows] + [connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()]


def _drop_everything(connection: Connection) -> None:
    Base.metadata.drop_all(connection)
    connection.execute(text("DROP TABLE alembic_version"))


async def test_fresh_database_created_at_head_equals_the_migrations(db_url: str) -> None:
    """migrate() creates an empty database straight at head, without Alembic; the schema, the seed row and
    the version stamp must be exactly what running the migrations gives."""
    from alembic.script import ScriptDirectory

    from engine.store.db import HEAD_REVISION, _upgrade_to_head, alembic_config

    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [HEAD_REVISION]
    engine = create_engine(db_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade_to_head)
            by_alembic = await connection.run_sync(_schema)
            seed_alembic = await connection.run_sync(_seed)
            await connection.run_sync(_drop_everything)
            assert await connection.run_sync(lambda c: inspect(c).get_table_names()) == []
    finally:
        await engine.dispose()
    await migrate(db_url)  # empty now: the create-at-head path
    await migrate(db_url)  # at head: left alone
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            created = await connection.run_sync(_schema)
            seed_created = await connection.run_sync(_seed)
            diff = await connection.run_sync(_schema_diff)
    finally:
        await engine.dispose()
    assert created == by_alembic
    assert seed_created == seed_alembic
    assert diff == []


def test_migrate_imports_alembic_only_to_upgrade(tmp_path: Path) -> None:
    """A fresh database and one at head are handled without importing Alembic (the worker would keep
    its ~12 MB for the whole run)."""
    import subprocess
    import sys

    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    script = ("import asyncio, sys\nfrom engine.store.db import migrate\n"
              f"asyncio.run(migrate({url!r}))\nasyncio.run(migrate({url!r}))\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def _upgrade_from_0001_with_a_trade(connection: Connection) -> float:
    from alembic import command

    from engine.store.db import alembic_config

    config = alembic_config(connection)
    command.upgrade(config, "0001")
    # bought 0.1 at 30,000 (fee 3.00), sold at 29,700 (fee 2.97): PnL -30 - 5.97 over an entry cost of 3,003
    connection.execute(text("INSERT INTO trades (symbol, side, entry_time, exit_time, entry_price, exit_price, "
                            "quantity, fee, pnl, exit_reason, created_at, updated_at) VALUES ('BTCUSDT', 'long', 1, "
                            "2, 30000, 29700, 0.1, 5.97, -35.97, 'signal', 0, 0)"))
    command.upgrade(config, "head")
    return float(connection.execute(text("SELECT pnl_pct FROM trades")).scalar_one())


async def test_upgrade_gives_older_trades_their_pnl_pct(db_url: str) -> None:
    """A database at 0001 with a closed trade: migration 0002 fills in the trade's PnL percentage, the same
    number engine.core.types.trade_pnl_pct gives (PnL net of both fees over the entry cost)."""
    from engine.core.types import trade_pnl_pct

    engine = create_engine(db_url)
    try:
        async with engine.begin() as connection:
            stored = await connection.run_sync(_upgrade_from_0001_with_a_trade)
    finally:
        await engine.dispose()
    assert stored == pytest.approx(trade_pnl_pct(-35.97, 30_000.0, 0.1, 3.0), rel=1e-12)
    assert stored == pytest.approx(-35.97 / 3003.0, rel=1e-12)
