"""The peer book: the peers an operator added, their pinned attributes and their sync state.

Rule 1: a peer's organisation, category and jurisdiction are what the operator pinned with
`lapnode peer add`; nothing a peer says about itself is written here (DESIGN-NOTES 5).
Rule 2: the cursor for a peer's feed is written in the same transaction as the records it covers
(see Store.ingest), so a crash can never move it past records we did not commit.
Rule 3: a peer that rotates its key keeps its place in the peer book (`move_pin`, SPEC §8.8): address,
subscription, pins, cursor (a position in the same peer's log) and the records it sent move to the new
key. Its score and ban are cleared: failed handshakes while its peers still pinned the old key were the
rotation's doing, not the peer's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from lapnode.errors import InputError
from lapnode.store.engine import WriteTransaction
from lapnode.store.schema import peers, quarantine, records
from lapnode.store.sql import execute, fetch_all


@dataclass(frozen=True)
class Peer:
    key: bytes
    address: str
    name: str | None
    org: str | None
    category: str | None
    jurisdiction: str | None
    blocked: bool
    subscribed: bool
    kinds: tuple[str, ...]
    cursor: int
    added_at: int
    last_seen: int | None
    records_sent: int
    records_received: int
    score: int
    banned_until: int | None
    # Wire bytes of the credential it last presented in a verified handshake; never trusted as stored:
    # every reader re-verifies it (lapnode.exits.PeerEvidence).
    credential: bytes | None = None
    credential_seen: int | None = None


class UnknownPeer(InputError):
    """That node id is not in this node's peer book; add it with `lapnode peer add`."""


async def advance_cursor(
    conn: AsyncConnection, key: bytes, cursor: int | None, *, received: int, now_ms: int
) -> None:
    """Move a peer's feed cursor forward (never back) inside the caller's write transaction.

    Driver-level SQL: it runs in every ingest from a peer (lapnode/store/sql.py says why)."""
    if cursor is None:
        statement = "UPDATE peers SET last_seen = {}, records_received = records_received + {} WHERE key = {}"
        await execute(conn, statement, (now_ms, received, key))
        return
    statement = (
        "UPDATE peers SET last_seen = {}, records_received = records_received + {},"
        " cursor = CASE WHEN cursor < {} THEN {} ELSE cursor END WHERE key = {}"
    )
    await execute(conn, statement, (now_ms, received, cursor, cursor, key))


async def move_pin(conn: AsyncConnection, old: bytes, new: bytes) -> None:
    """Move the peer-book entry of `old` to `new` inside the caller's write transaction (Rule 3)."""
    if old == new:
        return
    source = (await conn.execute(select(peers).where(peers.c.key == old))).first()
    if source is None:
        return
    target = (await conn.execute(select(peers).where(peers.c.key == new))).first()
    if target is None:
        await conn.execute(
            update(peers).where(peers.c.id == source.id).values(key=new, score=0, banned_until=None)
        )
        return
    # Both exist: the new key connected before we learnt of the rotation and got a row of its own
    # (strict mode admits it by its credential). Keep the operator's settings from the old row.
    merged = {
        "address": source.address or target.address,
        "name": source.name if source.name is not None else target.name,
        "org": source.org if source.org is not None else target.org,
        "category": source.category if source.category is not None else target.category,
        "jurisdiction": source.jurisdiction if source.jurisdiction is not None else target.jurisdiction,
        "blocked": source.blocked or target.blocked,
        "subscribed": source.subscribed or target.subscribed,
        "kinds": source.kinds if source.subscribed else target.kinds,
        "cursor": max(source.cursor, target.cursor),
        "records_sent": source.records_sent + target.records_sent,
        "records_received": source.records_received + target.records_received,
        "score": 0,
        "banned_until": None,
    }
    await conn.execute(update(peers).where(peers.c.id == target.id).values(**merged))
    await conn.execute(update(records).where(records.c.source_id == source.id).values(source_id=target.id))
    await conn.execute(delete(peers).where(peers.c.id == source.id))


# Driver-level (lapnode/store/sql.py) for the reads a daemon repeats: the subscription manager reads the
# whole book every second and a session starts with a lookup. Through SQLAlchemy each cost a transaction
# and about six round trips to SQLite's thread; this is one statement and one trip.
_COLUMNS: Final = tuple(Peer.__dataclass_fields__)
_SELECT: Final = f"SELECT {', '.join(_COLUMNS)} FROM peers"  # noqa: S608 - constant names only


def _peer_of(row: tuple[Any, ...]) -> Peer:
    """A Peer from a driver-level row of `_SELECT`; SQLite gives its booleans as 0 and 1."""
    values = dict(zip(_COLUMNS, row, strict=True))
    values["blocked"], values["subscribed"] = bool(values["blocked"]), bool(values["subscribed"])
    values["kinds"] = tuple(k for k in values["kinds"].split(",") if k)
    return Peer(**values)


class PeerBook:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(
        self,
        key: bytes,
        address: str,
        *,
        now_ms: int,
        name: str | None = None,
        org: str | None = None,
        category: str | None = None,
        jurisdiction: str | None = None,
    ) -> Peer:
        """Add a peer, or update the address and pinned attributes of one already added."""
        values = {
            "address": address,
            "name": name,
            "org": org,
            "category": category,
            "jurisdiction": jurisdiction,
        }
        async with WriteTransaction(self._engine) as conn:
            found = (await conn.execute(select(peers.c.id).where(peers.c.key == key))).first()
            if found is None:
                await conn.execute(insert(peers).values(key=key, added_at=now_ms, **values))
            else:
                changed = {k: v for k, v in values.items() if v is not None}
                await conn.execute(update(peers).where(peers.c.id == found.id).values(**changed))
        return await self.get(key)

    async def get(self, key: bytes) -> Peer:
        async with self._engine.connect() as conn:
            rows = await fetch_all(conn, _SELECT + " WHERE key = {}", (key,))
        if not rows:
            raise UnknownPeer("that node is not in the peer book; add it with `lapnode peer add`")
        return _peer_of(rows[0])

    async def find(self, key: bytes) -> Peer | None:
        try:
            return await self.get(key)
        except UnknownPeer:
            return None

    async def all(self) -> list[Peer]:
        async with self._engine.connect() as conn:
            rows = await fetch_all(conn, _SELECT + " ORDER BY id", ())
        return [_peer_of(row) for row in rows]

    async def remove(self, key: bytes) -> None:
        await self.get(key)
        async with self._engine.begin() as conn:
            # Records keep their bytes; they only forget which peer they came from.
            peer_id = select(peers.c.id).where(peers.c.key == key).scalar_subquery()
            await conn.execute(update(records).where(records.c.source_id == peer_id).values(source_id=None))
            await conn.execute(
                update(quarantine).where(quarantine.c.source_id == peer_id).values(source_id=None)
            )
            await conn.execute(delete(peers).where(peers.c.key == key))

    async def set_blocked(self, key: bytes, blocked: bool) -> None:
        await self._update(key, blocked=blocked, subscribed=False if blocked else None)

    async def set_subscription(self, key: bytes, subscribed: bool, kinds: tuple[str, ...] = ()) -> None:
        await self._update(key, subscribed=subscribed, kinds=",".join(sorted(set(kinds))))

    async def note_activity(
        self, key: bytes, *, now_ms: int, sent: int = 0, score_delta: int = 0, banned_until: int | None = None
    ) -> None:
        async with self._engine.begin() as conn:
            values: dict[str, object] = {
                "last_seen": now_ms,
                "records_sent": peers.c.records_sent + sent,
                "score": peers.c.score + score_delta,
            }
            if banned_until is not None:
                values["banned_until"] = banned_until
            await conn.execute(update(peers).where(peers.c.key == key).values(**values))

    async def note_credential(self, key: bytes, wire: bytes, *, now_ms: int) -> None:
        """Keep the credential a peer just presented in a verified handshake (schema: peers.credential)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                update(peers).where(peers.c.key == key).values(credential=wire, credential_seen=now_ms)
            )

    async def _update(self, key: bytes, **values: object) -> None:
        await self.get(key)
        changed = {k: v for k, v in values.items() if v is not None}
        async with self._engine.begin() as conn:
            await conn.execute(update(peers).where(peers.c.key == key).values(**changed))
