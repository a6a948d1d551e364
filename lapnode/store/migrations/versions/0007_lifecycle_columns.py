"""Record lifecycle columns: purged content and superseded versions (issue #5).

Revision ID: 0007_lifecycle
Revises: 0006_statements
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_lifecycle"
down_revision = "0006_statements"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("records") as batch:
        batch.add_column(sa.Column("purged", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("supersedes", sa.LargeBinary(length=32), nullable=True))
    op.create_index("ix_records_supersedes", "records", ["supersedes"])


def downgrade() -> None:
    op.drop_index("ix_records_supersedes", table_name="records")
    with op.batch_alter_table("records") as batch:
        batch.drop_column("supersedes")
        batch.drop_column("purged")
