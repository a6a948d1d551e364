"""Purging by expiry: an index on records.expires, so the purge pass reads only the records due (issue #5).

Revision ID: 0008_tombstones
Revises: 0009_search
"""

from __future__ import annotations

from alembic import op

revision = "0008_tombstones"
down_revision = "0009_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_records_expires", "records", ["expires"])


def downgrade() -> None:
    op.drop_index("ix_records_expires", table_name="records")
