"""The local record store (SQLite by default, PostgreSQL when configured)."""

from lapnode.store.engine import StoreError
from lapnode.store.peers import Peer, PeerBook, UnknownPeer
from lapnode.store.queries import MAX_LIMIT, QueryFilters
from lapnode.store.statements import RotationLimit, StatementBook, StoredStatement
from lapnode.store.store import (
    AUTHOR_REVOKED,
    KEY_RETIRED,
    AmbiguousRecordId,
    FrozenAuthor,
    IngestReport,
    LogEntry,
    RecordNotFound,
    Rejection,
    Store,
    StoredRecord,
)

__all__ = [
    "AUTHOR_REVOKED",
    "KEY_RETIRED",
    "MAX_LIMIT",
    "AmbiguousRecordId",
    "FrozenAuthor",
    "IngestReport",
    "LogEntry",
    "Peer",
    "PeerBook",
    "QueryFilters",
    "RecordNotFound",
    "Rejection",
    "RotationLimit",
    "StatementBook",
    "Store",
    "StoreError",
    "StoredRecord",
    "StoredStatement",
    "UnknownPeer",
]
