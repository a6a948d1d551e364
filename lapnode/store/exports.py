"""Reading the log for exports and the TAXII server: keyset pages with what the policy decision needs.

Rule 1: pages are keyset pages on the log position (`records.id`), never OFFSET, and never a comparison of
every record with every other (medallion's paging does that: LESSONS.md). A page costs one index range.
Rule 2: each row carries the signed scope, the author and the relay hops copied from the verified header,
so the caller can ask the policy decision before decoding anything; it must still verify the wire bytes
(lapnode.interop.disclosure does) before reading a body.
Rule 3: `received_at` never decreases along the log: positions are handed out under the store's write lock
and the time is read inside the same transaction. `position_at` relies on that to find a time in the log
by binary search (a clock stepped back by hand could misplace it by the records written meanwhile).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import ColumnElement, Row, Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from lapnode.store.queries import QueryFilters, build_query
from lapnode.store.schema import authors, records
from protocol.scope import Scope, scope_from_canonical


@dataclass(frozen=True)
class ExportRow:
    """One record as the log holds it. `author`, `kind` and `scope` make it a policy `Disclosable`."""

    position: int
    received_at: int
    hops: int
    author: bytes
    kind: str
    scope: Scope
    wire: bytes
    # The record id, from the log: an exit names the record in the audit trail without decoding `wire`.
    rid: bytes


def _rows_query() -> Select[int, int, int, bytes, str, bytes, bytes, bytes]:
    return select(
        records.c.id,
        records.c.received_at,
        records.c.hops,
        authors.c.key,
        records.c.kind,
        records.c.scope,
        records.c.wire,
        records.c.rid,
    ).select_from(records.join(authors, records.c.author_id == authors.c.id))


def filter_clause(filters: QueryFilters) -> ColumnElement[bool] | None:
    """The WHERE clause `lapnode query` would use for these filters (its ordering and limit dropped)."""
    clause = build_query(replace(filters, limit=1)).whereclause
    return clause


def _row(r: Row[int, int, int, bytes, str, bytes, bytes, bytes]) -> ExportRow:
    return ExportRow(r[0], r[1], r[2], r[3], r[4], scope_from_canonical(r[5]), r[6], bytes(r[7]))


class ExportLog:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def page(
        self,
        *,
        after: int,
        limit: int,
        kind: str | None = None,
        received_after: int | None = None,
        where: ColumnElement[bool] | None = None,
    ) -> list[ExportRow]:
        """Up to `limit` rows past log position `after`, in log order."""
        # A purged record's content is gone (SPEC §8.10); the caller's decision withholds expired ones.
        conditions: list[ColumnElement[bool]] = [records.c.id > after, records.c.purged.is_(None)]
        if kind is not None:
            conditions.append(records.c.kind == kind)
        if received_after is not None:
            conditions.append(records.c.received_at > received_after)
        if where is not None:
            conditions.append(where)
        query = _rows_query().where(and_(*conditions)).order_by(records.c.id).limit(limit)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_row(r) for r in rows]

    async def by_id_prefix(self, prefix: bytes, *, kind: str) -> list[ExportRow]:
        """Rows of `kind` whose record id starts with `prefix` (at most a few: prefixes are 6+ bytes)."""
        low = prefix.ljust(32, b"\x00")
        high = prefix.ljust(32, b"\xff")
        query = (
            _rows_query()
            .where(records.c.rid.between(low, high), records.c.kind == kind, records.c.purged.is_(None))
            .order_by(records.c.id)
            .limit(8)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_row(r) for r in rows]

    async def head(self) -> int:
        async with self._engine.connect() as conn:
            return int((await conn.execute(select(func.coalesce(func.max(records.c.id), 0)))).scalar_one())

    async def position_at(self, moment_ms: int) -> int:
        """The last log position whose record was received at or before `moment_ms` (0 if none).

        A binary search over positions (Rule 3): about log2(records) primary-key lookups, however large
        the log, where a scan for `received_at > t` would read every record (there is no index on it).
        """
        low, high = 0, await self.head()
        async with self._engine.connect() as conn:
            while low < high:
                middle = (low + high + 1) // 2
                found = (
                    await conn.execute(
                        select(records.c.id, records.c.received_at)
                        .where(records.c.id >= middle)
                        .order_by(records.c.id)
                        .limit(1)
                    )
                ).one()
                if found.received_at <= moment_ms:
                    low = found.id
                else:
                    high = middle - 1
        return low
