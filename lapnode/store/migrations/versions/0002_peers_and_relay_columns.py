"""Peers, subscriptions and relay bookkeeping for gossip.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "peers",
        sa.Column("id", _ROW_ID, autoincrement=True, nullable=False),
        sa.Column("key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("org", sa.Text(), nullable=True),
        sa.Column("category", sa.String(length=32), nullable=True),
        sa.Column("jurisdiction", sa.String(length=2), nullable=True),
        sa.Column("blocked", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("subscribed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("kinds", sa.Text(), server_default="", nullable=False),
        sa.Column("cursor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("added_at", sa.BigInteger(), nullable=False),
        sa.Column("last_seen", sa.BigInteger(), nullable=True),
        sa.Column("records_sent", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("records_received", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("score", sa.Integer(), server_default="0", nullable=False),
        sa.Column("banned_until", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("records") as batch_op:
        batch_op.add_column(sa.Column("hops", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("source_id", _ROW_ID, nullable=True))
        batch_op.create_foreign_key("fk_records_source_peer", "peers", ["source_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("records") as batch_op:
        batch_op.drop_constraint("fk_records_source_peer", type_="foreignkey")
        batch_op.drop_column("source_id")
        batch_op.drop_column("hops")
    op.drop_table("peers")
