"""The repository: everything the engine and the bot read from and write to the database.

``Store`` is the one way in. It is assembled from one part per aggregate, each in its own module over the
same session factory (one ``AsyncSession`` per unit of work, ``async with self._sessions.begin()``):

* ``steps``   a whole engine step in one transaction, made idempotent by its decision row; signals;
* ``orders``  orders and fills;
* ``live_orders`` orders sent to the exchange (engine.live), committed before each request;
* ``ledger``  the cash ledger, closed trades, open positions and equity snapshots;
* ``state``   the engine's state row: the core's snapshot and the process flags;
* ``outbox``  chats, alert modes and the alerts to deliver (its docstring has the delivery design);
* ``api``     the HTTP API's hashed tokens and idempotency keys.

ORM rows never leave the package: reads return the dataclasses of ``engine.core.types`` or the small
frozen dataclasses of the parts (``Flags``, ``Chat``, ``Delivery``).
"""

from __future__ import annotations

import time

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from engine.store.api import ApiRecords, ApiTokenRecord, IdempotentAnswer
from engine.store.db import DEFAULT_SQLITE_PATH, READ_ONLY_OPTION, create_engine, normalize_database_url, redact_url
from engine.store.db import migrate as migrate_database
from engine.store.ledger import LEDGER_READS, Ledger, LedgerReads, fill_cash_amount
from engine.store.live_orders import LiveOrders
from engine.store.orders import ORDER_STATUSES, Orders
from engine.store.outbox import ALERT_MODES, MAX_ERROR_CHARS, Chat, Delivery, Outbox
from engine.store.state import STATE_ID, EngineState, Flags
from engine.store.steps import Steps

__all__ = [
    "ALERT_MODES",
    "DEFAULT_SQLITE_PATH",
    "MAX_ERROR_CHARS",
    "ORDER_STATUSES",
    "STATE_ID",
    "ApiTokenRecord",
    "Chat",
    "Delivery",
    "Flags",
    "IdempotentAnswer",
    "Store",
    "fill_cash_amount",
]

log = structlog.get_logger("engine.store")


class Store(Steps, Orders, Ledger, EngineState, Outbox, LiveOrders, ApiRecords):
    """Async repository over one database (SQLite file or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._ledger_reads = LedgerReads()  # the read side's figures in memory (engine.store.ledger)
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, info={LEDGER_READS: self._ledger_reads})
        self._reads = async_sessionmaker(engine.execution_options(**{READ_ONLY_OPTION: True}), expire_on_commit=False)
        self._ledger_started = False  # True once a step committed here: the ledger is not empty

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Open the database at ``url`` (normalized first), migrating it to head unless told not to."""
        url = normalize_database_url(url, DEFAULT_SQLITE_PATH)
        if migrate:
            await migrate_database(url)
        store = cls(create_engine(url))
        log.info("store_opened", url=redact_url(url), backend=store.backend)
        return store

    async def close(self) -> None:
        await self._engine.dispose()

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    async def ping(self) -> float:
        """Round-trip time of a trivial query, in seconds."""
        start = time.perf_counter()
        async with self._engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return time.perf_counter() - start
