"""live_orders: orders sent to an exchange, committed before each request goes out (engine.live).

One row per intent (its client order id is derived from it and unique); the state machine is
engine.live.types.OrderState. Additive: no existing table changes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# BIGINT on PostgreSQL; INTEGER on SQLite, where only "INTEGER PRIMARY KEY" autoincrements.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

STATES = ("SUBMITTING", "OPEN", "PARTIALLY_FILLED", "FILLED", "CANCELED", "REJECTED", "UNKNOWN", "NOT_PLACED")


def upgrade() -> None:
    op.create_table(
        "live_orders",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("type", sa.String(length=8), nullable=False),
        sa.Column("amount", sa.Double(), nullable=False),
        sa.Column("price", sa.Double(), nullable=True),
        sa.Column("decided_ts", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("intent_id", sa.String(length=128), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("exchange_id", sa.String(length=64), nullable=True),
        sa.Column("filled", sa.Double(), nullable=False),
        sa.Column("average", sa.Double(), nullable=True),
        sa.Column("cost", sa.Double(), nullable=False),
        sa.Column("fees", sa.JSON(), nullable=False),
        sa.Column("sent_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("state IN (" + ", ".join(f"'{s}'" for s in STATES) + ")",
                           name=op.f("ck_live_orders_state")),
        sa.CheckConstraint("type IN ('market', 'limit')", name=op.f("ck_live_orders_type")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_orders")),
        sa.UniqueConstraint("client_id", name=op.f("uq_live_orders_client_id")),
    )
    op.create_index("ix_live_orders_state", "live_orders", ["state"])
    op.create_index("ix_live_orders_symbol_decided_ts", "live_orders", ["symbol", "decided_ts"])


def downgrade() -> None:
    op.drop_index("ix_live_orders_symbol_decided_ts", table_name="live_orders")
    op.drop_index("ix_live_orders_state", table_name="live_orders")
    op.drop_table("live_orders")
