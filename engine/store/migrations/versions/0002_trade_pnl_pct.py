"""trades.pnl_pct: the one PnL percentage of a trade (engine.core.types.trade_pnl_pct), stored with it.

Rows written before this revision get it from their own columns: PnL over the entry cost (entry
notional plus entry fee). Their entry fee is not stored apart from the exit fee; both sides were
charged at the same fee rate, so it is ``fee * entry_price / (entry_price + exit_price)``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL = """
UPDATE trades SET pnl_pct = CASE
    WHEN entry_price * quantity + fee * entry_price / (entry_price + exit_price) > 0
    THEN pnl / (entry_price * quantity + fee * entry_price / (entry_price + exit_price))
    ELSE 0 END
"""


def upgrade() -> None:
    # ADD COLUMN, not a batch copy: SQLite can add a NOT NULL column in place when it has a default
    op.add_column("trades", sa.Column("pnl_pct", sa.Double(), nullable=False, server_default=sa.text("0")))
    op.execute(BACKFILL)


def downgrade() -> None:
    with op.batch_alter_table("trades") as batch:
        batch.drop_column("pnl_pct")
