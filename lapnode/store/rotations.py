"""Where a rotated key went: the chains of key rotations this node holds (SPEC §8.8).

Rule 1: a key's successor is the new key of the first rotation of it held (by storage order); a second,
different rotation of the same key is a fork, kept as evidence but never followed.
Rule 2: a chain is followed until it would repeat (A->B->A stops at B), so a crafted cycle cannot loop.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from lapnode.store.schema import statements
from protocol.statements import ROTATE


async def first_rotations(conn: AsyncConnection) -> dict[bytes, bytes]:
    """old key -> new key, by the first rotation held of each old key (Rule 1)."""
    rows = await conn.execute(
        select(statements.c.subject, statements.c.signer)
        .where(statements.c.kind == ROTATE)
        .order_by(statements.c.id)
    )
    chain: dict[bytes, bytes] = {}
    for row in rows:
        chain.setdefault(row.subject, row.signer)
    return chain


def successors(key: bytes, chain: dict[bytes, bytes]) -> list[bytes]:
    """The keys `key` was rotated into, in order, ending at its current key (Rule 2)."""
    found: list[bytes] = []
    seen = {key}
    while key in chain and chain[key] not in seen:
        key = chain[key]
        seen.add(key)
        found.append(key)
    return found


def final_key(key: bytes, chain: dict[bytes, bytes]) -> bytes:
    """The key `key` is now, after every rotation held."""
    later = successors(key, chain)
    return later[-1] if later else key
