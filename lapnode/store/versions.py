"""The versions of a record: what it replaced and what replaced it (protocol/SPEC.md §5.1).

Rule 1: a `supersedes` link counts only between two records of one author, as in `live_clause`: a
record naming another author's record is stored and shown, and changes nothing about that record.
Rule 2: the chain is walked over the records held here. A version this node never received (scope
withheld it) ends the walk on that side: gaps are normal (DESIGN-NOTES 1).
Rule 3: walks are bounded by `MAX_VERSIONS` steps each way, so a long or hostile chain costs little.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Row, and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from lapnode.store.queries import live_clause
from lapnode.store.schema import records
from protocol.envelope import RecordId

MAX_VERSIONS: Final = 64


@dataclass(frozen=True, slots=True)
class Version:
    """One version of a record, as the history of another version lists it."""

    id: RecordId
    created: int
    tlp: str
    purged: str | None


@dataclass(frozen=True, slots=True)
class History:
    """`earlier`: the versions this one replaced, newest first. `later`: the versions that replaced it,
    oldest first (when an author published two corrections of one version, the newer one is followed).
    `live`: whether this version itself is live at the time asked (`live_clause`)."""

    earlier: tuple[Version, ...]
    later: tuple[Version, ...]
    live: bool

    @property
    def newest(self) -> Version | None:
        return self.later[-1] if self.later else None


_COLUMNS = (records.c.rid, records.c.created, records.c.tlp, records.c.purged, records.c.supersedes)


async def history(conn: AsyncConnection, rid: bytes, *, now_ms: int) -> History:
    """The versions around the held record `rid` (which must be held)."""
    start = (
        await conn.execute(select(records.c.author_id, records.c.supersedes).where(records.c.rid == rid))
    ).one()
    author_id = start.author_id
    live = (
        await conn.execute(select(records.c.rid).where(records.c.rid == rid, live_clause(now_ms)))
    ).first() is not None
    earlier: list[Version] = []
    wanted = start.supersedes
    while wanted is not None and len(earlier) < MAX_VERSIONS:
        row = (
            await conn.execute(
                select(*_COLUMNS).where(records.c.rid == wanted, records.c.author_id == author_id)
            )
        ).first()
        if row is None:
            break
        earlier.append(_version(row))
        wanted = row.supersedes
    later: list[Version] = []
    current = rid
    seen = {rid}
    while len(later) < MAX_VERSIONS:
        row = (
            await conn.execute(
                select(*_COLUMNS)
                .where(and_(records.c.supersedes == current, records.c.author_id == author_id))
                .order_by(records.c.created.desc(), records.c.seq.desc())
                .limit(1)
            )
        ).first()
        if row is None or row.rid in seen:
            break
        later.append(_version(row))
        current = row.rid
        seen.add(current)
    return History(tuple(earlier), tuple(later), live)


def _version(row: Row[Any, Any, Any, Any, Any]) -> Version:
    return Version(RecordId(bytes(row.rid)), row.created, row.tlp, row.purged)
