"""The local record store (SQLite by default, PostgreSQL when configured)."""

from lapnode.store.engine import StoreError
from lapnode.store.peers import Peer, PeerBook, UnknownPeer
from lapnode.store.quarantine import QuarantinedRecord
from lapnode.store.queries import MAX_LIMIT, QueryFilters
from lapnode.store.store import (
    AmbiguousRecordId,
    Arrival,
    FrozenAuthor,
    IngestReport,
    LogEntry,
    RecordNotFound,
    Rejection,
    Screen,
    Store,
    StoredRecord,
    Verdict,
)

__all__ = [
    "MAX_LIMIT",
    "AmbiguousRecordId",
    "Arrival",
    "FrozenAuthor",
    "IngestReport",
    "LogEntry",
    "Peer",
    "PeerBook",
    "QuarantinedRecord",
    "QueryFilters",
    "RecordNotFound",
    "Rejection",
    "Screen",
    "Store",
    "StoreError",
    "StoredRecord",
    "UnknownPeer",
    "Verdict",
]
