"""The usage ledger records the processing tier a call was served and priced in.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: a metadata-only change on PostgreSQL and SQLite, however long the ledger.
    op.add_column("usage_records", sa.Column("service_tier", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:  # SQLite before 3.35 cannot drop a column
        batch.drop_column("service_tier")
