"""The disclosure audit trail: every disclosure decision, append-only and hash-chained.

Rule 1: every exit that asks the policy decision function (gossip, bundle export, `query --as`, ...)
appends what it decided (send, withhold, redact), about which record, for which recipient, why, when
and through which exit, and it does so before it discloses anything. The trail may therefore hold a
decision whose delivery then failed; it never lacks one that was carried out.
Rule 2: entries are only appended, one batch per transaction. Entry n's hash covers entry n-1's hash and
entry n's own fields, position included (`chain_hash`; docs/threat-model.md, "The audit trail"), so
an edit, deletion or reordering in the middle breaks the chain at an entry `verify` names. The table's
triggers refuse UPDATE and DELETE: they stop mistakes, not an attacker; the chain is what shows tampering.
Rule 3: the chain head is read once per batch inside the write transaction that appends the batch
(`WriteTransaction` with the audit lock), so concurrent appenders in any process never fork the chain,
and a batch of any size costs one transaction and a few statements: no statement per entry.
Rule 4: `verify` streams the trail in chunks; memory stays flat however long the trail is.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Row, Select, select
from sqlalchemy.ext.asyncio import AsyncEngine

from lapnode.errors import InputError
from lapnode.store.engine import PG_AUDIT_LOCK, StoreError, WriteTransaction
from lapnode.store.queries import MAX_LIMIT, id_range
from lapnode.store.schema import audit
from lapnode.store.sql import bulk_insert, fetch_all
from protocol import codec

# BLAKE2b's personalisation (16 bytes) separates these hashes from every other hash lapnode computes.
AUDIT_PERSON: Final = b"lapnode-audit-v1"
GENESIS: Final = bytes(32)
VERIFY_CHUNK: Final = 5_000
ACTIONS: Final = ("send", "withhold", "redact")
MAX_LABEL_CHARS: Final = 300
MAX_REASONS: Final = 256
_ACTION = re.compile(r"[a-z][a-z-]{0,15}")
_EXIT = re.compile(r"[a-z][a-z0-9-]{0,31}")


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One disclosure decision, as an exit reports it.

    `recipient` is a node's 32-byte public key, or a text label for a recipient that is not a node
    ("public-export", "bundle:leads.lapb"). `exit` names the way out ("gossip", "bundle-export").
    Raises ValueError for values no exit should produce (a programming error, not an operator's).
    """

    record: bytes
    recipient: bytes | str
    action: str
    reasons: tuple[str, ...]
    time_ms: int
    exit: str

    def __post_init__(self) -> None:
        problem = _event_problem(self)
        if problem is not None:
            raise ValueError(f"audit event: {problem}")


# A feed's decisions differ mostly in their record and time: the same recipient, exit, action and reasons
# come back batch after batch. Those fields' checks (two regular expressions, every reason's text) are
# remembered for the combinations that passed: they were a fifth of a serving daemon's Python time per
# record sent (bench sync). Bounded: cleared when full.
_PASSED: dict[tuple[object, ...], None] = {}
_MAX_PASSED: Final = 4096


def _event_problem(event: AuditEvent) -> str | None:
    key = _remembered_fields(event)
    if key is None:
        return _full_problem(event)
    try:
        if key in _PASSED:
            return None
    except TypeError:  # an unhashable reason: the full check names it
        return _full_problem(event)
    problem = _full_problem(event)
    if problem is None:
        if len(_PASSED) >= _MAX_PASSED:
            _PASSED.clear()
        _PASSED[key] = None
    return problem


def _remembered_fields(event: AuditEvent) -> tuple[object, ...] | None:
    """The fields whose checks may be remembered, or None. The record and time are checked every time."""
    record, recipient, reasons = event.record, event.recipient, event.reasons
    if not (isinstance(record, bytes) and len(record) == 32 and _valid_time(event.time_ms)):
        return None
    if type(recipient) not in (bytes, str) or type(reasons) is not tuple:
        return None
    return (recipient, event.action, event.exit, reasons)


def _valid_time(time_ms: object) -> bool:
    return not isinstance(time_ms, bool) and isinstance(time_ms, int) and 0 <= time_ms < 2**63


def _full_problem(event: AuditEvent) -> str | None:
    if not isinstance(event.record, bytes) or len(event.record) != 32:
        return "record must be a 32-byte record id"
    recipient = event.recipient
    if isinstance(recipient, bytes) and len(recipient) != 32:
        return "a node recipient must be a 32-byte public key"
    if isinstance(recipient, str) and not 0 < len(recipient) <= MAX_LABEL_CHARS:
        return f"a recipient label must have 1 to {MAX_LABEL_CHARS} characters"
    if not isinstance(recipient, bytes | str):
        return "recipient must be a key (bytes) or a label (str)"
    if not isinstance(event.action, str) or not _ACTION.fullmatch(event.action):
        return f"action {event.action!r} is not a lowercase word"
    if not isinstance(event.exit, str) or not _EXIT.fullmatch(event.exit):
        return f"exit {event.exit!r} is not a lowercase name"
    if not isinstance(event.reasons, tuple) or len(event.reasons) > MAX_REASONS:
        return f"reasons must be a tuple of at most {MAX_REASONS} strings"
    if not all(isinstance(reason, str) for reason in event.reasons):
        return "every reason must be a string"
    if not _valid_time(event.time_ms):
        return "time_ms must be a non-negative 64-bit integer"
    try:
        for text in (*event.reasons, recipient if isinstance(recipient, str) else ""):
            text.encode("utf-8")
    except UnicodeEncodeError:
        return "labels and reasons must be valid Unicode text"
    return None


def chain_fields(seq: int, event: AuditEvent) -> dict[str, object]:
    """The fields entry `seq`'s hash covers, as one map written in canonical key order (SPEC §2)."""
    return {
        "action": event.action,
        "exit": event.exit,
        "reasons": list(event.reasons),
        "recipient": event.recipient,
        "record": event.record,
        "seq": seq,
        "time": event.time_ms,
    }


def chain_hash(prev: bytes, seq: int, event: AuditEvent) -> bytes:
    """Entry `seq`'s hash: BLAKE2b-256, personalised, over the previous hash and the canonical fields.

    The fields are one canonical msgpack map (protocol/SPEC.md §2: one value, one encoding); a node
    recipient is a msgpack bin, a label a msgpack str, so the two can never be confused.
    """
    # The map is built in canonical key order and AuditEvent checked every value's type and range, so
    # the codec's pre-canonicalised path gives exactly `codec.encode`'s bytes (a test holds them equal)
    # at a fifth of the cost: the gossip exit hashes every decision it makes.
    fields = codec.encode_decoded(chain_fields(seq, event))
    return hashlib.blake2b(prev + fields, digest_size=32, person=AUDIT_PERSON).digest()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    event: AuditEvent
    prev_hash: bytes
    entry_hash: bytes


@dataclass(frozen=True, slots=True)
class AuditHead:
    """The newest entry's position and hash (0 and the genesis value for an empty trail)."""

    seq: int
    entry_hash: bytes


@dataclass(frozen=True, slots=True)
class BrokenEntry:
    seq: int
    why: str


@dataclass(frozen=True, slots=True)
class AuditCheck:
    """What `verify` found: the entries that chain correctly, and the first one that does not."""

    entries: int
    head: AuditHead
    broken: BrokenEntry | None
    # Whether the head noted earlier is still in the trail (None: no head was given).
    noted_head_found: bool | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None and self.noted_head_found is not False


@dataclass(frozen=True)
class AuditFilters:
    """`record` is a hex id or a prefix of at least 8 characters; times are ms since the epoch."""

    record: str | None = None
    recipient: bytes | str | None = None
    action: str | None = None
    exit: str | None = None
    since: int | None = None
    until: int | None = None
    limit: int = 100


class AuditTrail:
    """The trail of one store. Appends made at the same moment share one transaction (group commit).

    Why: when a record arrives, every subscriber's feed decides about it at once and each appends its
    decision; one write transaction apiece was most of a relaying node's database work. Callers woken
    together join one batch; each still returns only once its own entries are committed.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._waiting: list[tuple[Sequence[AuditEvent], asyncio.Future[AuditHead]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def append(self, events: Sequence[AuditEvent]) -> AuditHead | None:
        """Append a batch in order, committed before this returns; the head after the transaction that
        held it (None if `events` is empty)."""
        if not events:
            return None
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[AuditHead] = loop.create_future()
        self._waiting.append((events, waiter))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        return await waiter

    async def _flush(self) -> None:
        batch: list[tuple[Sequence[AuditEvent], asyncio.Future[AuditHead]]] = []
        try:
            while self._waiting:
                await asyncio.sleep(0)  # let appenders woken by the same event join this batch
                batch, self._waiting = self._waiting, []
                try:
                    head = await self._append_now([event for events, _ in batch for event in events])
                except Exception as exc:  # noqa: BLE001 - every waiter re-raises it
                    for _, waiter in batch:
                        if not waiter.done():
                            waiter.set_exception(exc)
                else:
                    for _, waiter in batch:
                        if not waiter.done():
                            waiter.set_result(head)
                batch = []
        finally:
            # Cancelled (the store is closing): nobody waits forever for a commit that will not come.
            for _, waiter in [*batch, *self._waiting]:
                if not waiter.done():
                    waiter.set_exception(StoreError("the audit trail closed before the entries were written"))

    async def _append_now(self, events: Sequence[AuditEvent]) -> AuditHead:
        async with WriteTransaction(self._engine, lock=PG_AUDIT_LOCK) as conn:
            newest = await fetch_all(conn, "SELECT seq, entry_hash FROM audit ORDER BY seq DESC LIMIT 1", ())
            seq, prev = (newest[0][0], bytes(newest[0][1])) if newest else (0, GENESIS)
            rows = []
            for event in events:
                seq += 1
                entry_hash = chain_hash(prev, seq, event)
                rows.append(_row_values(seq, event, prev, entry_hash))
                prev = entry_hash
            await bulk_insert(conn, audit, _COLUMNS, rows)
        return AuditHead(seq, prev)

    async def head(self) -> AuditHead:
        async with self._engine.connect() as conn:
            newest = select(audit.c.seq, audit.c.entry_hash).order_by(audit.c.seq.desc()).limit(1)
            row = (await conn.execute(newest)).first()
        return AuditHead(row.seq, row.entry_hash) if row is not None else AuditHead(0, GENESIS)

    async def entries(self, filters: AuditFilters) -> list[AuditEntry]:
        """The entries that match, newest first. A row that no longer parses is an error naming it."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(_filtered(filters))).all()
        result = []
        for row in rows:
            entry = _entry(row)
            if isinstance(entry, str):
                raise StoreError(f"audit entry #{row.seq} is malformed ({entry}); run `lapnode audit verify`")
            result.append(entry)
        return result

    async def verify(self, *, noted_head: bytes | None = None, chunk: int = VERIFY_CHUNK) -> AuditCheck:
        """Check every link from the genesis on; report the first broken entry.

        `noted_head` is an entry hash the operator noted earlier (`lapnode audit head`): the trail only
        grows, so it must still be in it. That catches a rewrite of the whole tail, which the chain alone
        cannot (docs/threat-model.md).
        """
        expected, prev, found = 1, GENESIS, noted_head is None
        broken: BrokenEntry | None = None
        async with self._engine.connect() as conn:
            while broken is None:
                page = select(audit).order_by(audit.c.seq).limit(chunk)
                if expected > 1:  # the first page has no lower bound: a row numbered 0 or less is found
                    page = page.where(audit.c.seq >= expected)
                rows = (await conn.execute(page)).all()
                for row in rows:
                    why = _link_problem(row, expected, prev)
                    if why is not None:
                        broken = BrokenEntry(expected, why)
                        break
                    found = found or row.entry_hash == noted_head
                    expected, prev = expected + 1, row.entry_hash
                if len(rows) < chunk:
                    break
        verified = expected - 1
        # A broken chain is the finding; whether the noted head lies beyond the break is not known.
        noted = None if noted_head is None or broken is not None else found
        return AuditCheck(verified, AuditHead(verified, prev), broken, noted)


_COLUMNS = (
    "seq",
    "decided_at",
    "exit",
    "rid",
    "recipient_key",
    "recipient_label",
    "action",
    "reasons",
    "prev_hash",
    "entry_hash",
)


def _row_values(seq: int, event: AuditEvent, prev: bytes, entry_hash: bytes) -> tuple[object, ...]:
    """One row, in _COLUMNS order: the gossip exit appends a row per decision, so rows go to the
    driver as plain tuples (SQLAlchemy's per-row parameter handling cost more than the insert)."""
    recipient = event.recipient
    return (
        seq,
        event.time_ms,
        event.exit,
        event.record,
        recipient if isinstance(recipient, bytes) else None,
        recipient if isinstance(recipient, str) else None,
        event.action,
        _reasons_json(event.reasons),
        prev,
        entry_hash,
    )


# The reasons column of each row as JSON; a feed's rows repeat a few reason tuples (see `_PASSED`).
_REASONS_JSON: dict[tuple[str, ...], str] = {}


def _reasons_json(reasons: tuple[str, ...]) -> str:
    text = _REASONS_JSON.get(reasons)
    if text is None:
        text = json.dumps(list(reasons), ensure_ascii=False, separators=(",", ":"))
        if len(_REASONS_JSON) >= _MAX_PASSED:
            _REASONS_JSON.clear()
        _REASONS_JSON[reasons] = text
    return text


def _entry(row: Row[object]) -> AuditEntry | str:
    """The entry a row holds, or why it is not one (a row altered outside lapnode)."""
    mapping = row._mapping
    try:
        reasons = json.loads(mapping["reasons"])
    except (TypeError, ValueError):
        return "its reasons are not JSON"
    if not isinstance(reasons, list):
        return "its reasons are not a JSON array"
    key, label = mapping["recipient_key"], mapping["recipient_label"]
    recipient = bytes(key) if key is not None else label
    try:
        event = AuditEvent(
            record=bytes(mapping["rid"]),
            recipient=recipient,
            action=mapping["action"],
            reasons=tuple(reasons),
            time_ms=mapping["decided_at"],
            exit=mapping["exit"],
        )
    except (ValueError, TypeError) as exc:
        return str(exc).removeprefix("audit event: ")
    return AuditEntry(mapping["seq"], event, bytes(mapping["prev_hash"]), bytes(mapping["entry_hash"]))


def _link_problem(row: Row[object], expected: int, prev: bytes) -> str | None:
    if row.seq < expected:
        return f"an entry numbered #{row.seq} was put before it"
    if row.seq != expected:
        before = f"from #{expected - 1}" if expected > 1 else "from the start"
        return f"it is missing (the trail goes {before} to #{row.seq})"
    entry = _entry(row)
    if isinstance(entry, str):
        return f"its fields are malformed ({entry})"
    if entry.prev_hash != prev:
        if expected == 1:
            return "its previous-entry hash is not the genesis value"
        return f"its previous-entry hash does not match entry #{expected - 1} (one of the two was altered)"
    if chain_hash(prev, expected, entry.event) != entry.entry_hash:
        return "its contents do not match its hash (it was altered)"
    return None


def _filtered(filters: AuditFilters) -> Select[object]:
    if not 1 <= filters.limit <= MAX_LIMIT:
        raise InputError(f"--limit must be between 1 and {MAX_LIMIT}")
    query = select(audit)
    if filters.record is not None:
        low, high = id_range(filters.record)
        query = query.where(audit.c.rid.between(low, high))
    if isinstance(filters.recipient, bytes):
        query = query.where(audit.c.recipient_key == filters.recipient)
    elif isinstance(filters.recipient, str):
        query = query.where(audit.c.recipient_label == filters.recipient)
    if filters.action is not None:
        query = query.where(audit.c.action == filters.action)
    if filters.exit is not None:
        query = query.where(audit.c.exit == filters.exit)
    if filters.since is not None:
        query = query.where(audit.c.decided_at >= filters.since)
    if filters.until is not None:
        query = query.where(audit.c.decided_at < filters.until)
    return query.order_by(audit.c.seq.desc()).limit(filters.limit)
