"""The local store: every verified record this node holds, behind one small async API.

Rule 1: bytes enter only through `ingest` (which verifies them) or `publish` (which signs them); what
comes out is re-verified, so a tampered database cannot show a forged record. Only what comes out is:
a read filters and cuts at its limit in the database, then verifies the rows it returns (about 0.1 ms
of CPU each; docs/performance.md, "Query and search", says why no cheaper check replaces it).
Rule 2: a batch is acknowledged (its report returned) only after its transaction commits.
Rule 3: one author's sequence numbers are handed out under the database's write lock: two concurrent
publishes can never sign two records at one sequence number.
Rule 4: records from a peer pass its inbound screen (lapnode.policy.decide_inbound) after verification
and before anything is written: rejected ones are not stored, quarantined ones are kept aside
(lapnode.store.quarantine), outside every query and feed. A copy of a record already held passes it
too before it may shorten the stored path (SPEC §6.5 rule 6): what the screen refuses changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from sqlalchemy import ColumnElement, Select, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from lapnode.errors import LapnodeError
from lapnode.store import quarantine
from lapnode.store.audit import AuditTrail
from lapnode.store.drafts import DraftBook
from lapnode.store.engine import StoreError, WriteTransaction, create_engine, migrate
from lapnode.store.exports import ExportLog
from lapnode.store.held import HeldIds
from lapnode.store.lifecycle import (
    EXPIRED,
    PURGE_CHUNK,
    RETENTION,
    Authority,
    PurgeReport,
    apply_retractions,
    due_rows,
    expired_clause,
    purge_rows,
    retention_clause,
)
from lapnode.store.peers import PeerBook, advance_cursor
from lapnode.store.quarantine import QuarantinedRecord, SetAside
from lapnode.store.queries import ROW_COLUMNS, QueryFilters, build_query, check_limit, id_range, live_clause
from lapnode.store.ranked import newest_ids
from lapnode.store.schema import authors, equivocations, records
from lapnode.store.search import SearchIndex
from lapnode.store.sql import fetch_all, select_in
from lapnode.store.statements import KeyStanding, StatementBook, key_standing
from lapnode.store.tail import LogTail
from lapnode.store.tokens import TokenBook
from lapnode.store.verifier import Ahead, Verifier
from lapnode.store.versions import History, history
from lapnode.store.writer import (
    Origin,
    WriteOutcome,
    author_ids,
    known_ids,
    next_position,
    relay_count,
    relog_shorter_paths,
    write_records,
)
from lapnode.verification.rows import RecordRow
from lapnode.verification.worker import Verified
from protocol.envelope import Record, RecordId, peek_record_id
from protocol.gossip import Ranges
from protocol.scope import Scope, scope_from_canonical


class RecordNotFound(LapnodeError):
    """No record with that id (or id prefix) is held by this node."""


class AmbiguousRecordId(LapnodeError):
    """The id prefix matches more than one record; give more characters."""


POLL_INTERVAL = 0.25
CURSOR_DEFERRAL_S = 10.0
# Verified records are written in groups of about this many, not one worker chunk at a time: each write
# is a fixed handful of statements (authors, statements, neighbours, log head, records, terms), and with
# a subscriber's chunks of 125 to 256 records those statements were several microseconds a record.
WRITE_GROUP = 2048

_HOLDINGS = """
    SELECT a.key, MIN(s.seq), MAX(s.seq)
    FROM (
        SELECT author_id, seq, seq - ROW_NUMBER() OVER (PARTITION BY author_id ORDER BY seq) AS island
        FROM (SELECT DISTINCT author_id, seq FROM records {where}) AS held
    ) AS s
    JOIN authors AS a ON a.id = s.author_id
    GROUP BY a.key, s.island
    ORDER BY a.key, MIN(s.seq)
    """
# Driver-level (lapnode/store/sql.py): the log read of a feed, run on every growth the tail misses.
_READ_LOG = (
    "SELECT r.id, r.hops, p.key, r.wire, a.key, r.seq, r.kind, r.scope, r.rid, r.purged "
    "FROM records AS r JOIN authors AS a ON r.author_id = a.id "
    "LEFT OUTER JOIN peers AS p ON r.source_id = p.id "
    "WHERE r.id > {} ORDER BY r.id LIMIT {}"
)
_KIND_AFTER = "SELECT id FROM records WHERE id > {} AND kind = {} LIMIT 1"
# What an inbound screen reads of records held (`_admitted`), for a chunk of their ids.
_HEADERS_OF = (
    "SELECT r.rid, a.key, r.seq, r.kind, r.scope FROM records AS r "
    "JOIN authors AS a ON r.author_id = a.id WHERE r.rid IN ({values})"
)
_ALL_HOLDINGS = text(_HOLDINGS.format(where=""))
# What a publisher cannot bring closer (SPEC §6.5 rule 2): what we hold from its author directly, and
# what we hold at one relay unless the publisher is that record's author.
_HOLDINGS_FOR = text(
    _HOLDINGS.format(
        where="WHERE hops = 0 OR (hops = 1 AND author_id <> "
        "COALESCE((SELECT id FROM authors WHERE key = :publisher), -1))"
    )
)


class LogEntry(NamedTuple):
    """One record in this node's log, with what a feed needs to decide on it without decoding it.

    The fields were taken from the verified header when the record was stored. A named tuple, not a
    frozen dataclass: one is built for every record a feed reads and every record stored (the log tail),
    and the dataclass's `__init__` cost 1.2 µs against 0.3.
    """

    position: int
    hops: int
    source: bytes | None
    wire: bytes
    author: bytes
    seq: int
    kind: str
    scope: Scope
    rid: bytes
    # Why its content is gone (lapnode.store.lifecycle), or None: a feed never sends a purged record.
    purged: str | None = None


# A held record whose author's key was revoked after we stored it (SPEC §8.7): kept, shown, not relayed.
AUTHOR_REVOKED = "author-revoked"
# A held record that its author's key rotation says the old key never made (SPEC §8.8): it arrived
# before the rotation did, and lies past the rotation's time or last sequence number.
KEY_RETIRED = "key-retired"


@dataclass(frozen=True)
class StoredRecord:
    record: Record
    received_at: int
    # Relays the record passed before it reached us (0: ours, imported, or straight from its author).
    hops: int = 0
    # What this node knows against the record since it was stored, e.g. AUTHOR_REVOKED.
    flags: tuple[str, ...] = ()
    # Why its content is gone ("retracted", "expired", "retention"), or None: `record` is then the
    # all-withheld copy, with no body to show.
    purged: str | None = None


@dataclass(frozen=True)
class Rejection:
    index: int
    reason: str
    # True when the bytes failed verification (the sender's fault); False when a valid record was
    # refused by a rule of ours (a frozen author, or the inbound screen).
    invalid: bool = True
    # True when the inbound screen rejected it; `misbehaved` when because the sender broke the author's
    # scope by sending it (rather than a local rule of ours refusing it).
    by_policy: bool = False
    misbehaved: bool = False


@dataclass(frozen=True)
class IngestReport:
    stored: list[RecordId]
    duplicates: int
    rejected: list[Rejection]
    frozen_authors: list[bytes]
    quarantined: list[RecordId] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Arrival:
    """A verified record as it arrives from a peer: what an inbound decision reads of it
    (lapnode.policy.Disclosable)."""

    id: RecordId
    author: bytes
    seq: int
    kind: str
    scope: Scope


class Verdict(Protocol):
    """What a screen answers (lapnode.policy.InboundDecision): accept, quarantine or reject, and why."""

    @property
    def action(self) -> str: ...

    @property
    def reasons(self) -> tuple[str, ...]: ...

    @property
    def misbehaved(self) -> bool: ...


# Called with each verified arrival and the relay count it came with.
Screen = Callable[[Arrival, int], Verdict]


@dataclass(frozen=True)
class FrozenAuthor:
    author: bytes
    frozen_at: int
    reason: str
    evidence: list[tuple[int, bytes, bytes]]


# What a read returns of each record: the wire bytes, when it arrived, its relay count, why purged.
_Row = tuple[bytes, int, int, str | None]


def _log_entry(position: int, row: RecordRow, hops: int, source: bytes | None) -> LogEntry:
    """The entry `read_log` would return for a row just written (the in-memory tail's form)."""
    return LogEntry(
        position,
        hops,
        source,
        row.wire,
        row.author,
        row.seq,
        row.kind,
        scope_from_canonical(row.scope),
        row.id,
        row.purged,
    )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Store:
    def __init__(self, engine: AsyncEngine, verifier: Verifier) -> None:
        self._engine = engine
        self._verifier = verifier
        self.network = verifier.network
        self.peers = PeerBook(engine)
        self.audit = AuditTrail(engine)
        # Interop (lapnode/interop): drafts from imports, TAXII tokens, and the log as exports read it.
        self.drafts = DraftBook(engine)
        self.taxii_tokens = TokenBook(engine)
        self.exports = ExportLog(engine)
        self.statements = StatementBook(engine, network=self.network, on_purge=self._purged)
        self.search = SearchIndex(engine)
        # One watcher per store, however many feeds wait on it: a cached head, refreshed by a query
        # at most every POLL_INTERVAL (for other processes' writes) and at once after our own commits,
        # and an event replaced on every growth so that all waiters wake together.
        self._head = 0
        self._head_checked = 0.0
        self._log_grew = asyncio.Event()
        self._held = HeldIds()
        self._tail: LogTail[LogEntry] = LogTail()
        # Log reads in flight, by (after, limit): feeds asking for the same stretch share one query.
        self._log_reads: dict[tuple[int, int], asyncio.Future[list[LogEntry]]] = {}
        # A batch of copies only is acknowledged without a transaction; the cursor it brings is
        # written with the peer's next real batch. Lost on a restart, it costs only those copies again.
        self._deferred_cursors: dict[bytes, tuple[int, float]] = {}

    @classmethod
    async def open(cls, url: str, *, network: str) -> Store:
        engine = create_engine(url)
        try:
            await migrate(engine)
        except StoreError:
            await engine.dispose()
            raise
        except (SQLAlchemyError, OSError) as exc:
            await engine.dispose()
            raise StoreError(f"cannot open the store at {_safe_url(url)}: {_short(exc)}") from exc
        return cls(engine, Verifier(network))

    def warm_up(self) -> None:
        """Start the verification workers now (a daemon or a bulk import), not on the first big batch."""
        self._verifier.warm_up()

    async def close(self) -> None:
        self._verifier.close()
        await self._engine.dispose()

    async def ingest(
        self,
        raws: Sequence[bytes],
        *,
        source: bytes | None = None,
        hops: Sequence[int] | None = None,
        cursor: int | None = None,
        screen: Screen | None = None,
        ahead: Ahead | None = None,
    ) -> IngestReport:
        """Verify and store records received from anywhere; idempotent; one transaction per call.

        `source` is the peer that sent them (with each record's relay `hops`), and `cursor` the
        position in that peer's log they bring us to; it is committed with the records. `screen`, the
        peer's inbound decision, sees every verified record before it is written (Rule 4). `ahead` is
        verification `verify_ahead` started for these `raws` earlier; its jobs are used or cancelled.
        """
        try:
            return await self._ingest(
                raws, source=source, hops=hops, cursor=cursor, screen=screen, ahead=ahead
            )
        finally:
            if ahead is not None:
                ahead.cancel()

    def verify_ahead(self, raws: Sequence[bytes]) -> Ahead:
        """Start verifying, in the worker pool, the records of `raws` not known to be held, so that the
        caller can pass the result to `ingest` of these same `raws` later: the next batch verifies while
        this one is written (lapnode.store.verifier Rule 5). With nothing worth starting early, it has no
        jobs, but its peeked ids still spare `ingest` a second peek."""
        peeked = [peek_record_id(raw) for raw in raws]
        positions = [i for i, rid in enumerate(peeked) if rid is None or not self._held.holds(rid)]
        started = self._verifier.start(raws, positions, peeked)
        return started if started is not None else Ahead((), tuple(peeked))

    async def _verify_todo(
        self, raws: Sequence[bytes], todo: list[int], ahead: Ahead | None
    ) -> AsyncIterator[list[tuple[int, Verified]]]:
        """(position, stored form or rejection) for every record of `todo`, a chunk at a time: from
        `ahead` where it started them, and verified now where it did not."""
        wanted = set(todo)
        covered = ahead.positions if ahead is not None else set()
        now = [i for i in todo if i not in covered]
        done = 0
        async for chunk in self._verifier.verify_rows([raws[i] for i in now]):
            yield list(zip(now[done : done + len(chunk)], chunk, strict=True))
            done += len(chunk)
        if ahead is not None and not wanted.isdisjoint(covered):
            async for results in ahead.results():
                yield [(position, result) for position, result in results if position in wanted]

    async def _ingest(
        self,
        raws: Sequence[bytes],
        *,
        source: bytes | None,
        hops: Sequence[int] | None,
        cursor: int | None,
        screen: Screen | None,
        ahead: Ahead | None,
    ) -> IngestReport:
        rejected: list[Rejection] = []
        outcome = WriteOutcome()
        index: dict[bytes, int] = {}
        hop_counts: dict[bytes, int] = {}
        if ahead is not None and ahead.peeked is not None and len(ahead.peeked) == len(raws):
            peeked = list(ahead.peeked)
        else:
            peeked = [peek_record_id(raw) for raw in raws]
        if (not raws or self._held.all_held(peeked, hops)) and self._defer_cursor(source, cursor):
            return IngestReport([], len(raws), [], [])
        if source is not None and source in self._deferred_cursors:
            deferred, _ = self._deferred_cursors.pop(source)
            cursor = deferred if cursor is None else max(cursor, deferred)
        set_aside: list[RecordId] = []
        async with self._write() as conn:
            origin = await self._origin(conn, source, hop_counts)
            todo = await self._skip_held(conn, peeked, hops, origin, outcome, screen)
            verified: list[RecordRow] = []
            aside: list[SetAside] = []
            async for chunk in self._verify_todo(raws, todo, ahead):
                for position, result in chunk:
                    if isinstance(result, str):
                        rejected.append(Rejection(position, result))
                        continue
                    hop = relay_count(hops[position] if hops is not None else 0, result.author, source)
                    verdict = screen(_arrival(result), hop) if screen is not None else None
                    if verdict is not None and verdict.action != "accept":
                        if verdict.action == "quarantine":
                            aside.append(SetAside(result, hop, verdict.reasons))
                        else:  # reject, and anything a screen should never answer: fail closed
                            reason = "; ".join(verdict.reasons) or "refused by the inbound screen"
                            rejected.append(
                                Rejection(
                                    position,
                                    reason,
                                    invalid=False,
                                    by_policy=True,
                                    misbehaved=verdict.misbehaved,
                                )
                            )
                        continue
                    index.setdefault(result.id, position)
                    if hops is not None:
                        hop_counts.setdefault(result.id, hop)
                    verified.append(result)
                if len(verified) + len(aside) >= WRITE_GROUP:
                    set_aside += await self._write_group(conn, verified, aside, origin, outcome)
                    verified, aside = [], []
            set_aside += await self._write_group(conn, verified, aside, origin, outcome)
            if source is not None:
                await advance_cursor(conn, source, cursor, received=len(outcome.stored), now_ms=_now_ms())
        self._held.note((rid, hop_counts.get(rid, 0)) for rid in outcome.stored)
        if outcome.relogged:
            self._tail.clear()
            await self._note_growth()
        elif outcome.stored:
            source_key = source if origin.source_id is not None else None
            # A 10,000-record bundle would build 10,000 entries for the tail to keep the newest 4,096.
            newest = outcome.logged[-self._tail.limit :]
            self._tail.add(_log_entry(position, row, hops, source_key) for position, row, hops in newest)
            self._grown_to(outcome.last_position)
        rejected += [Rejection(index[rid], reason, invalid=False) for rid, reason in outcome.refused.items()]
        rejected.sort(key=lambda r: r.index)
        return IngestReport(outcome.stored, outcome.duplicates, rejected, sorted(outcome.frozen), set_aside)

    async def _write_group(
        self,
        conn: AsyncConnection,
        verified: list[RecordRow],
        aside: list[SetAside],
        origin: Origin,
        outcome: WriteOutcome,
    ) -> list[RecordId]:
        """Write one group of verified records (and hold the quarantined ones); return the held ids."""
        if verified:
            written = await write_records(
                conn, verified, now_ms=_now_ms(), network=self.network, origin=origin, none_held=True
            )
            outcome.merge(written)
        if not aside:
            return []
        return await quarantine.hold(conn, aside, source_id=origin.source_id, now_ms=_now_ms())

    def _defer_cursor(self, source: bytes | None, cursor: int | None) -> bool:
        """Keep the cursor of a batch that stores nothing in memory rather than write it now.

        Most such batches are a publisher saying "caught up" after every record it sent, or copies
        already held; writing each one's cursor was most of a relaying node's transactions. A cursor
        waits at most CURSOR_DEFERRAL_S; False means it is due, and the caller writes it.
        """
        if source is None or cursor is None:
            return True
        now = time.monotonic()
        deferred, since = self._deferred_cursors.get(source, (0, now))
        if now - since >= CURSOR_DEFERRAL_S:
            return False
        self._deferred_cursors[source] = (max(cursor, deferred), since)
        return True

    async def _skip_held(
        self,
        conn: AsyncConnection,
        peeked: Sequence[RecordId | None],
        hops: Sequence[int] | None,
        origin: Origin,
        outcome: WriteOutcome,
        screen: Screen | None,
    ) -> list[int]:
        """Positions in the batch still to verify: copies of records already held are counted as
        duplicates without verifying them again (on a mesh most arrivals are such copies)."""
        held = await known_ids(conn, [rid for rid in peeked if rid is not None])
        self._held.note((rid, stored_hops) for rid, (_, stored_hops, _author) in held.items())
        if hops is not None and held:
            offered: dict[bytes, int] = {rid: hops[i] for i, rid in enumerate(peeked) if rid in held}
            closer = _closer(offered, held, origin.source_key)
            if screen is not None and closer:
                closer = await _admitted(conn, closer, origin.source_key, screen)
            outcome.relogged += await relog_shorter_paths(
                conn, held, Origin(origin.source_id, closer, origin.source_key), network=self.network
            )
        # A record repeated within the batch is verified once; the repeats count as duplicates. So no
        # record still to verify is held or repeated, which spares write_records a second lookup.
        todo: list[int] = []
        seen: set[bytes] = set()
        for i, rid in enumerate(peeked):
            if rid is None:
                todo.append(i)
            elif rid in held or rid in seen:
                outcome.duplicates += 1
            else:
                seen.add(rid)
                todo.append(i)
        return todo

    async def quarantined(self) -> list[QuarantinedRecord]:
        """Every record held in quarantine, oldest first, re-verified like everything read from the store."""
        async with self._engine.connect() as conn:
            held = await quarantine.all_held(conn)
        return [
            QuarantinedRecord(self._verified(row.wire), row.received_at, row.hops, row.source, row.reasons)
            for row in held
        ]

    async def release(self, id_or_prefix: str) -> Record:
        """Store a quarantined record as if it had just arrived from the same peer (quarantine Rule 2)."""
        async with self._write() as conn:
            row = await self._one_held(conn, id_or_prefix)
            record = self._verified(row.wire)
            origin = Origin(row.source_id, {record.id: row.hops})
            outcome = await write_records(
                conn, [RecordRow.of(record)], now_ms=_now_ms(), network=self.network, origin=origin
            )
            if record.id in outcome.refused:
                raise StoreError(f"cannot release {record.id.hex()}: {outcome.refused[record.id]}")
            await quarantine.remove(conn, row.row_id)
        await self._note_growth()
        return record

    async def drop(self, id_or_prefix: str) -> RecordId:
        """Delete a quarantined record for good."""
        async with self._write() as conn:
            row = await self._one_held(conn, id_or_prefix)
            await quarantine.remove(conn, row.row_id)
        return RecordId(row.rid)

    async def _one_held(self, conn: AsyncConnection, id_or_prefix: str) -> quarantine.HeldRow:
        found = await quarantine.find(conn, id_or_prefix)
        if not found:
            raise RecordNotFound(f"no record {id_or_prefix} in quarantine")
        if len(found) > 1:
            raise AmbiguousRecordId(
                f"{id_or_prefix} matches more than one quarantined record; give more of the id"
            )
        return found[0]

    async def _origin(self, conn: AsyncConnection, source: bytes | None, hops: dict[bytes, int]) -> Origin:
        if source is None:
            return Origin(None, hops)
        found = await fetch_all(conn, "SELECT id FROM peers WHERE key = {}", (source,))
        return Origin(found[0][0] if found else None, hops, source)

    async def head(self) -> int:
        """The newest position in this node's log (0 when empty)."""
        async with self._engine.connect() as conn:
            return await next_position(conn) - 1

    async def read_log(self, after: int, *, limit: int) -> list[LogEntry]:
        """Log entries after a position, in log order. The bytes were verified when they were stored."""
        recent = self._tail.read(after, limit)
        # Memory answers when its run is complete: full, or up to the newest position this store knows.
        if recent is not None and (len(recent) == limit or recent[-1].position >= self._head):
            return recent
        # A feed that has sent everything asks again on every wake; with a head checked within the poll
        # interval (our own commits move it at once) the answer is known to be nothing new, and the
        # query cost a relaying node a connection and four thread trips per feed per record.
        if recent is None and after >= self._head and self._head_is_fresh():
            return []
        # Every feed of a relaying node asks for the same position at once when the log grows by a record
        # this process did not write (another process's publish, or a relog, which clears the tail): one
        # query answers them all, and its rows answer later askers from memory (tail Rule 4).
        key = (after, limit)
        reading = self._log_reads.get(key)
        if reading is None:
            reading = asyncio.ensure_future(self._read_log_rows(after, limit))
            self._log_reads[key] = reading
            reading.add_done_callback(lambda done: self._read_done(key, done))
        return list(await asyncio.shield(reading))

    def _read_done(self, key: tuple[int, int], done: asyncio.Future[list[LogEntry]]) -> None:
        self._log_reads.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved here: when every asker was cancelled, nobody else reads it

    async def _read_log_rows(self, after: int, limit: int) -> list[LogEntry]:
        generation = self._tail.generation
        async with self._engine.connect() as conn:
            rows = await fetch_all(conn, _READ_LOG, (after, limit))
        entries = [
            LogEntry(
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
                row[6],
                scope_from_canonical(row[7]),
                row[8],
                row[9],
            )
            for row in rows
        ]
        # Only the newest entries go to memory: a feed catching up from far behind would otherwise push
        # out what the live feeds are about to read.
        if entries and self._tail.generation == generation and entries[-1].position >= self._head:
            self._tail.add(entries[-self._tail.limit :])
        return entries

    async def holdings(self, *, publisher: bytes | None = None) -> dict[bytes, Ranges]:
        """Per author, the sequence numbers held, as ranges (SPEC §6.5).

        With `publisher`, only the records it could not give us by a shorter path (rule 2): a record
        held at a relay count that `publisher` could lower is left out, so that it offers the record
        again and the shorter path is kept (rule 6). The author itself gives a count of 0, any other
        publisher at least 1. Leaving one in would let a long path that arrived first stop the record
        short of nodes within its author's relay limit.
        """
        query = _ALL_HOLDINGS if publisher is None else _HOLDINGS_FOR.bindparams(publisher=publisher)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        result: dict[bytes, list[tuple[int, int]]] = {}
        for key, low, high in rows:
            result.setdefault(key, []).append((low, high))
        return {key: tuple(ranges) for key, ranges in result.items()}

    async def wait_for_growth(self, beyond: int, *, timeout: float) -> int:
        """Wait until the log has a position past `beyond` (or `timeout` s pass); return the head.

        Records stored by this process wake waiters at once; records stored by another process (the
        CLI publishing while the daemon runs) are seen by polling, every POLL_INTERVAL seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if loop.time() - self._head_checked >= POLL_INTERVAL:
                await self._note_growth()
            remaining = deadline - loop.time()
            if self._head > beyond or remaining <= 0:
                return self._head
            grew = self._log_grew
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(grew.wait(), min(POLL_INTERVAL, remaining))

    def _head_is_fresh(self) -> bool:
        """Whether the cached head was read from the database within POLL_INTERVAL: records other
        processes wrote since are found no later than `wait_for_growth` would find them."""
        checked = self._head_checked
        return checked > 0 and asyncio.get_running_loop().time() - checked < POLL_INTERVAL

    async def _note_growth(self) -> None:
        """Refresh the cached head; wake every waiter if it moved."""
        self._head_checked = asyncio.get_running_loop().time()
        self._grown_to(await self.head())

    def _grown_to(self, head: int) -> None:
        """Our own commit (or a poll) reached `head`; wake every waiter if the head moved."""
        if head > self._head:
            self._head = head
            self._log_grew.set()
            self._log_grew = asyncio.Event()

    async def publish(
        self,
        author: bytes,
        build: Callable[[int, RecordId | None], Record],
        *,
        supersedes: RecordId | None = None,
    ) -> Record:
        """Sign (via `build`) and store this node's next record under the write lock. `supersedes` is
        the version the new record replaces, when its body names one (SPEC §5.1)."""
        async with self._write() as conn:
            ids = await author_ids(conn, [author])
            head = await conn.execute(
                select(records.c.seq, records.c.rid)
                .where(records.c.author_id == ids[author])
                .order_by(records.c.seq.desc())
                .limit(1)
            )
            row = head.first()
            seq, prev = (row.seq + 1, RecordId(row.rid)) if row else (1, None)
            record = build(seq, prev)
            stored = RecordRow.of(record)
            if supersedes is not None:
                # A sealed body hides its link from the store (SPEC §3.7); the author knows it.
                stored = stored._replace(supersedes=supersedes)
            outcome = await write_records(conn, [stored], now_ms=_now_ms(), network=self.network)
            if record.id not in outcome.stored:
                raise StoreError(outcome.refused.get(record.id, "the new record was not stored"))
        self._held.note([(record.id, 0)])
        await self._note_growth()
        return record

    async def get(self, id_or_prefix: str) -> StoredRecord:
        low, high = id_range(id_or_prefix)
        query = records.c.rid.between(low, high)
        found = await self._read(select(*ROW_COLUMNS).where(query).limit(2))
        if not found:
            raise RecordNotFound(f"no record {id_or_prefix} in this store")
        if len(found) > 1:
            raise AmbiguousRecordId(f"{id_or_prefix} matches more than one record; give more of the id")
        return found[0]

    async def query(self, filters: QueryFilters) -> list[StoredRecord]:
        """The records matching `filters`, newest first (`lapnode query`, bundles, the contacts directory).

        A text query first brings the search index up to date (lapnode/store/search.py, Rule 2). The
        whole read is one connection (a lookup's cost was mostly round trips to the database thread,
        docs/performance.md "Query and search").
        """
        check_limit(filters.limit)
        rows: Sequence[_Row]
        async with self._engine.connect() as conn:
            if filters.text is not None and await self.search.behind_on(conn):
                await conn.rollback()  # a snapshot older than the catch-up would not see its index rows
                await self.search.catch_up()
            positions = await newest_ids(conn, filters)
            if positions is None:
                rows = (await conn.execute(build_query(filters))).all()
            elif positions:
                wanted = select(records.c.id, *ROW_COLUMNS).where(records.c.id.in_(positions))
                by_position = {int(row[0]): tuple(row[1:]) for row in await conn.execute(wanted)}
                rows = [by_position[p] for p in positions if p in by_position]
            else:
                rows = []
            if not rows:
                return []
            standing = await key_standing(conn)
        return self._verified_rows(rows, standing)

    async def live_of_kind(self, kind: str, *, now_ms: int, limit: int) -> list[StoredRecord]:
        """The live records of one kind (`live_clause`), oldest first, at most `limit` of them."""
        query = (
            select(*ROW_COLUMNS)
            .where(records.c.kind == kind, live_clause(now_ms))
            .order_by(records.c.created, records.c.id)
            .limit(limit)
        )
        return await self._read(query)

    async def live_of_kinds(self, kinds: Sequence[str], *, now_ms: int) -> list[StoredRecord]:
        """Every live record (queries.live_clause) of these kinds, oldest first: a small kind's whole
        history, such as the referrals and their statuses (lapnode.referrals)."""
        query = (
            select(*ROW_COLUMNS)
            .where(records.c.kind.in_(list(kinds)), live_clause(now_ms))
            .order_by(records.c.created, records.c.id)
        )
        return await self._read(query)

    async def has_kind_after(self, kind: str, position: int) -> bool:
        """Whether the log holds a record of `kind` past `position`: a range scan of the log, no bytes.

        The in-memory tail answers when it holds every position from `position` to the head this store
        knows (our own commits): the referral desk asks after every growth, and on a relaying node that
        was a connection and a query per record stored."""
        if self._head > position:
            recent = self._tail.read(position, self._head - position)
            if recent is not None and recent[-1].position >= self._head:
                return any(entry.kind == kind for entry in recent)
        async with self._engine.connect() as conn:
            return bool(await fetch_all(conn, _KIND_AFTER, (position, kind)))

    async def history(self, rid: RecordId, *, now_ms: int) -> History:
        """The earlier and later versions of the held record `rid` (lapnode.store.versions)."""
        async with self._engine.connect() as conn:
            return await history(conn, rid, now_ms=now_ms)

    async def count(self) -> int:
        async with self._engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(records))).scalar_one())

    async def frozen_authors(self) -> list[FrozenAuthor]:
        async with self._engine.connect() as conn:
            frozen = (await conn.execute(select(authors).where(authors.c.frozen_at.is_not(None)))).all()
            result = []
            for row in frozen:
                evidence = await conn.execute(
                    select(equivocations.c.seq, equivocations.c.first_rid, equivocations.c.second_rid)
                    .where(equivocations.c.author_id == row.id)
                    .order_by(equivocations.c.id)
                )
                result.append(
                    FrozenAuthor(
                        row.key, row.frozen_at, row.frozen_reason or "", [tuple(e) for e in evidence]
                    )
                )
        return result

    async def last_seq(self, author: bytes) -> int:
        """The highest sequence number held of `author`'s records (0 if none)."""
        query = (
            select(func.coalesce(func.max(records.c.seq), 0))
            .select_from(records.join(authors, records.c.author_id == authors.c.id))
            .where(authors.c.key == author)
        )
        async with self._engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def revoked_keys(self) -> frozenset[bytes]:
        """Node keys named by a stored revocation."""
        return await self.statements.revoked()

    async def _read(self, query: Select[bytes, int, int, str | None]) -> list[StoredRecord]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            if not rows:
                return []
            standing = await key_standing(conn)
        return self._verified_rows(rows, standing)

    def _verified_rows(self, rows: Sequence[_Row], standing: KeyStanding) -> list[StoredRecord]:
        """The stored records of `rows`, each verified again (Rule 1), flagged by their author's standing."""
        result = []
        for wire, received_at, hops, purged in rows:
            verified = self._verified(wire)
            header = verified.header
            flags: list[str] = []
            if header.author in standing.revoked:
                flags.append(AUTHOR_REVOKED)
            limit = standing.retired.get(header.author)
            if limit is not None and not limit.allows(header.seq, header.created):
                flags.append(KEY_RETIRED)
            result.append(StoredRecord(verified, received_at, hops, tuple(flags), purged))
        return result

    async def purge(self, *, now_ms: int, retention: Mapping[str, int]) -> PurgeReport:
        """Purge what is due (SPEC §4, §8.10): records a held tombstone of their author retracts, records
        past their scope's expiry, and records of a kind older than its `retention` (ms; 0 keeps).
        Idempotent, in chunks (lifecycle Rule 4); the daemon runs it periodically, `lapnode purge` once."""
        async with self._write() as conn:
            retracted = await apply_retractions(conn, network=self.network)
        expired = await self._purge_where(expired_clause(now_ms), EXPIRED)
        kept = retention_clause(now_ms, retention)
        too_old = await self._purge_where(kept, RETENTION) if kept is not None else 0
        report = PurgeReport(retracted, expired, too_old)
        if report.total:
            self._purged()
        return report

    async def _purge_where(self, where: ColumnElement[bool], reason: str) -> int:
        count = 0
        while True:
            async with self._write() as conn:
                due = await due_rows(conn, where)
                count += await purge_rows(conn, due, reason, network=self.network)
            if len(due) < PURGE_CHUNK:
                return count

    async def may_retract(self, signer: bytes, author: bytes) -> bool:
        """Whether a tombstone by `signer` takes effect on a record of `author` (lifecycle Rule 2)."""
        async with self._engine.connect() as conn:
            return await Authority(conn).may_retract({signer}, author)

    async def purged_counts(self) -> dict[str, int]:
        """How many held records are purged, by reason."""
        query = (
            select(records.c.purged, func.count())
            .where(records.c.purged.is_not(None))
            .group_by(records.c.purged)
        )
        async with self._engine.connect() as conn:
            return {str(reason): int(count) for reason, count in await conn.execute(query)}

    def _purged(self) -> None:
        """Records' content just went: what memory holds of them must go too (tail Rule 3)."""
        self._tail.clear()

    def forget_recent(self) -> None:
        """Drop the in-memory copy of the newest log entries: another process may have purged some
        (the daemon calls this when it learns of a retraction or runs its purge pass)."""
        self._tail.clear()

    def _verified(self, wire: bytes) -> Record:
        verified = self._verifier.verify_one(wire)
        if isinstance(verified, str):
            raise StoreError(f"a stored record fails verification ({verified}); the store was altered")
        return verified

    def _write(self) -> WriteTransaction:
        return WriteTransaction(self._engine)


def _arrival(row: RecordRow) -> Arrival:
    return Arrival(row.id, row.author, row.seq, row.kind, scope_from_canonical(row.scope))


def _closer(
    offered: dict[bytes, int], held: dict[bytes, tuple[int, int, bytes]], source: bytes | None
) -> dict[bytes, int]:
    """The held records of `offered` (id -> stated hops) that came by a shorter path than the stored one."""
    return {
        rid: stated
        for rid, stated in offered.items()
        if relay_count(stated, held[rid][2], source) < held[rid][1]
    }


async def _admitted(
    conn: AsyncConnection, closer: dict[bytes, int], source: bytes | None, screen: Screen
) -> dict[bytes, int]:
    """Those of `closer` whose copy the peer's inbound screen accepts (Rule 4).

    A copy the screen would not have stored (a local `reject` or `quarantine` rule on this sender, or a
    scope it broke by sending it) must not shorten the stored path either: the count is what lets us
    relay the record, and it would then travel further than the paths we accept allow. The screen reads
    the header of the copy we hold, which has the same id and so the same signed header.
    """
    rows = await select_in(conn, _HEADERS_OF, list(closer))
    admitted: dict[bytes, int] = {}
    for rid, author, seq, kind, scope in rows:
        arrival = Arrival(RecordId(rid), author, seq, kind, scope_from_canonical(scope))
        if screen(arrival, relay_count(closer[rid], author, source)).action == "accept":
            admitted[rid] = closer[rid]
    return admitted


def _safe_url(url: str) -> str:
    """The URL without its password: secrets never appear in errors."""
    return make_url(url).render_as_string(hide_password=True)


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
