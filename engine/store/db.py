"""Database URLs, engines and migrations.

One place decides how we talk to SQLite (local runs, tests) and PostgreSQL (hosted runs):

* ``normalize_database_url`` turns whatever the environment gives us into an async SQLAlchemy URL;
* ``redact_url`` makes a URL safe for logs;
* ``create_engine`` builds the AsyncEngine (WAL, foreign keys, busy timeout and explicit
  ``BEGIN IMMEDIATE`` transactions on SQLite, deferred ones for the store's reads; a bounded, pre-pinged
  pool on asyncpg);
* ``migrate`` brings a database to the head of the Alembic migrations in ``engine/store/migrations``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, event, insert, inspect, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from engine.errors import DatabaseUnavailable as DatabaseUnavailable  # defined with the whole tree

if TYPE_CHECKING:
    from alembic.config import Config

log = structlog.get_logger("engine.store.db")

STORE_DIR = Path(__file__).resolve().parent
ALEMBIC_INI = STORE_DIR / "alembic.ini"
MIGRATIONS_DIR = STORE_DIR / "migrations"
HEAD_REVISION = "0005"
"""The newest migration in ``migrations/versions``; tests/store/test_db.py checks that Alembic agrees."""

DEFAULT_SQLITE_PATH = "var/agent.db"
"""Where the database is without DATABASE_URL or SQLITE_PATH (the settings' default, as the README says)."""
SQLITE_BUSY_TIMEOUT_MS = 10_000
READ_ONLY_OPTION = "store_read_only"
"""The execution option of the store's read sessions (``Repository._reads``): on SQLite their transactions are
deferred (``BEGIN``), not ``BEGIN IMMEDIATE``, so a read never waits for the write lock nor holds it."""
PG_POOL_SIZE = 5
PG_MAX_OVERFLOW = 5
PG_POOL_RECYCLE_S = 1_800


def normalize_database_url(url: str | None, default_sqlite_path: str | Path) -> str:
    """An async SQLAlchemy URL for ``url``.

    None or blank -> ``sqlite+aiosqlite:///<default_sqlite_path>``; Heroku's ``postgres://`` and
    plain ``postgresql://`` -> ``postgresql+asyncpg://`` (a libpq ``sslmode=`` query parameter
    becomes asyncpg's ``ssl=``); plain ``sqlite://`` -> ``sqlite+aiosqlite://``. Anything else,
    e.g. an explicit driver, is returned unchanged.
    """
    if url is None or not url.strip():
        return f"sqlite+aiosqlite:///{Path(default_sqlite_path)}"
    url = url.strip()
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return _asyncpg_query("postgresql+asyncpg://" + url[len(prefix) :])
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


def _asyncpg_query(url: str) -> str:
    """asyncpg takes ``ssl=<mode>``, not libpq's ``sslmode=<mode>`` (which it would reject)."""
    parsed = make_url(url)
    if "sslmode" not in parsed.query:
        return url
    mode = parsed.query["sslmode"]
    parsed = parsed.difference_update_query(["sslmode"]).update_query_dict({"ssl": mode})
    return parsed.render_as_string(hide_password=False)


_PASSWORD_RE = re.compile(r"^(?P<head>[^:/?#]+://[^:/?#@]*:)(?P<pw>[^@]*)(?P<tail>@.*)$")


def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``, for logs."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        match = _PASSWORD_RE.match(url)
        return f"{match['head']}***{match['tail']}" if match else url
    if parsed.password is None:
        return url
    return parsed.render_as_string(hide_password=True)


def unavailable_text(url: str, exc: BaseException) -> str:
    """``cannot open the postgresql database agent on db.example.org:5432: ConnectionRefusedError: ...``."""
    try:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        host = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
        where = (f"the sqlite database {parsed.database}" if backend == "sqlite" else
                 f"the {backend} database {parsed.database or ''} on {host}")
        password = parsed.password
    except ArgumentError:
        where, password = "the database", None
    inner = getattr(exc, "orig", None) or exc  # SQLAlchemy's DBAPIError wraps the driver's error
    first = (str(inner).strip().splitlines() or [""])[0][:300]
    if password:
        first = first.replace(str(password), "***")
    return f"cannot open {' '.join(where.split())}: {type(inner).__name__}" + (f": {first}" if first else "")


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An AsyncEngine for ``url`` (already normalized), tuned for its backend."""
    if is_sqlite(url):
        _ensure_sqlite_directory(url)
        engine = create_async_engine(url, **kwargs)
        _tune_sqlite(engine)
    else:
        options: dict[str, Any] = {
            "pool_size": PG_POOL_SIZE,
            "max_overflow": PG_MAX_OVERFLOW,
            "pool_pre_ping": True,
            "pool_recycle": PG_POOL_RECYCLE_S,
        }
        options.update(kwargs)
        engine = create_async_engine(url, **options)
    log.debug("engine_created", url=redact_url(url), backend=engine.dialect.name)
    return engine


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names, or None (in memory, or a ``file:`` URI)."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _ensure_sqlite_directory(url: str) -> None:
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def _tune_sqlite(engine: AsyncEngine) -> None:
    """WAL, foreign keys, busy timeout, and SQLAlchemy-controlled ``BEGIN IMMEDIATE``.

    The sqlite3 module's own transaction handling is switched off (it does not BEGIN before
    SELECTs), so every SQLAlchemy transaction is a real SQLite transaction that takes the write
    lock up front: a read-then-write unit of work can never fail with SQLITE_BUSY halfway. A
    connection with the ``READ_ONLY_OPTION`` (the store's read sessions, which never write) begins a
    deferred transaction instead: under WAL it reads one snapshot without taking or waiting for the
    write lock, so the API's and the chat's reads and the engine's step commits do not queue behind
    each other (SQLite's busy handler retries a lock after sleeps of up to 100 ms).
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # a read (READ_ONLY) takes no lock: under WAL it reads a snapshot while the engine writes, and the
        # engine's writes never wait for it; everything else takes the write lock up front
        connection.exec_driver_sql("BEGIN" if connection.get_execution_options().get(READ_ONLY_OPTION)
                                   else "BEGIN IMMEDIATE")


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """Alembic config pointing at our migrations; pass ``connection`` to run on it."""
    from alembic.config import Config

    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _upgrade_to_head(connection: Connection) -> None:
    from alembic import command

    command.upgrade(alembic_config(connection), "head")


def _create_at_head(connection: Connection) -> None:
    """An empty database gets the schema at head in one go and is stamped with the head revision, as
    Alembic's cookbook describes ("Building an Up to Date Database from Scratch"), then the seed row
    that migration 0001 writes. tests/store/test_db.py checks the result equals running the migrations."""
    from engine.store.tables import Base, EngineStateRow

    Base.metadata.create_all(connection)
    version = Table("alembic_version", MetaData(), Column("version_num", String(32), nullable=False),
                    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"))
    version.create(connection)
    connection.execute(version.insert().values(version_num=HEAD_REVISION))
    now = int(time.time() * 1000)
    connection.execute(insert(EngineStateRow).values(
        id=1, paused=False, risk_state="ACTIVE", clean_shutdown=True, created_at=now, updated_at=now))


def _bring_to_head(connection: Connection) -> str:
    """Create, leave, or upgrade; what was done. Alembic (~12 MB that a process keeps once imported) is
    imported only when an existing database is behind: a fresh one is created at head, and one at head
    (the release phase migrated it) is left alone."""
    tables = set(inspect(connection).get_table_names())
    if not tables:
        _create_at_head(connection)
        return "created"
    if "alembic_version" in tables:
        current = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        if current == [HEAD_REVISION]:
            return "current"
    _upgrade_to_head(connection)
    return "upgraded"


async def migrate(url: str) -> None:
    """Bring ``url`` to the head migration; a no-op when already there."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            how = await connection.run_sync(_bring_to_head)
    finally:
        await engine.dispose()
    log.info("migrated", url=redact_url(url), how=how, revision=HEAD_REVISION)
