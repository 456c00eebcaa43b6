"""The usage ledger records the web searches a provider ran for a call and billed apiece.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
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
    # A constant default: a metadata-only change on PostgreSQL (11 and later) and SQLite, however long
    # the ledger; the calls recorded before it made no search the gateway could count.
    op.add_column(
        "usage_records", sa.Column("web_searches", sa.Integer(), nullable=False, server_default="0")
    )


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:  # SQLite before 3.35 cannot drop a column
        batch.drop_column("web_searches")
