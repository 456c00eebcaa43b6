"""The ids of the ledger batches written, so that a batch retried after its commit is not written twice.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A new table, small (a day of batch ids): nothing of the ledger is read or rewritten.
    op.create_table(
        "usage_batches",
        sa.Column("id", sa.LargeBinary(16), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_batches")),
    )
    op.create_index(op.f("ix_usage_batches_written_at"), "usage_batches", ["written_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_usage_batches_written_at"), table_name="usage_batches")
    op.drop_table("usage_batches")
