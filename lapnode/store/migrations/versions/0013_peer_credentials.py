"""Each peer's last verified credential, for the exits that run without a session (issue #4).

Revision ID: 0013_peer_credentials
Revises: 0007_lifecycle
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_peer_credentials"
down_revision = "0007_lifecycle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("peers") as batch:
        batch.add_column(sa.Column("credential", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("credential_seen", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("peers") as batch:
        batch.drop_column("credential_seen")
        batch.drop_column("credential")
