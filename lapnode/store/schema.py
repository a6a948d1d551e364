"""Table definitions for the local store (SQLAlchemy Core).

Rule 1: every table's primary key grows with insertion order (an integer sequence), never a random
value: random keys make bulk inserts collapse as the store grows (LESSONS.md, SQLite limits).
Rule 2: the record's wire bytes are the source of truth; every other column is an index derived from
the verified record, and is rebuilt from the wire bytes if the derivation changes.
Rule 3: each query the CLI offers has an index here (see the comment by each index).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
    text,
)

metadata = MetaData()


def _non_null_index(name: str, column: str) -> Index:
    """An index of only the rows with a value in `column` (a partial index on both backends)."""
    where = text(f"{column} IS NOT NULL")
    return Index(name, column, sqlite_where=where, postgresql_where=where)


# SQLite only aliases the rowid for a column declared exactly INTEGER PRIMARY KEY.
RowId = BigInteger().with_variant(Integer(), "sqlite")

authors = Table(
    "authors",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("key", LargeBinary(32), nullable=False, unique=True),
    Column("frozen_at", BigInteger, nullable=True),
    Column("frozen_reason", Text, nullable=True),
)

records = Table(
    "records",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("rid", LargeBinary(32), nullable=False),
    Column("author_id", RowId, ForeignKey("authors.id"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("prev", LargeBinary(32), nullable=True),
    Column("kind", String(32), nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("tlp", String(16), nullable=False),
    # The signed scope's canonical bytes, copied out of the verified header so that a feed can decide
    # disclosure without decoding every record it reads.
    Column("scope", LargeBinary, nullable=False),
    Column("expires", BigInteger, nullable=True),
    Column("received_at", BigInteger, nullable=False),
    Column("search_text", Text, nullable=False),
    Column("wire", LargeBinary, nullable=False),
    # Relay bookkeeping, outside the signed record (SPEC §6.4): how many relays it passed before it reached
    # us, and the peer it came from (never sent back there). NULL source: published here or imported.
    Column("hops", Integer, nullable=False, server_default="0"),
    Column("source_id", RowId, ForeignKey("peers.id"), nullable=True),
    # Lifecycle (SPEC §3.8, issue #5). `purged` is NULL for a live record, else why its content is gone
    # ("retracted", "expired", "retention"): the row keeps an all-redacted copy (header and signature,
    # still a valid record) so that the chain stays checkable and the record is never fetched again.
    Column("purged", String(16), nullable=True),
    # The id of the earlier version this record replaces (its body's `supersedes` field), if any. A link
    # counts only between records of one author (lapnode.store.queries.live_clause).
    Column("supersedes", LargeBinary(32), nullable=True),
    # `show ID` and idempotent ingest.
    Index("ix_records_rid", "rid", unique=True),
    # `query --author`, chain checks and (later) sync vectors.
    Index("ix_records_author_seq", "author_id", "seq"),
    # `query` newest first, with or without --since/--until; --kind filters along this index (few kinds,
    # evenly mixed), which keeps each insert to three B-trees: this, the rid and the author index.
    Index("ix_records_created", "created"),
    # "Is this record superseded?": one probe per record shown. Partial, as the next: most records have
    # no value here, and a NULL entry per insert cost a B-tree write no query reads (migration 0014).
    _non_null_index("ix_records_supersedes", "supersedes"),
    # The purge pass: records past their expiry (lapnode.store.lifecycle). Most records have none (NULL).
    _non_null_index("ix_records_expires", "expires"),
)

# `query --indicator` and `query --jurisdiction`. The key is the lookup order, and on SQLite the table
# is WITHOUT ROWID, so each term costs one B-tree insert instead of three. A record's terms are found
# again by recomputing them from the record, so no index by record is needed; for the same reason there
# is no foreign key to records: the writer moves a relogged record's terms and the purge removes them, by
# full key (a cascade had to scan the whole table for each relogged record: migration 0015).
terms = Table(
    "terms",
    metadata,
    Column("value", Text, primary_key=True),
    Column("term_type", String(16), primary_key=True),
    Column("record_id", RowId, primary_key=True),
    sqlite_with_rowid=False,
)

peers = Table(
    "peers",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("key", LargeBinary(32), nullable=False, unique=True),
    Column("address", Text, nullable=False),
    Column("name", Text, nullable=True),
    # Recipient attributes as the operator pinned them (DESIGN-NOTES 5): never what the peer claims.
    Column("org", Text, nullable=True),
    Column("category", String(32), nullable=True),
    Column("jurisdiction", String(2), nullable=True),
    Column("blocked", Boolean, nullable=False, server_default=false()),
    Column("subscribed", Boolean, nullable=False, server_default=false()),
    Column("kinds", Text, nullable=False, server_default=""),
    # The peer's log position up to which we have committed its feed (SPEC §6.5): its own sequence,
    # never a wall-clock time.
    Column("cursor", BigInteger, nullable=False, server_default="0"),
    Column("added_at", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=True),
    Column("records_sent", BigInteger, nullable=False, server_default="0"),
    Column("records_received", BigInteger, nullable=False, server_default="0"),
    Column("score", Integer, nullable=False, server_default="0"),
    Column("banned_until", BigInteger, nullable=True),
    # The credential the peer last presented in a verified handshake (SPEC §8.3), and when. Exits that run
    # without a session (bundle export --for, query --as, ...) re-verify it at their own time (strict mode).
    Column("credential", LargeBinary, nullable=True),
    Column("credential_seen", BigInteger, nullable=True),
)

# Records that a local inbound rule set aside (docs/policy.md, "Quarantine"): verified and kept, but
# outside `records`, so no query, show, export or feed can see them until an operator releases them.
quarantine = Table(
    "quarantine",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("rid", LargeBinary(32), nullable=False),
    Column("wire", LargeBinary, nullable=False),
    Column("source_id", RowId, ForeignKey("peers.id"), nullable=True),
    Column("hops", Integer, nullable=False, server_default="0"),
    Column("received_at", BigInteger, nullable=False),
    # Every reason the inbound decision gave, one a line.
    Column("reasons", Text, nullable=False),
    Index("ix_quarantine_rid", "rid", unique=True),
)

equivocations = Table(
    "equivocations",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("author_id", RowId, ForeignKey("authors.id"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("first_rid", LargeBinary(32), nullable=False),
    Column("second_rid", LargeBinary(32), nullable=False),
    Column("detected_at", BigInteger, nullable=False),
)

# The disclosure audit trail (lapnode/store/audit.py; docs/threat-model.md, "The audit trail"). Append-only:
# the migration adds triggers that refuse UPDATE and DELETE. `seq` is the entry's position, assigned by
# the appender under the audit write lock and covered by the entry's hash; it is never generated by the
# database.
audit = Table(
    "audit",
    metadata,
    Column("seq", RowId, primary_key=True, autoincrement=False),
    Column("decided_at", BigInteger, nullable=False),
    Column("exit", String(32), nullable=False),
    Column("rid", LargeBinary(32), nullable=False),
    # A node recipient by its key, or another kind of recipient by a label ("public-export", "bundle:FILE").
    Column("recipient_key", LargeBinary(32), nullable=True),
    Column("recipient_label", Text, nullable=True),
    Column("action", String(16), nullable=False),
    # The decision's reasons as a JSON array of strings.
    Column("reasons", Text, nullable=False),
    Column("prev_hash", LargeBinary(32), nullable=False),
    Column("entry_hash", LargeBinary(32), nullable=False),
    CheckConstraint("(recipient_key IS NULL) <> (recipient_label IS NULL)", name="ck_audit_one_recipient"),
    # `audit --record`: who was given (or refused) this record.
    Index("ix_audit_rid", "rid"),
    # `audit --peer`, newest first along the index.
    Index("ix_audit_recipient", "recipient_key", "seq"),
    # `audit --since/--until`.
    Index("ix_audit_decided_at", "decided_at"),
)

# Interop (lapnode/interop): drafts are unsigned, local-only lead documents made by an import, waiting for
# an operator to review and publish them; they never leave this node. `fingerprint` makes an import
# idempotent (the same report or TAXII object imported twice is one draft).
drafts = Table(
    "drafts",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("fingerprint", LargeBinary(32), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("source", Text, nullable=False),
    Column("document", Text, nullable=False),
    # The least restrictive TLP the source allows (a TAXII object's marking); publishing may not go below.
    Column("min_tlp", String(16), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("published_rid", LargeBinary(32), nullable=True),
    Column("published_at", BigInteger, nullable=True),
)

# TAXII API tokens: only a hash of each token is kept; the recipient attributes are what the operator
# pinned when creating it (DESIGN-NOTES 5), never what a client says.
taxii_tokens = Table(
    "taxii_tokens",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("org", Text, nullable=True),
    Column("category", String(32), nullable=True),
    Column("jurisdiction", String(2), nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

# Membership statements (SPEC §8.7-§8.8), verified before they are stored; `wire` is the source of truth.
# `subject` is the key a statement is about (the revoked key; the rotated-away key), `signer` who signed it
# (the authority; the new key), `at` its time, `last_seq` a rotation's last sequence number of the old key.
statements = Table(
    "statements",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("sid", LargeBinary(32), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("subject", LargeBinary(32), nullable=False),
    Column("signer", LargeBinary(32), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=True),
    Column("wire", LargeBinary, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    # Is this key revoked, or rotated away? (every ingest asks, for the authors of its batch)
    Index("ix_statements_subject", "subject", "kind"),
)
