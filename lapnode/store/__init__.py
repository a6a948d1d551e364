"""The local record store (SQLite by default, PostgreSQL when configured)."""

from lapnode.store.audit import (
    ACTIONS,
    AuditCheck,
    AuditEntry,
    AuditEvent,
    AuditFilters,
    AuditHead,
    AuditTrail,
    BrokenEntry,
)
from lapnode.store.drafts import Draft, DraftAdded, DraftBook, UnknownDraft
from lapnode.store.engine import StoreError
from lapnode.store.exports import ExportLog, ExportRow, filter_clause
from lapnode.store.peers import Peer, PeerBook, UnknownPeer
from lapnode.store.quarantine import QuarantinedRecord
from lapnode.store.queries import MAX_LIMIT, QueryFilters
from lapnode.store.statements import RotationLimit, StatementBook, StoredStatement
from lapnode.store.store import (
    AUTHOR_REVOKED,
    KEY_RETIRED,
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
from lapnode.store.tokens import TokenBook, TokenEntry, UnknownToken
from lapnode.store.versions import History, Version

__all__ = [
    "ACTIONS",
    "AUTHOR_REVOKED",
    "KEY_RETIRED",
    "MAX_LIMIT",
    "AmbiguousRecordId",
    "Arrival",
    "AuditCheck",
    "AuditEntry",
    "AuditEvent",
    "AuditFilters",
    "AuditHead",
    "AuditTrail",
    "BrokenEntry",
    "Draft",
    "DraftAdded",
    "DraftBook",
    "ExportLog",
    "ExportRow",
    "FrozenAuthor",
    "History",
    "IngestReport",
    "LogEntry",
    "Peer",
    "PeerBook",
    "QuarantinedRecord",
    "QueryFilters",
    "RecordNotFound",
    "Rejection",
    "RotationLimit",
    "Screen",
    "StatementBook",
    "Store",
    "StoreError",
    "StoredRecord",
    "StoredStatement",
    "TokenBook",
    "TokenEntry",
    "UnknownDraft",
    "UnknownPeer",
    "UnknownToken",
    "Verdict",
    "Version",
    "filter_clause",
]
