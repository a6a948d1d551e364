"""The statement book: membership statements (revocations, key rotations) this node holds.

Rule 1: only verified statements are stored (`protocol.statements.verify_statement` made them); storing
one already held is a no-op, so the same statement may arrive from every peer.
Rule 2: statements are kept forever and never change: a revocation is never undone by forgetting it.
Rule 3: the store's writer asks this table, in the same transaction as every ingest, whether a batch's
authors are revoked (`revoked_among`), so no record of a revoked key is stored after its revocation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from lapnode.store.engine import WriteTransaction
from lapnode.store.schema import statements
from protocol.statements import REVOKE, Revocation, Statement

_CHUNK = 500


@dataclass(frozen=True, slots=True)
class StoredStatement:
    position: int
    kind: str
    subject: bytes
    signer: bytes
    at: int
    wire: bytes
    received_at: int


def _row(statement: Statement, now_ms: int) -> dict[str, object]:
    if isinstance(statement, Revocation):
        return {
            "sid": statement.id,
            "kind": REVOKE,
            "subject": statement.subject,
            "signer": statement.authority,
            "at": statement.issued_at,
            "last_seq": None,
            "wire": statement.wire,
            "received_at": now_ms,
        }
    raise TypeError(f"not a statement: {type(statement).__name__}")


async def revoked_among(conn: AsyncConnection, keys: Iterable[bytes]) -> set[bytes]:
    """Which of these keys a stored revocation names (Rule 3), inside the caller's transaction."""
    wanted = sorted(set(keys))
    found: set[bytes] = set()
    for start in range(0, len(wanted), _CHUNK):
        rows = await conn.execute(
            select(statements.c.subject).where(
                statements.c.kind == REVOKE, statements.c.subject.in_(wanted[start : start + _CHUNK])
            )
        )
        found.update(row.subject for row in rows)
    return found


class StatementBook:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, incoming: Sequence[Statement], *, now_ms: int) -> list[Statement]:
        """Store the statements not held yet; return those, in the order given."""
        unique = {statement.id: statement for statement in incoming}
        if not unique:
            return []
        async with WriteTransaction(self._engine) as conn:
            held: set[bytes] = set()
            ids = sorted(unique)
            for start in range(0, len(ids), _CHUNK):
                rows = await conn.execute(
                    select(statements.c.sid).where(statements.c.sid.in_(ids[start : start + _CHUNK]))
                )
                held.update(row.sid for row in rows)
            fresh = [s for s in unique.values() if s.id not in held]
            if fresh:
                await conn.execute(insert(statements), [_row(s, now_ms) for s in fresh])
        return fresh

    async def head(self) -> int:
        async with self._engine.connect() as conn:
            return int((await conn.execute(select(func.coalesce(func.max(statements.c.id), 0)))).scalar_one())

    async def after(self, position: int) -> list[StoredStatement]:
        """Statements stored after a position, oldest first (the daemon's poll for other processes')."""
        query = select(statements).where(statements.c.id > position).order_by(statements.c.id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [StoredStatement(r.id, r.kind, r.subject, r.signer, r.at, r.wire, r.received_at) for r in rows]

    async def ids(self) -> list[bytes]:
        async with self._engine.connect() as conn:
            return [row.sid for row in await conn.execute(select(statements.c.sid))]

    async def revoked(self) -> frozenset[bytes]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(statements.c.subject).where(statements.c.kind == REVOKE))
            return frozenset(row.subject for row in rows)
