"""Persistence: SQLite or PostgreSQL through SQLAlchemy (asyncio), schema managed by Alembic.

``Store`` is the only way in (``engine.store.repo``: one repository per aggregate); ``engine.store.outbox``
has the alert delivery design.
"""

from engine.store.db import create_engine, migrate, normalize_database_url, redact_url
from engine.store.repo import Chat, Delivery, Flags, Store, fill_cash_amount

__all__ = [
    "Chat",
    "Delivery",
    "Flags",
    "Store",
    "create_engine",
    "fill_cash_amount",
    "migrate",
    "normalize_database_url",
    "redact_url",
]
