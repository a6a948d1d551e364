"""The disclosure audit trail: an append-only, hash-chained table (lapnode/store/audit.py).

Revision ID: 0003_audit
Revises: 0002

The triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL), so that no code path, migration or
hurried operator edits the trail by mistake. They do not stop someone who can drop them; the hash chain
is what makes such an edit visible (`lapnode audit verify`).
Note for later migrations: on SQLite, `batch_alter_table("audit")` recreates the table and loses the
triggers; create them again after it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_audit"
down_revision = "0002"
branch_labels = None
depends_on = None

_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_REFUSAL = "the audit trail is append-only"

_SQLITE_TRIGGERS = (
    f"CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, '{_REFUSAL}'); END",
    f"CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, '{_REFUSAL}'); END",
)
_POSTGRES_TRIGGERS = (
    "CREATE FUNCTION lapnode_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    f"$$ BEGIN RAISE EXCEPTION '{_REFUSAL}'; END $$",
    "CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit "
    "FOR EACH ROW EXECUTE FUNCTION lapnode_audit_append_only()",
    "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit "
    "FOR EACH STATEMENT EXECUTE FUNCTION lapnode_audit_append_only()",
)


def upgrade() -> None:
    op.create_table(
        "audit",
        sa.Column("seq", _ROW_ID, autoincrement=False, nullable=False),
        sa.Column("decided_at", sa.BigInteger(), nullable=False),
        sa.Column("exit", sa.String(length=32), nullable=False),
        sa.Column("rid", sa.LargeBinary(length=32), nullable=False),
        sa.Column("recipient_key", sa.LargeBinary(length=32), nullable=True),
        sa.Column("recipient_label", sa.Text(), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("entry_hash", sa.LargeBinary(length=32), nullable=False),
        sa.CheckConstraint(
            "(recipient_key IS NULL) <> (recipient_label IS NULL)", name="ck_audit_one_recipient"
        ),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_audit_rid", "audit", ["rid"])
    op.create_index("ix_audit_recipient", "audit", ["recipient_key", "seq"])
    op.create_index("ix_audit_decided_at", "audit", ["decided_at"])
    dialect = op.get_bind().dialect.name
    for statement in _POSTGRES_TRIGGERS if dialect == "postgresql" else _SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("audit")  # its indexes and triggers go with it
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION lapnode_audit_append_only()")
