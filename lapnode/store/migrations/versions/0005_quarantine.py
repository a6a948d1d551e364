"""Quarantine: records a local inbound rule set aside until an operator releases or drops them.

Revision ID: 0005_quarantine
Revises: 0004_interop
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_quarantine"
down_revision = "0004_interop"
branch_labels = None
depends_on = None

_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "quarantine",
        sa.Column("id", _ROW_ID, autoincrement=True, nullable=False),
        sa.Column("rid", sa.LargeBinary(length=32), nullable=False),
        sa.Column("wire", sa.LargeBinary(), nullable=False),
        sa.Column("source_id", _ROW_ID, nullable=True),
        sa.Column("hops", sa.Integer(), server_default="0", nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["peers.id"], name="fk_quarantine_source_peer"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_quarantine_rid", "quarantine", ["rid"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_quarantine_rid", "quarantine")
    op.drop_table("quarantine")
