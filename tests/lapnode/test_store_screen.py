"""The store's inbound screen and quarantine, against both backends (lapnode/store/quarantine.py).

The screen is the real inbound decision (lapnode.policy.decide_inbound) with real local rules, as the
daemon's subscriber wires it. A rejected record is not stored; a quarantined one is kept outside every
query and feed until it is released (then it is stored as if it had just arrived) or dropped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lapnode.policy import NO_RULES, InboundDecision, Policy, Recipient, decide_inbound, parse_policy
from lapnode.store import Arrival, QueryFilters, RecordNotFound, Screen, Store, StoreError
from protocol.scope import Scope
from tests.factories import NETWORK, T0, chain, identity, make_record

US = Recipient(identity("screen: us").public_key.raw, "Us", "enforcement", "NL")
RELAY = identity("screen: relay")
AUTHOR = identity("screen: author")
POLICY = parse_policy(
    {
        "rule": [
            {
                "name": "hold-le-only",
                "action": "quarantine",
                "record": {"flags": ["law-enforcement-only"]},
                "sender": {"category": ["enforcement"]},
            }
        ]
    }
)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(database_url, network=NETWORK)
    await opened.peers.add(RELAY.public_key.raw, "127.0.0.1:9", now_ms=T0, category="enforcement")
    try:
        yield opened
    finally:
        await opened.close()


seen: list[tuple[Arrival, int]] = []


def screen(arrival: Arrival, hops: int) -> InboundDecision:
    seen.append((arrival, hops))
    sender = Recipient(RELAY.public_key.raw, "Relay", "enforcement", "BE")
    return decide_inbound(arrival, sender, now_ms=T0 + 10_000, us=US, hops=hops, policy=POLICY)


def record(n: int, scope: Scope) -> bytes:
    """The first record of the n-th of several authors (one author's records must chain)."""
    return make_record(identity(f"screen: author {n}"), 1, None, scope=scope).wire


async def ingest(store: Store, wires: list[bytes], hops: list[int], cursor: int = 1) -> object:
    return await store.ingest(wires, source=RELAY.public_key.raw, hops=hops, cursor=cursor, screen=screen)


async def test_the_screen_sees_every_verified_record_with_its_relay_count(store: Store) -> None:
    seen.clear()
    wire = record(1, Scope.create("green"))
    report = await ingest(store, [wire, b"garbage"], [0, 0])
    ((arrival, hops),) = seen
    assert (
        arrival.author == identity("screen: author 1").public_key.raw
        and arrival.kind == "lead"
        and arrival.scope.tlp == "green"
    )
    assert hops == 1, "the relay is not the author, so it is one relay at least"
    assert report.stored == [arrival.id]  # type: ignore[attr-defined]
    assert (await store.read_log(0, limit=5))[0].hops == 1


async def test_a_rejected_record_is_not_stored_and_says_whose_fault(store: Store) -> None:
    strict = record(1, Scope.create("amber+strict"))  # relayed, although never relayed
    fine = record(2, Scope.create("green"))
    report = await ingest(store, [strict, fine], [1, 1], cursor=9)
    assert len(report.stored) == 1 and await store.count() == 1  # type: ignore[attr-defined]
    (rejection,) = report.rejected  # type: ignore[attr-defined]
    assert rejection.index == 0 and rejection.by_policy and rejection.misbehaved and not rejection.invalid
    assert "relayed by a node that is not its author" in rejection.reason
    assert (await store.peers.get(RELAY.public_key.raw)).cursor == 9  # the batch still counts as read
    assert await store.quarantined() == []


async def test_a_quarantined_record_is_kept_out_of_sight_until_released(store: Store) -> None:
    held = make_record(AUTHOR, 1, None, scope=Scope.create("green", flags=["law-enforcement-only"]))
    other = make_record(AUTHOR, 2, held.id)
    report = await ingest(store, [held.wire, other.wire], [1, 1])
    assert report.quarantined == [held.id] and report.stored == [other.id]  # type: ignore[attr-defined]
    assert [item.record.id for item in await store.query(QueryFilters())] == [other.id]
    assert [entry.wire for entry in await store.read_log(0, limit=10)] == [other.wire]
    with pytest.raises(RecordNotFound):
        await store.get(held.id.hex())
    assert await store.count() == 1

    (waiting,) = await store.quarantined()
    assert waiting.record.id == held.id and waiting.source == RELAY.public_key.raw and waiting.hops == 1
    assert waiting.reasons == (
        "rule hold-le-only (quarantine): flags include [law-enforcement-only]; "
        "sender: category in [enforcement]",
    )

    again = await ingest(store, [held.wire], [1], cursor=2)  # the same record once more: kept once
    assert again.quarantined == [] and len(await store.quarantined()) == 1  # type: ignore[attr-defined]

    released = await store.release(held.id.hex()[:12])
    assert released.id == held.id and await store.quarantined() == []
    log = await store.read_log(0, limit=10)
    assert [(e.wire, e.hops, e.source) for e in log] == [
        (other.wire, 1, RELAY.public_key.raw),
        (held.wire, 1, RELAY.public_key.raw),
    ]
    assert (await store.get(held.id.hex())).hops == 1
    with pytest.raises(RecordNotFound, match="in quarantine"):
        await store.release(held.id.hex())


async def test_dropping_a_quarantined_record(store: Store) -> None:
    held = make_record(AUTHOR, 1, None, scope=Scope.create("green", flags=["law-enforcement-only"]))
    await ingest(store, [held.wire], [1])
    assert await store.drop(held.id.hex()[:10]) == held.id
    assert await store.quarantined() == [] and await store.count() == 0
    with pytest.raises(RecordNotFound):
        await store.drop(held.id.hex())


async def test_a_record_of_a_frozen_author_cannot_be_released(store: Store) -> None:
    records = chain(AUTHOR, 2)
    twin = make_record(AUTHOR, 2, records[0].id, tag="fork")
    await store.ingest([r.wire for r in records] + [twin.wire])  # equivocation: the author is frozen
    held = make_record(AUTHOR, 3, records[1].id, scope=Scope.create("green", flags=["law-enforcement-only"]))
    await ingest(store, [held.wire], [1])
    with pytest.raises(StoreError, match="frozen"):
        await store.release(held.id.hex())
    assert len(await store.quarantined()) == 1  # nothing changed


async def test_removing_the_peer_keeps_its_quarantined_records(store: Store) -> None:
    held = make_record(AUTHOR, 1, None, scope=Scope.create("green", flags=["law-enforcement-only"]))
    await ingest(store, [held.wire], [1])
    await store.peers.remove(RELAY.public_key.raw)
    (waiting,) = await store.quarantined()
    assert waiting.source is None


async def test_a_relay_cannot_shorten_a_path_below_one_relay(store: Store) -> None:
    wire = record(1, Scope.create("green"))
    await store.ingest([wire], source=None)  # held first from a bundle: 0 relays recorded
    far = identity("screen: far")
    await store.peers.add(far.public_key.raw, "127.0.0.1:8", now_ms=T0)
    await store.ingest([wire], source=far.public_key.raw, hops=[0], cursor=1)
    (entry,) = await store.read_log(0, limit=5)
    assert entry.hops == 0 and entry.position == 1, "a claim of 0 from a non-author moved nothing"


@pytest.mark.parametrize("verdict", ["reject", "quarantine"])
async def test_a_copy_the_screen_refuses_does_not_shorten_the_path(store: Store, verdict: str) -> None:
    """A record held at two relays comes again straight from its author, whom a local rule refuses: the
    stored path stays as it was (found by the leak oracle: the shorter count let the record travel
    further than any path the node accepts allows). The same copy from an accepted author relogs it."""
    author = identity("screen: author 7")
    wire = make_record(author, 1, None, scope=Scope.create("green", relay_hops=3)).wire
    await store.peers.add(author.public_key.raw, "127.0.0.1:7", now_ms=T0)
    await ingest(store, [wire], hops=[2])
    refused = parse_policy(
        {"rule": [{"name": "not-from-7", "action": verdict, "sender": {"node": [author.node_id]}}]}
    )
    sender = Recipient(author.public_key.raw, "Author", "enforcement", "BE")

    def screen_with(policy: Policy) -> Screen:
        def screen(arrival: Arrival, hops: int) -> InboundDecision:
            return decide_inbound(arrival, sender, now_ms=T0 + 10_000, us=US, hops=hops, policy=policy)

        return screen

    source = author.public_key.raw
    report = await store.ingest([wire], source=source, hops=[0], cursor=1, screen=screen_with(refused))
    assert report.stored == [] and report.quarantined == []
    (entry,) = await store.read_log(0, limit=5)
    assert (entry.position, entry.hops, entry.source) == (1, 2, RELAY.public_key.raw)

    await store.ingest([wire], source=source, hops=[0], cursor=2, screen=screen_with(NO_RULES))
    (entry,) = await store.read_log(0, limit=5)
    assert (entry.position, entry.hops, entry.source) == (2, 0, source)
