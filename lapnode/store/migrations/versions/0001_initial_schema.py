"""Initial schema: authors, records, index terms, equivocation evidence.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "authors",
        sa.Column("id", _ROW_ID, autoincrement=True, nullable=False),
        sa.Column("key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("frozen_at", sa.BigInteger(), nullable=True),
        sa.Column("frozen_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_table(
        "equivocations",
        sa.Column("id", _ROW_ID, autoincrement=True, nullable=False),
        sa.Column("author_id", _ROW_ID, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("first_rid", sa.LargeBinary(length=32), nullable=False),
        sa.Column("second_rid", sa.LargeBinary(length=32), nullable=False),
        sa.Column("detected_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["author_id"], ["authors.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "records",
        sa.Column("id", _ROW_ID, autoincrement=True, nullable=False),
        sa.Column("rid", sa.LargeBinary(length=32), nullable=False),
        sa.Column("author_id", _ROW_ID, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("prev", sa.LargeBinary(length=32), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("tlp", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.LargeBinary(), nullable=False),
        sa.Column("expires", sa.BigInteger(), nullable=True),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("wire", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["author_id"], ["authors.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_records_rid", "records", ["rid"], unique=True)
    op.create_index("ix_records_author_seq", "records", ["author_id", "seq"])
    op.create_index("ix_records_created", "records", ["created"])
    op.create_table(
        "terms",
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("term_type", sa.String(length=16), nullable=False),
        sa.Column("record_id", _ROW_ID, nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["records.id"], ondelete="CASCADE", onupdate="CASCADE"),
        sa.PrimaryKeyConstraint("value", "term_type", "record_id"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("terms")
    op.drop_index("ix_records_created", "records")
    op.drop_index("ix_records_author_seq", "records")
    op.drop_index("ix_records_rid", "records")
    op.drop_table("records")
    op.drop_table("equivocations")
    op.drop_table("authors")
