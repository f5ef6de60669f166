"""Raw looks at a test database, for asserting what a failed write left behind."""

from __future__ import annotations

from sqlalchemy import text

from engine.store import create_engine
from engine.store.tables import Base

TABLES = tuple(sorted(Base.metadata.tables))


async def row_counts(db_url: str) -> dict[str, int]:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            return {
                table: int((await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())
                for table in TABLES
            }
    finally:
        await engine.dispose()


async def core_state_of(db_url: str) -> object:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            return (await connection.execute(text("SELECT core_state FROM engine_state"))).scalar_one()
    finally:
        await engine.dispose()
