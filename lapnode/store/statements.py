"""The statement book: membership statements (revocations, key rotations, retractions) this node holds.

Rule 1: only verified statements are stored (`protocol.statements.verify_statement` made them); storing
one already held is a no-op, so the same statement may arrive from every peer.
Rule 2: statements are kept forever and never change: a revocation is never undone by forgetting it.
Rule 3: the store's writer asks this table (`held_about`), in the same transaction as every ingest,
whether a batch's authors are revoked or retired by a rotation, so no record of a revoked key, and none
of a retired key made after its rotation, is stored once the statement is held.
Rule 4: storing a rotation moves the peer book's pins to the new key in the same transaction (SPEC
§8.8), following any later rotation of the new key, whichever order they arrived in. A second, different
rotation of the same key (a fork: the key is in two hands) is kept as evidence but never applied; a
rotation of a revoked key is not stored at all.
Rule 5: storing a retraction purges, in the same transaction, the held record it names if its author (or
the author's rotation successor) signed it (lapnode.store.lifecycle); a new rotation re-applies every
held retraction, since it may make a successor's tombstone take effect. Either way `on_purge` is called
after the commit, so the store forgets what it kept in memory of the purged records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from lapnode.store.engine import WriteTransaction
from lapnode.store.lifecycle import apply_retractions
from lapnode.store.peers import move_pin
from lapnode.store.rotations import final_key, first_rotations
from lapnode.store.schema import statements
from lapnode.store.sql import select_in
from protocol.statements import RETRACT, REVOKE, ROTATE, Retraction, Revocation, Rotation, Statement

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
    if isinstance(statement, Rotation):
        return {
            "sid": statement.id,
            "kind": ROTATE,
            "subject": statement.old,
            "signer": statement.new,
            "at": statement.rotated_at,
            "last_seq": statement.last_seq,
            "wire": statement.wire,
            "received_at": now_ms,
        }
    if isinstance(statement, Retraction):
        return {
            "sid": statement.id,
            "kind": RETRACT,
            "subject": statement.target,
            "signer": statement.author,
            "at": statement.retracted_at,
            "last_seq": None,
            "wire": statement.wire,
            "received_at": now_ms,
        }
    raise TypeError(f"not a statement: {type(statement).__name__}")


@dataclass(frozen=True, slots=True)
class RotationLimit:
    """Up to where a rotated-away key's records are valid (the first rotation of that key held)."""

    last_seq: int
    rotated_at: int

    def allows(self, seq: int, created: int) -> bool:
        # The same rule as protocol.statements.Rotation.allows, on the stored columns.
        return seq <= self.last_seq and created <= self.rotated_at


@dataclass(frozen=True, slots=True)
class HeldAbout:
    """What held statements say of some author keys and record ids (Rule 3, and lifecycle Rule 3)."""

    # Keys a held revocation names.
    revoked: set[bytes]
    # For each key a held rotation retired: the limits of its first rotation.
    retired: dict[bytes, RotationLimit]
    # For each record id a held tombstone names: the keys that signed one.
    retractions: dict[bytes, set[bytes]]


async def held_about(
    conn: AsyncConnection, *, keys: Sequence[bytes], rids: Sequence[bytes] = ()
) -> HeldAbout:
    """One indexed probe for everything the writer must know of a batch's authors and records, inside
    the caller's transaction (Rule 3). A subject is a key for revocations and rotations and a record id
    for tombstones; each is read only for the kind that can name it."""
    key_set, rid_set = set(keys), set(rids)
    rows = await select_in(
        conn,
        "SELECT kind, subject, signer, last_seq, at FROM statements"
        " WHERE kind IN ({fixed}) AND subject IN ({values}) ORDER BY id",
        sorted(key_set | rid_set),
        fixed=(REVOKE, ROTATE, RETRACT),
    )
    about = HeldAbout(set(), {}, {})
    for kind, raw_subject, signer, last_seq, at in rows:
        subject = bytes(raw_subject)
        if kind == RETRACT:
            if subject in rid_set:
                about.retractions.setdefault(subject, set()).add(bytes(signer))
        elif subject in key_set:
            _note_key_statement(kind, subject, last_seq, at, about.revoked, about.retired)
    return about


@dataclass(frozen=True, slots=True)
class KeyStanding:
    """Every key a held revocation names, and every key a held rotation retired with its limits."""

    revoked: frozenset[bytes]
    retired: dict[bytes, RotationLimit]


async def key_standing(conn: AsyncConnection) -> KeyStanding:
    """What every read flags its records by, in one statement on the caller's connection (a network holds
    few revocations and rotations; one round trip costs more than reading them all)."""
    rows = await conn.execute(
        select(statements.c.kind, statements.c.subject, statements.c.last_seq, statements.c.at)
        .where(statements.c.kind.in_([REVOKE, ROTATE]))
        .order_by(statements.c.id)
    )
    revoked: set[bytes] = set()
    retired: dict[bytes, RotationLimit] = {}
    for kind, subject, last_seq, at in rows:
        _note_key_statement(kind, subject, last_seq, at, revoked, retired)
    return KeyStanding(frozenset(revoked), retired)


def _note_key_statement(
    kind: str,
    subject: bytes,
    last_seq: int,
    at: int,
    revoked: set[bytes],
    retired: dict[bytes, RotationLimit],
) -> None:
    """Add one revocation or rotation row (read in statement order) to what is known of keys: the first
    rotation of a key sets its limits (Rule 4: a later, different one is a fork, kept but not applied)."""
    if kind == REVOKE:
        revoked.add(subject)
    elif kind == ROTATE:
        retired.setdefault(subject, RotationLimit(last_seq, at))


class StatementBook:
    def __init__(
        self, engine: AsyncEngine, *, network: str, on_purge: Callable[[], None] = lambda: None
    ) -> None:
        self._engine = engine
        self._network = network
        self._on_purge = on_purge

    async def add(self, incoming: Sequence[Statement], *, now_ms: int) -> list[Statement]:
        """Store the statements not held yet; return those, in the order given."""
        unique = {statement.id: statement for statement in incoming}
        if not unique:
            return []
        purged = 0
        async with WriteTransaction(self._engine) as conn:
            held: set[bytes] = set()
            ids = sorted(unique)
            for start in range(0, len(ids), _CHUNK):
                rows = await conn.execute(
                    select(statements.c.sid).where(statements.c.sid.in_(ids[start : start + _CHUNK]))
                )
                held.update(row.sid for row in rows)
            fresh = [s for s in unique.values() if s.id not in held]
            # A rotation of a revoked key (held, or revoked in this same batch) is not stored (Rule 4).
            revoked = (await held_about(conn, keys=[s.old for s in fresh if isinstance(s, Rotation)])).revoked
            revoked |= {s.subject for s in fresh if isinstance(s, Revocation)}
            fresh = [s for s in fresh if not (isinstance(s, Rotation) and s.old in revoked)]
            if fresh:
                await conn.execute(insert(statements), [_row(s, now_ms) for s in fresh])
            rotated = sorted({s.old for s in fresh if isinstance(s, Rotation)})
            if rotated:
                # Pins sit under a key's current form: moving each newly rotated key's pin to the end of its
                # chain also carries along a pin moved to it by an earlier rotation.
                chain = await first_rotations(conn)
                for old in rotated:
                    await move_pin(conn, old, final_key(old, chain))
            targets = None if rotated else [s.target for s in fresh if isinstance(s, Retraction)]
            if targets is None or targets:
                purged = await apply_retractions(conn, network=self._network, targets=targets)
        if purged:
            self._on_purge()
        return fresh

    async def known(self, ids: Sequence[bytes]) -> set[bytes]:
        """Which of these statement ids are held (to skip verifying copies of what we have)."""
        found: set[bytes] = set()
        wanted = sorted(set(ids))
        async with self._engine.connect() as conn:
            for start in range(0, len(wanted), _CHUNK):
                rows = await conn.execute(
                    select(statements.c.sid).where(statements.c.sid.in_(wanted[start : start + _CHUNK]))
                )
                found.update(row.sid for row in rows)
        return found

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
            return (await key_standing(conn)).revoked

    async def retired(self) -> dict[bytes, RotationLimit]:
        """Every key a held rotation retired, with its limits."""
        async with self._engine.connect() as conn:
            return (await key_standing(conn)).retired

    async def rotation_into(self, key: bytes) -> bytes | None:
        """The latest held rotation into `key` (what a node presents in its handshakes), if any."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(statements.c.wire)
                    .where(statements.c.kind == ROTATE, statements.c.signer == key)
                    .order_by(statements.c.id.desc())
                    .limit(1)
                )
            ).first()
        return row.wire if row is not None else None

    async def retractions_of(self, rid: bytes) -> list[bytes]:
        """The wire bytes of every held tombstone naming record `rid`, oldest first."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(statements.c.wire)
                .where(statements.c.kind == RETRACT, statements.c.subject == rid)
                .order_by(statements.c.id)
            )
            return [row.wire for row in rows]

    async def forks(self) -> dict[bytes, list[bytes]]:
        """Keys rotated into more than one key (Rule 4): old key -> the new keys, oldest first."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(statements.c.subject, statements.c.signer)
                .where(statements.c.kind == ROTATE)
                .order_by(statements.c.id)
            )
            targets: dict[bytes, list[bytes]] = {}
            for row in rows:
                if row.signer not in targets.setdefault(row.subject, []):
                    targets[row.subject].append(row.signer)
        return {old: new for old, new in targets.items() if len(new) > 1}
