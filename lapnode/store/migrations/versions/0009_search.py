"""Full-text search over records' search text (issue #6; lapnode/store/search.py).

Revision ID: 0009_search
Revises: 0013_peer_credentials

SQLite: an FTS5 table with external content (`records.search_text`), filled in batches by
`SearchIndex.catch_up` up to the mark in `records_search_state`, never by the ingest transaction; the
highest `created` of every block of 4096 log positions, which lets a text query stop early
(lapnode/store/ranked.py); and triggers that take a record out of the index when it is purged, its text
changes, it moves to a new log position (a relog) or it is deleted (search.py, Rule 3).
PostgreSQL: a GIN expression index over the same words (search.PG_VECTOR_SQL).

Note for later migrations: on SQLite, `batch_alter_table("records")` may recreate the table and lose the
triggers; create them again after it (`SQLITE_TRIGGERS` here).
"""

from __future__ import annotations

from alembic import op

revision = "0009_search"
down_revision = "0013_peer_credentials"
branch_labels = None
depends_on = None

# Must stay equal to lapnode.store.search.PG_VECTOR_SQL (a test checks it): the query repeats it.
_PG_VECTOR = "to_tsvector('simple', regexp_replace(search_text, '[[:punct:][:space:]]+', ' ', 'g'))"

# A row is indexed exactly when this holds of it (search.py, Rule 3).
_INDEXED = (
    "{row}.id <= (SELECT indexed_to FROM records_search_state) "
    "AND {row}.search_text <> '' AND {row}.purged IS NULL"
)
_INDEXED_OLD = _INDEXED.format(row="old")
_INDEXED_NEW = _INDEXED.format(row="new")
_UNINDEX = (
    "INSERT INTO records_search (records_search, rowid, search_text) "
    f"SELECT 'delete', old.id, old.search_text WHERE {_INDEXED_OLD};"
)
SQLITE_TRIGGERS = (
    "CREATE TRIGGER records_search_update AFTER UPDATE OF id, search_text, purged ON records BEGIN "
    f"{_UNINDEX} "
    f"INSERT INTO records_search (rowid, search_text) SELECT new.id, new.search_text WHERE {_INDEXED_NEW}; "
    "END",
    f"CREATE TRIGGER records_search_delete AFTER DELETE ON records BEGIN {_UNINDEX} END",
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX ix_records_search ON records USING gin (({_PG_VECTOR}))")
        return
    # Words as lapnode.store.search.words splits them: letters, digits and private-use characters.
    op.execute(
        "CREATE VIRTUAL TABLE records_search USING fts5(search_text, content='records', "
        "content_rowid='id', detail=none, tokenize=\"unicode61 remove_diacritics 0 categories 'L* N* Co'\")"
    )
    op.execute("CREATE TABLE records_search_state (indexed_to INTEGER NOT NULL)")
    op.execute("INSERT INTO records_search_state (indexed_to) VALUES (0)")
    op.execute("CREATE TABLE records_search_blocks (block INTEGER PRIMARY KEY, max_created INTEGER NOT NULL)")
    for statement in SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_records_search", table_name="records")
        return
    op.execute("DROP TRIGGER records_search_delete")
    op.execute("DROP TRIGGER records_search_update")
    op.execute("DROP TABLE records_search_blocks")
    op.execute("DROP TABLE records_search_state")
    op.execute("DROP TABLE records_search")
