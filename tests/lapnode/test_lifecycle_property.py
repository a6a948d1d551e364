"""No sequence of gossip, outages and reconnects brings a retracted or expired record back (issue 5).

Three nodes, each a real Store on its own SQLite file, exchange what the daemon exchanges, with the code
the daemon runs: statements as `MembershipGossip` floods them (every statement held, verified by
`verify_statement`, stored by `StatementBook.add`), records as a feed sends them (`Store.read_log`, then
`select_for`, then `Store.ingest`). Hypothesis draws sequences of publish, retract, clock ticks, purge
passes, gossip between two nodes, outages and reconnects. After every step, for every node:

- no reader yields the content of a record it holds a tombstone for, or of an expired one: not a query,
  not the log a feed reads, not what `select_for` would send;
- a record once purged stays purged (nothing un-purges a row);
- a node that ran a purge pass after a record expired holds it purged.

At the end, with everyone back online and gossip run to quiescence, every node holds every tombstone
and no content of any retracted or expired record.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keys.identity import Identity
from keys.membership import TrustedAuthorities
from lapnode.clock import now_ms
from lapnode.daemon.feed import READ_AHEAD, select_for
from lapnode.policy import NO_RULES, Recipient
from lapnode.store import QueryFilters, Store
from protocol.envelope import Record, RecordId
from protocol.scope import Scope
from protocol.statements import Statement, issue_retraction, verify_statement
from tests.factories import NETWORK, identity, make_record

NODES = 3
UNIT = 60_000
# Virtual time starts an hour past the wall clock, so that only ticks (never the machine's clock) make a
# record expire: the store judges arrival expiry by the wall clock, the readers by the time given.
BASE = now_ms() + 3_600_000
KEYS = [identity(f"lifecycle node {i}") for i in range(NODES)]
NO_AUTHORITIES = TrustedAuthorities()

Step = tuple[str, int, int]
steps = st.lists(
    st.one_of(
        st.tuples(st.just("publish"), st.integers(0, NODES - 1), st.integers(0, 3)),
        st.tuples(st.just("retract"), st.integers(0, 20), st.just(0)),
        st.tuples(st.just("tick"), st.just(0), st.just(0)),
        st.tuples(st.just("purge"), st.integers(0, NODES - 1), st.just(0)),
        st.tuples(st.just("gossip"), st.integers(0, NODES - 1), st.integers(0, NODES - 1)),
        st.tuples(st.just("down"), st.integers(0, NODES - 1), st.just(0)),
        st.tuples(st.just("up"), st.integers(0, NODES - 1), st.just(0)),
    ),
    min_size=4,
    max_size=18,
)


@dataclass
class World:
    stores: list[Store]
    clock: int = BASE
    online: set[int] = field(default_factory=lambda: set(range(NODES)))
    published: list[Record] = field(default_factory=list)
    cursors: dict[tuple[int, int], int] = field(default_factory=dict)
    ever_purged: list[set[bytes]] = field(default_factory=lambda: [set() for _ in range(NODES)])
    last_purge: list[int] = field(default_factory=lambda: [0] * NODES)

    def expired(self) -> set[bytes]:
        return {
            r.id
            for r in self.published
            if r.header.scope.expires is not None and r.header.scope.expires <= self.clock
        }


async def publish(world: World, author: int, lifetime: int) -> None:
    # lifetime 0: no expiry; else it expires `lifetime` ticks from now.
    expires = world.clock + lifetime * UNIT if lifetime else None
    scope = Scope.create("green", expires=expires)
    key: Identity = KEYS[author]
    tag = f"{len(world.published)}"

    def build(seq: int, prev: RecordId | None) -> Record:
        return make_record(key, seq, prev, scope=scope, created=world.clock, tag=tag)

    world.published.append(await world.stores[author].publish(key.public_key.raw, build))


async def retract(world: World, index: int) -> None:
    if not world.published:
        return
    record = world.published[index % len(world.published)]
    author = next(i for i, key in enumerate(KEYS) if key.public_key.raw == record.header.author)
    tombstone = issue_retraction(
        KEYS[author], network=NETWORK, target=record.id, reason="withdrawn", retracted_at=world.clock
    )
    await world.stores[author].statements.add([tombstone], now_ms=world.clock)


async def gossip(world: World, u: int, v: int) -> None:
    """One session between u and v: statements both ways (§8.7), then u's feed to v (§6.5)."""
    if u == v or u not in world.online or v not in world.online:
        return
    for a, b in ((u, v), (v, u)):
        verified: list[Statement] = [
            verify_statement(row.wire, network=NETWORK, trusted=NO_AUTHORITIES)
            for row in await world.stores[a].statements.after(0)
        ]
        await world.stores[b].statements.add(verified, now_ms=world.clock)
    publisher, subscriber = world.stores[u], world.stores[v]
    position = world.cursors.get((u, v), 0)
    while True:
        entries = await publisher.read_log(position, limit=READ_AHEAD)
        if not entries:
            break
        selection = select_for(
            entries,
            Recipient(KEYS[v].public_key.raw, category="enforcement", jurisdiction="NL"),
            kinds=frozenset(),
            vector={},
            policy=NO_RULES,
            our_key=KEYS[u].public_key.raw,
            now_ms=world.clock,
            network=NETWORK,
        )
        position = entries[-1].position
        await subscriber.ingest(
            [item.wire for item in selection.items],
            source=KEYS[u].public_key.raw,
            hops=[item.hops for item in selection.items],
        )
    world.cursors[(u, v)] = position


async def tombstoned(store: Store) -> set[bytes]:
    return {row.subject for row in await store.statements.after(0) if row.kind == "retract"}


async def check(world: World) -> None:
    expired = world.expired()
    for node, store in enumerate(world.stores):
        gone = expired | await tombstoned(store)
        shown = {
            item.record.id for item in await store.query(QueryFilters(limit=10_000, live_at=world.clock))
        }
        assert not shown & gone, f"node {node}: a query yields a retracted or expired record"
        entries = await store.read_log(0, limit=10_000)
        for entry in entries:
            if entry.rid in gone - expired:
                assert entry.purged == "retracted", f"node {node}: a tombstoned record keeps its content"
            if entry.purged is not None:
                assert entry.rid in gone or entry.purged == "expired", f"node {node}: purged without cause"
        sent = select_for(
            entries,
            Recipient(b"\xff" * 32, category="enforcement", jurisdiction="NL"),
            kinds=frozenset(),
            vector={},
            policy=NO_RULES,
            our_key=KEYS[node].public_key.raw,
            now_ms=world.clock,
            network=NETWORK,
        )
        held = {entry.position: entry for entry in entries}
        assert not {held[item.position].rid for item in sent.items} & gone, f"node {node}: a feed sends one"
        purged_now = {entry.rid for entry in entries if entry.purged is not None}
        assert world.ever_purged[node] <= purged_now, f"node {node}: a purged record came back"
        world.ever_purged[node] |= purged_now
        for record in world.published:
            expires = record.header.scope.expires
            if (
                expires is not None
                and expires <= world.last_purge[node]
                and record.id in {e.rid for e in entries}
            ):
                assert record.id in purged_now, f"node {node}: a purge pass left an expired record"


async def run(sequence: list[Step], directory: Path) -> None:
    stores = [
        await Store.open(f"sqlite+aiosqlite:///{directory / f'node{i}.sqlite'}", network=NETWORK)
        for i in range(NODES)
    ]
    world = World(stores)
    try:
        for name, first, second in sequence:
            if name == "publish":
                await publish(world, first, second)
            elif name == "retract":
                await retract(world, first)
            elif name == "tick":
                world.clock += UNIT
            elif name == "purge" and first in world.online:
                await stores[first].purge(now_ms=world.clock, retention={})
                world.last_purge[first] = world.clock
            elif name == "gossip":
                await gossip(world, first, second)
            elif name == "down":
                world.online.discard(first)
            elif name == "up":
                world.online.add(first)
            await check(world)
        # Everyone back; gossip until nothing changes, then a purge pass everywhere.
        world.online = set(range(NODES))
        for _ in range(NODES):
            for u in range(NODES):
                for v in range(NODES):
                    await gossip(world, u, v)
        for node, store in enumerate(stores):
            await store.purge(now_ms=world.clock, retention={})
            world.last_purge[node] = world.clock
        await check(world)
        everyone = [await tombstoned(store) for store in stores]
        assert all(held == everyone[0] for held in everyone), "a tombstone did not reach every node"
        gone = everyone[0] | world.expired()
        for store in stores:
            for entry in await store.read_log(0, limit=10_000):
                assert entry.rid not in gone or entry.purged is not None
    finally:
        for store in stores:
            await store.close()


@settings(
    max_examples=6,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
@given(steps)
def test_no_sequence_brings_a_retracted_or_expired_record_back(sequence: list[Step]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(run(sequence, Path(directory)))


def test_the_scenario_the_issue_names() -> None:
    """Publish, gossip to B, B goes down, the author retracts, B comes back: B purges, and C, which
    only ever talks to B, never shows the record after B has the tombstone."""
    sequence: list[Step] = [
        ("publish", 0, 0),
        ("gossip", 0, 1),
        ("gossip", 1, 2),
        ("down", 2, 0),
        ("retract", 0, 0),
        ("gossip", 0, 1),
        ("up", 2, 0),
        ("gossip", 2, 1),
        ("gossip", 1, 2),
    ]
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(run(sequence, Path(directory)))
