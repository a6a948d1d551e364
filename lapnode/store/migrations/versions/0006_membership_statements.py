"""Membership statements: revocations and key rotations every node keeps and passes on (SPEC §8.7-§8.8).

Revision ID: 0006_statements
Revises: 0005_quarantine
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_statements"
down_revision = "0005_quarantine"
branch_labels = None
depends_on = None

_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "statements",
        sa.Column("id", _ROW_ID, autoincrement=True, nullable=False),
        sa.Column("sid", sa.LargeBinary(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.LargeBinary(length=32), nullable=False),
        sa.Column("signer", sa.LargeBinary(length=32), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=True),
        sa.Column("wire", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sid"),
    )
    op.create_index("ix_statements_subject", "statements", ["subject", "kind"])


def downgrade() -> None:
    op.drop_index("ix_statements_subject", table_name="statements")
    op.drop_table("statements")
