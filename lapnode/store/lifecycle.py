"""Purging records: retraction tombstones, expiry and retention per kind (SPEC §4, §8.10).

Rule 1: a purge keeps the row. The stored wire becomes the all-withheld copy of the record (same header
and signature, so the same id, and still a valid record: `protocol.envelope.withhold_all`), `purged` says
why ("retracted", "expired", "retention"), the search text is emptied and the record's index terms are
deleted. The row stays so that chain checks still work and the record is never fetched or stored again:
every later copy is a duplicate of what is held.
Rule 2: a tombstone takes effect only for a record whose author signed it, or a key the author's key was
rotated into (`lapnode.store.rotations`). Any other well-signed tombstone is kept and passed on, and
purges nothing.
Rule 3: a record that arrives after its tombstone, or already expired, is stored as a purged stub
(`stub_for`); its content never reaches the table. The writer asks the statement book
(`lapnode.store.statements.held_about`) once per batch, in the batch's transaction, one indexed probe
per chunk of ids.
Rule 4: purges are idempotent and run in chunks of PURGE_CHUNK rows per transaction, so a pass over a
large store never holds the write lock for long, and a crash half-way leaves a consistent store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Final

from sqlalchemy import ColumnElement, and_, bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from lapnode.store.rotations import first_rotations, successors
from lapnode.store.schema import authors, records, statements, terms
from lapnode.verification.rows import RecordRow
from protocol.envelope import verify_record, withhold_all
from protocol.errors import ProtocolError
from protocol.statements import RETRACT

RETRACTED: Final = "retracted"
EXPIRED: Final = "expired"
RETENTION: Final = "retention"
PURGE_CHUNK: Final = 500


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """How many records one purge pass emptied, by reason."""

    retracted: int = 0
    expired: int = 0
    retention: int = 0

    @property
    def total(self) -> int:
        return self.retracted + self.expired + self.retention


def stub_for(row: RecordRow, reason: str) -> RecordRow:
    """The row to store for a record purged before it was ever stored (Rule 3)."""
    return row._replace(wire=withhold_all(row.wire), search_text="", terms=(), purged=reason)


class Authority:
    """Who may retract a record of an author: the author, or a key it was rotated into (Rule 2). The
    rotation chains are read once, and only if a signer is not the author itself (rare)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._chain: dict[bytes, bytes] | None = None

    async def may_retract(self, signers: AbstractSet[bytes], author: bytes) -> bool:
        if author in signers:
            return True
        if self._chain is None:
            self._chain = await first_rotations(self._conn)
        return not signers.isdisjoint(successors(author, self._chain))


async def purge_rows(
    conn: AsyncConnection, rows: Sequence[tuple[int, bytes]], reason: str, *, network: str
) -> int:
    """Purge these held rows, (log position, wire), in the caller's transaction (Rule 1)."""
    if not rows:
        return 0
    term_rows: list[dict[str, object]] = []
    unreadable: list[int] = []
    updates: list[dict[str, object]] = []
    for position, wire in rows:
        try:
            record = verify_record(wire, network=network)
        except ProtocolError:
            # Altered in the database: its terms cannot be recomputed, so they are found by a scan below.
            unreadable.append(position)
            stripped = wire
        else:
            term_rows += [
                {"v": value, "t": term_type, "r": position} for term_type, value in RecordRow.of(record).terms
            ]
            stripped = withhold_all(wire)
        updates.append({"p": position, "w": stripped})
    if term_rows:
        await conn.execute(
            delete(terms).where(
                terms.c.value == bindparam("v"),
                terms.c.term_type == bindparam("t"),
                terms.c.record_id == bindparam("r"),
            ),
            term_rows,
        )
    if unreadable:
        await conn.execute(delete(terms).where(terms.c.record_id.in_(unreadable)))
    await conn.execute(
        update(records)
        .where(records.c.id == bindparam("p"))
        .values(wire=bindparam("w"), purged=reason, search_text=""),
        updates,
    )
    return len(updates)


async def apply_retractions(
    conn: AsyncConnection, *, network: str, targets: Sequence[bytes] | None = None
) -> int:
    """Purge the live records that a held tombstone retracts (Rule 2); only `targets`, if given."""
    condition = and_(statements.c.kind == RETRACT, records.c.purged.is_(None))
    if targets is not None:
        if not targets:
            return 0
        condition = and_(condition, statements.c.subject.in_(targets))
    rows = await conn.execute(
        select(records.c.id, records.c.wire, authors.c.key, statements.c.signer)
        .select_from(
            statements.join(records, records.c.rid == statements.c.subject).join(
                authors, records.c.author_id == authors.c.id
            )
        )
        .where(condition)
    )
    signers: dict[int, set[bytes]] = {}
    held: dict[int, tuple[bytes, bytes]] = {}
    for position, wire, author, signer in rows:
        signers.setdefault(position, set()).add(signer)
        held[position] = (wire, author)
    authority = Authority(conn)
    doomed = [
        (position, wire)
        for position, (wire, author) in held.items()
        if await authority.may_retract(signers[position], author)
    ]
    return await purge_rows(conn, doomed, RETRACTED, network=network)


def expired_clause(now_ms: int) -> ColumnElement[bool]:
    return and_(records.c.purged.is_(None), records.c.expires.is_not(None), records.c.expires <= now_ms)


def retention_clause(now_ms: int, retention: Mapping[str, int]) -> ColumnElement[bool] | None:
    """Live records of a kind with a retention, created longer ago than it (None: no retention set)."""
    limits = [
        and_(records.c.kind == kind, records.c.created < now_ms - keep)
        for kind, keep in sorted(retention.items())
        if keep > 0
    ]
    if not limits:
        return None
    return and_(records.c.purged.is_(None), or_(*limits))


async def due_rows(conn: AsyncConnection, where: ColumnElement[bool]) -> list[tuple[int, bytes]]:
    """The next chunk of live rows matching `where` (Rule 4)."""
    rows = await conn.execute(
        select(records.c.id, records.c.wire).where(where).order_by(records.c.id).limit(PURGE_CHUNK)
    )
    return [(int(position), bytes(wire)) for position, wire in rows]
