"""Writing verified records: idempotence, the hash chain and equivocation (protocol/SPEC.md §3.5).

Rule 1: a record already held is a no-op; a batch may repeat a record, arrive out of order or after a
crash half-way through an earlier batch.
Rule 2: gaps in an author's sequence are normal (scope withholds records), so a missing predecessor is
never an error. A chain link is checked whenever both neighbours are held.
Rule 3: two valid records at one (author, seq), or a `prev` that names another record than the one held
at seq-1, is equivocation: both records are kept as evidence and the author's feed is frozen.
Rule 4: all writes of one batch happen in the caller's transaction; the caller acknowledges only after
it commits.
Rule 5: a record whose author's key has been revoked (a stored revocation, SPEC §8.7) is refused unless
already held, and so is one whose author's key a stored rotation retired, unless the record falls within
the key's validity: made before the rotation, at a sequence number the rotation handed over (§8.8). The
statements and this check are read in one transaction.
Rule 6: a record that a held tombstone of its author retracts, or that is expired already, is stored as
a purged stub, never with its content (lapnode.store.lifecycle, SPEC §8.10, §4).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from lapnode.store.lifecycle import EXPIRED, RETRACTED, Authority, stub_for
from lapnode.store.schema import authors, equivocations, records, terms
from lapnode.store.sql import bulk_insert, execute, fetch_all, select_in
from lapnode.store.statements import held_about
from lapnode.verification.rows import RecordRow
from lapnode.verification.worker import AuthorKeys, verify
from protocol.envelope import RecordId

_SPANS_PER_STATEMENT = 50


@dataclass
class WriteOutcome:
    stored: list[RecordId] = field(default_factory=list)
    duplicates: int = 0
    refused: dict[RecordId, str] = field(default_factory=dict)
    frozen: set[bytes] = field(default_factory=set)
    relogged: int = 0
    # The highest log position this write gave a new record (0 if none): the store's new head.
    last_position: int = 0
    # What was appended to the log: (position, row, relay hops), for the store's in-memory tail.
    logged: list[tuple[int, RecordRow, int]] = field(default_factory=list)

    def merge(self, other: WriteOutcome) -> None:
        self.stored.extend(other.stored)
        self.duplicates += other.duplicates
        self.refused.update(other.refused)
        self.frozen.update(other.frozen)
        self.relogged += other.relogged
        self.last_position = max(self.last_position, other.last_position)
        self.logged.extend(other.logged)


@dataclass(frozen=True, slots=True)
class _Held:
    rid: bytes
    prev: bytes | None


async def author_rows(conn: AsyncConnection, keys: Iterable[bytes]) -> tuple[dict[bytes, int], set[int]]:
    """Row ids for these author keys (creating rows for new authors), and which of those are frozen."""
    wanted = sorted(set(keys))
    rows = await select_in(conn, "SELECT key, id, frozen_at FROM authors WHERE key IN ({values})", wanted)
    found = {bytes(key): author_id for key, author_id, _ in rows}
    frozen = {author_id for _, author_id, frozen_at in rows if frozen_at is not None}
    missing = sorted(set(wanted) - set(found))
    if missing:
        created = await conn.execute(
            insert(authors).returning(authors.c.key, authors.c.id, sort_by_parameter_order=True),
            [{"key": key} for key in missing],
        )
        found.update({row.key: row.id for row in created})
    return found, frozen


async def author_ids(conn: AsyncConnection, keys: Iterable[bytes]) -> dict[bytes, int]:
    """Row ids for these author keys, creating rows for new authors."""
    return (await author_rows(conn, keys))[0]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a batch came from: the peer row (and key) that sent it, and each record's relay hop count."""

    source_id: int | None = None
    hops: Mapping[bytes, int] = field(default_factory=dict)
    source_key: bytes | None = None

    def relays(self, rid: bytes, author: bytes) -> int:
        return relay_count(self.hops[rid], author, self.source_key)


def relay_count(stated: int, author: bytes, source: bytes | None) -> int:
    """The hop count to keep: a sender that is not the author is at least one relay, whatever it
    states, so it cannot make a record look closer to its author than it is (SPEC §6.5 rule 6)."""
    if source is not None and author != source:
        return max(stated, 1)
    return stated


LOCAL = Origin()


async def write_records(
    conn: AsyncConnection,
    batch: Sequence[RecordRow],
    *,
    now_ms: int,
    network: str,
    origin: Origin = LOCAL,
    none_held: bool = False,
) -> WriteOutcome:
    """Store verified records. The caller holds a write transaction on `conn`.

    `none_held` is the caller's promise that, in this transaction, it already found that no record of
    `batch` is held (Store.ingest checks before verifying), which saves looking again.
    """
    outcome = WriteOutcome()
    unique: dict[bytes, RecordRow] = {}
    for record in batch:
        if record.id in unique:
            outcome.duplicates += 1
        else:
            unique[record.id] = record
    known = {} if none_held else await known_ids(conn, list(unique))
    outcome.duplicates += len(known)
    outcome.relogged += await relog_shorter_paths(conn, known, origin, network=network)
    fresh = sorted((r for rid, r in unique.items() if rid not in known), key=lambda r: (r.author, r.seq))
    if not fresh:
        return outcome
    ids, frozen = await author_rows(conn, (r.author for r in fresh))
    statements = await held_about(conn, keys=list(ids), rids=[r.id for r in fresh])
    revoked, retired = statements.revoked, statements.retired
    held = await _neighbours(conn, fresh, ids)
    accepted: list[RecordRow] = []
    for record in fresh:
        author_id = ids[record.author]
        if record.author in revoked:
            outcome.refused[record.id] = "the author's key has been revoked"
            continue
        limit = retired.get(record.author)
        if limit is not None and not limit.allows(record.seq, record.created):
            outcome.refused[record.id] = "the author's key was retired by a rotation before this record"
            continue
        if author_id in frozen:
            outcome.refused[record.id] = "the author's feed is frozen after an equivocation"
            continue
        conflict = _conflict(record, author_id, held)
        held.setdefault((author_id, record.seq), []).append(_Held(record.id, record.prev))
        accepted.append(record)
        if conflict is not None:
            seq, first = conflict
            await _freeze(conn, author_id, seq, first, record.id, now_ms=now_ms)
            frozen.add(author_id)
            outcome.frozen.add(record.author)
    accepted = await _purged_on_arrival(conn, accepted, statements.retractions, now_ms=now_ms)
    outcome.logged = await _insert(conn, accepted, ids, now_ms=now_ms, origin=origin)
    outcome.last_position = outcome.logged[-1][0] if outcome.logged else 0
    outcome.stored.extend(r.id for r in accepted)
    return outcome


async def _purged_on_arrival(
    conn: AsyncConnection, rows: list[RecordRow], retracted: Mapping[bytes, set[bytes]], *, now_ms: int
) -> list[RecordRow]:
    """The rows as they are to be stored: a record its author already retracted (`retracted`: the
    signers of each held tombstone, by record id), or one already expired, becomes a purged stub
    (Rule 6)."""
    if not rows:
        return rows
    authority = Authority(conn)
    result = []
    for row in rows:
        signers = retracted.get(row.id)
        if signers and await authority.may_retract(signers, row.author):
            row = stub_for(row, RETRACTED)
        elif row.expires is not None and row.expires <= now_ms:
            row = stub_for(row, EXPIRED)
        result.append(row)
    return result


def _conflict(
    record: RecordRow, author_id: int, held: dict[tuple[int, int], list[_Held]]
) -> tuple[int, bytes] | None:
    """The (seq, record id) that `record` contradicts, if any."""
    seq = record.seq
    for other in held.get((author_id, seq), []):
        if other.rid != record.id:
            return seq, other.rid
    if record.prev is not None:
        for before in held.get((author_id, seq - 1), []):
            if before.rid != record.prev:
                return seq - 1, before.rid
    for after in held.get((author_id, seq + 1), []):
        if after.prev != record.id:
            return seq, after.rid
    return None


async def known_ids(conn: AsyncConnection, rids: list[bytes]) -> dict[bytes, tuple[int, int, bytes]]:
    """For each id already held: its log position, stored hop count and author key."""
    rows = await select_in(
        conn,
        "SELECT records.rid, records.id, records.hops, authors.key FROM records"
        " JOIN authors ON records.author_id = authors.id WHERE records.rid IN ({values})",
        rids,
    )
    return {bytes(rid): (position, hops, bytes(key)) for rid, position, hops, key in rows}


async def relog_shorter_paths(
    conn: AsyncConnection, known: dict[bytes, tuple[int, int, bytes]], origin: Origin, *, network: str
) -> int:
    """Move records that just arrived by a shorter path to the end of the log, with the smaller count.

    A node keeps one copy of a record, and the hop count decides whether it may relay it (SPEC §6.5).
    If the first copy came the long way, its count may forbid relaying; a later copy straight from the
    author must lift that, or nodes beyond us within the author's relay limit never get the record.
    Re-logging gives the record a new position, so every feed considers it again.
    """
    shorter = [
        (position, relays)
        for rid, (position, hops, author) in known.items()
        if rid in origin.hops and (relays := origin.relays(rid, author)) < hops
    ]
    if not shorter:
        return 0
    first = await next_position(conn)
    moves = [(position, first + offset, hops) for offset, (position, hops) in enumerate(sorted(shorter))]
    await _move_terms(conn, [(old, new) for old, new, _ in moves], network=network)
    for old, new, hops in moves:
        await conn.execute(
            update(records).where(records.c.id == old).values(id=new, hops=hops, source_id=origin.source_id)
        )
    return len(moves)


async def _move_terms(conn: AsyncConnection, moves: Sequence[tuple[int, int]], *, network: str) -> None:
    """Give the index terms of each relogged record (old position, new position) its new position.

    They are found by full key, recomputed from the record as stored (terms has no index by record, and no
    foreign key to cascade: schema.py). A stored record that no longer verifies (altered in the database)
    has its terms found by a scan, as the purge does.
    """
    query = "SELECT id, wire FROM records WHERE id IN ({values})"
    stored = dict(await select_in(conn, query, [old for old, _ in moves]))
    keys = AuthorKeys()
    by_key: list[dict[str, object]] = []
    for old, new in moves:
        verified = verify(bytes(stored[old]), network, keys)
        if isinstance(verified, str):
            await execute(conn, "UPDATE terms SET record_id = {} WHERE record_id = {}", (new, old))
            continue
        by_key += [{"v": v, "t": t, "old": old, "new": new} for t, v in RecordRow.of(verified).terms]
    if by_key:
        await conn.execute(
            update(terms)
            .where(terms.c.value == bindparam("v"), terms.c.term_type == bindparam("t"))
            .where(terms.c.record_id == bindparam("old"))
            .values(record_id=bindparam("new")),
            by_key,
        )


async def _neighbours(
    conn: AsyncConnection, fresh: Sequence[RecordRow], ids: dict[bytes, int]
) -> dict[tuple[int, int], list[_Held]]:
    """Records already held at seq-1 .. seq+1 of every incoming record, by (author, seq).

    Driver-level SQL: building one SQLAlchemy clause per author cost about 28 µs a record on the
    ingest path, more than the query itself.
    """
    spans: dict[int, tuple[int, int]] = {}
    for record in fresh:
        author_id = ids[record.author]
        low, high = spans.get(author_id, (record.seq, record.seq))
        spans[author_id] = (min(low, record.seq), max(high, record.seq))
    held: dict[tuple[int, int], list[_Held]] = {}
    items = list(spans.items())
    for start in range(0, len(items), _SPANS_PER_STATEMENT):
        chunk = items[start : start + _SPANS_PER_STATEMENT]
        where = " OR ".join("(author_id = {} AND seq BETWEEN {} AND {})" for _ in chunk)
        params = tuple(value for author_id, (low, high) in chunk for value in (author_id, low - 1, high + 1))
        # Constant text only: every value is a parameter.
        statement = "SELECT author_id, seq, rid, prev FROM records WHERE " + where  # noqa: S608
        for author_id, seq, rid, prev in await fetch_all(conn, statement, params):
            held.setdefault((author_id, seq), []).append(
                _Held(bytes(rid), bytes(prev) if prev is not None else None)
            )
    return held


async def next_position(conn: AsyncConnection) -> int:
    """The log position the next record written gets (the caller holds the write lock)."""
    ((head,),) = await fetch_all(conn, "SELECT COALESCE(MAX(id), 0) FROM records", ())
    return int(head) + 1


async def _freeze(
    conn: AsyncConnection, author_id: int, seq: int, first: bytes, second: bytes, *, now_ms: int
) -> None:
    await conn.execute(
        insert(equivocations).values(
            author_id=author_id, seq=seq, first_rid=first, second_rid=second, detected_at=now_ms
        )
    )
    await conn.execute(
        update(authors)
        .where(authors.c.id == author_id, authors.c.frozen_at.is_(None))
        .values(frozen_at=now_ms, frozen_reason=f"two records at sequence {seq}")
    )


async def _insert(
    conn: AsyncConnection, batch: Sequence[RecordRow], ids: dict[bytes, int], *, now_ms: int, origin: Origin
) -> list[tuple[int, RecordRow, int]]:
    """Insert the rows; return each one's log position and relay hops, in log order."""
    if not batch:
        return []
    # Row ids are handed out here, under the write lock, rather than returned by the database: one
    # executemany without RETURNING is a single round trip on every driver.
    first = await next_position(conn)
    rows = [
        (
            first + offset,
            r.id,
            ids[r.author],
            r.seq,
            r.prev,
            r.kind,
            r.created,
            r.tlp,
            r.scope,
            r.expires,
            now_ms,
            r.search_text,
            r.wire,
            origin.hops.get(r.id, 0),
            origin.source_id,
            r.purged,
            r.supersedes,
        )
        for offset, r in enumerate(batch)
    ]
    await bulk_insert(conn, records, _RECORD_COLUMNS, rows)
    term_rows = [
        (value, term_type, first + offset)
        for offset, record in enumerate(batch)
        for term_type, value in record.terms
    ]
    if term_rows:
        await bulk_insert(conn, terms, ("value", "term_type", "record_id"), term_rows)
    return [(int(first) + offset, r, origin.hops.get(r.id, 0)) for offset, r in enumerate(batch)]


_RECORD_COLUMNS = (
    "id",
    "rid",
    "author_id",
    "seq",
    "prev",
    "kind",
    "created",
    "tlp",
    "scope",
    "expires",
    "received_at",
    "search_text",
    "wire",
    "hops",
    "source_id",
    "purged",
    "supersedes",
)
