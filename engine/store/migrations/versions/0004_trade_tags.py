"""trades.entry_tag, trades.exit_tag: the strategy's tags of the signals that opened and closed a trade.

NULL for a trade without one (a model's, a rule's without tags, a stop's exit, every trade written before
this revision).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("trades", sa.Column("entry_tag", sa.String(64), nullable=True))
    op.add_column("trades", sa.Column("exit_tag", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trades") as batch:
        batch.drop_column("exit_tag")
        batch.drop_column("entry_tag")
