"""The terms table without its foreign key to records (issue #2 ingest rate; relogging at scale).

Revision ID: 0015_terms_without_cascade
Revises: 0014_partial_indexes

The key `terms.record_id → records.id ON UPDATE CASCADE` cost twice:
- A relog gives a record a new log position (lapnode.store.writer.relog_shorter_paths), and the cascade
  had to find the record's terms by `record_id`, which no index leads with: a scan of the whole terms
  table per relogged record (53 ms at 50,000 records on SQLite, growing with the store).
- Every term inserted looked its record up (about 12,000 instructions a record on SQLite, callgrind).
The writer now moves a relogged record's terms itself, by their full key, recomputed from the stored
record, as the purge already did when it removes them. SQLite cannot drop a foreign key, so the table is
copied; PostgreSQL drops the constraint.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_terms_without_cascade"
down_revision = "0014_partial_indexes"
branch_labels = None
depends_on = None


def _copy_terms(*, cascade: bool) -> None:
    """SQLite: replace the terms table by a copy with or without the foreign key (it cannot be altered)."""
    keys = (
        [sa.ForeignKeyConstraint(["record_id"], ["records.id"], ondelete="CASCADE", onupdate="CASCADE")]
        if cascade
        else []
    )
    op.create_table(
        "terms_copy",
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("term_type", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        *keys,
        sa.PrimaryKeyConstraint("value", "term_type", "record_id"),
        sqlite_with_rowid=False,
    )
    # In key order: the copy's B-tree is filled from left to right.
    op.execute(
        "INSERT INTO terms_copy (value, term_type, record_id)"
        " SELECT value, term_type, record_id FROM terms ORDER BY value, term_type, record_id"
    )
    op.drop_table("terms")
    op.rename_table("terms_copy", "terms")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _copy_terms(cascade=False)
        return
    for key in sa.inspect(bind).get_foreign_keys("terms"):
        if key["name"] is not None:  # PostgreSQL names every constraint
            op.drop_constraint(key["name"], "terms", type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _copy_terms(cascade=True)
        return
    op.create_foreign_key(
        None, "terms", "records", ["record_id"], ["id"], ondelete="CASCADE", onupdate="CASCADE"
    )
