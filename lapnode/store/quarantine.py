"""Quarantine: verified records that a local inbound rule set aside (docs/policy.md, "Quarantine").

Rule 1: a quarantined record is not in `records`: no query, show, export or feed reads this table, so
nothing set aside can leave the node or reach an operator's results by a side path.
Rule 2: releasing a record stores it exactly as if it had just arrived from the same peer with the same
hop count: the writer checks its chain and equivocation then, and it takes a new log position, so every
feed considers it. Dropping deletes it.
Rule 3: a record set aside twice is kept once, with the reasons it was first set aside for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Select, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from lapnode.store.queries import id_range
from lapnode.store.schema import peers, quarantine
from lapnode.verification.rows import RecordRow
from protocol.envelope import Record, RecordId


@dataclass(frozen=True, slots=True)
class QuarantinedRecord:
    record: Record
    received_at: int
    hops: int
    source: bytes | None
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SetAside:
    """One verified arrival an inbound decision quarantined."""

    row: RecordRow
    hops: int
    reasons: tuple[str, ...]


async def hold(
    conn: AsyncConnection, items: Sequence[SetAside], *, source_id: int | None, now_ms: int
) -> list[RecordId]:
    """Keep these records aside (Rule 3); returns the ids newly quarantined."""
    wanted = {item.row.id: item for item in items}
    if not wanted:
        return []
    found = await conn.execute(select(quarantine.c.rid).where(quarantine.c.rid.in_(list(wanted))))
    for row in found:
        wanted.pop(RecordId(row.rid), None)
    if wanted:
        await conn.execute(
            insert(quarantine),
            [
                {
                    "rid": rid,
                    "wire": item.row.wire,
                    "source_id": source_id,
                    "hops": item.hops,
                    "received_at": now_ms,
                    "reasons": "\n".join(item.reasons),
                }
                for rid, item in wanted.items()
            ],
        )
    return list(wanted)


_COLUMNS = (
    quarantine.c.id,
    quarantine.c.rid,
    quarantine.c.wire,
    quarantine.c.source_id,
    quarantine.c.hops,
    quarantine.c.received_at,
    quarantine.c.reasons,
    peers.c.key,
)


@dataclass(frozen=True, slots=True)
class HeldRow:
    """A quarantine row as read: bytes not yet re-verified."""

    row_id: int
    rid: bytes
    wire: bytes
    source_id: int | None
    hops: int
    received_at: int
    reasons: tuple[str, ...]
    source: bytes | None


def _listing() -> Select[*tuple[Any, ...]]:
    return select(*_COLUMNS).select_from(quarantine.outerjoin(peers, quarantine.c.source_id == peers.c.id))


def _held(row: Row[*tuple[Any, ...]]) -> HeldRow:
    row_id, rid, wire, source_id, hops, received_at, reasons, source = row
    return HeldRow(row_id, rid, wire, source_id, hops, received_at, tuple(reasons.split("\n")), source)


async def all_held(conn: AsyncConnection) -> list[HeldRow]:
    return [_held(row) for row in await conn.execute(_listing().order_by(quarantine.c.id))]


async def find(conn: AsyncConnection, id_or_prefix: str) -> list[HeldRow]:
    """The quarantined rows whose id starts with `id_or_prefix` (at most two: enough to see ambiguity)."""
    low, high = id_range(id_or_prefix)
    query = _listing().where(quarantine.c.rid.between(low, high)).limit(2)
    return [_held(row) for row in await conn.execute(query)]


async def remove(conn: AsyncConnection, row_id: int) -> None:
    await conn.execute(delete(quarantine).where(quarantine.c.id == row_id))
