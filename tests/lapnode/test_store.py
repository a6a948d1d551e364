"""The store against both backends: idempotence, chain rules, equivocation, queries, publish locking."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import event, text

from lapnode.errors import InputError
from lapnode.store import (
    LogEntry,
    QueryFilters,
    RecordNotFound,
    Store,
    StoreError,
    sql,
)
from lapnode.verification.rows import RecordRow
from protocol.envelope import Record, RecordId
from protocol.kinds import SealedBody, body_from_document, parse_body
from protocol.scope import Scope
from protocol.sealed import open_sealed
from tests.factories import NETWORK, T0, chain, contact_document, identity, lead_document, make_record


async def test_ingest_is_idempotent(store: Store) -> None:
    records = chain(identity("alice"), 5)
    first = await store.ingest([r.wire for r in records])
    assert first.stored == [r.id for r in records] and not first.rejected
    again = await store.ingest([r.wire for r in records] + [records[0].wire])
    assert again.stored == [] and again.duplicates == 6
    assert await store.count() == 5


async def test_records_of_another_network_and_tampered_ones_are_rejected(store: Store) -> None:
    good = chain(identity("alice"), 2)
    foreign = make_record(identity("bob"), 1, None, network="other-net")
    tampered = bytearray(good[1].wire)
    tampered[-5] ^= 0x01
    report = await store.ingest([good[0].wire, bytes(tampered), foreign.wire])
    assert report.stored == [good[0].id]
    assert [r.index for r in report.rejected] == [1, 2]
    assert "network" in report.rejected[1].reason
    assert await store.count() == 1


async def test_gaps_are_normal_and_late_records_fill_them(store: Store) -> None:
    records = chain(identity("alice"), 5)
    await store.ingest([records[i].wire for i in (0, 1, 4)])
    report = await store.ingest([records[3].wire, records[2].wire])
    assert len(report.stored) == 2 and not report.rejected
    assert await store.frozen_authors() == []


async def test_equivocation_keeps_both_and_freezes_the_author(store: Store) -> None:
    alice = identity("alice")
    records = chain(alice, 2)
    twin = make_record(alice, 2, records[0].id, tag="fork")
    assert twin.id != records[1].id
    await store.ingest([r.wire for r in records])
    report = await store.ingest([twin.wire])
    assert report.stored == [twin.id] and report.frozen_authors == [alice.public_key.raw]
    frozen = await store.frozen_authors()
    assert len(frozen) == 1 and frozen[0].evidence[0][0] == 2
    later = make_record(alice, 3, records[1].id)
    refused = await store.ingest([later.wire])
    assert refused.stored == [] and "frozen" in refused.rejected[0].reason
    assert await store.count() == 3


async def test_a_broken_chain_link_is_equivocation(store: Store) -> None:
    alice = identity("alice")
    first = chain(alice, 1)[0]
    other_first = make_record(alice, 1, None, tag="other")
    second = make_record(alice, 2, other_first.id)
    await store.ingest([first.wire])
    report = await store.ingest([second.wire])
    assert report.frozen_authors == [alice.public_key.raw]


async def test_concurrent_publishes_never_share_a_sequence_number(store: Store) -> None:
    alice = identity("alice")

    def build(seq: int, prev: RecordId | None) -> Record:
        return make_record(alice, seq, prev, tag=f"pub{seq}")

    published = await asyncio.gather(*(store.publish(alice.public_key.raw, build) for _ in range(12)))
    assert sorted(r.header.seq for r in published) == list(range(1, 13))
    by_seq = {r.header.seq: r for r in published}
    for seq in range(2, 13):
        assert by_seq[seq].header.prev == by_seq[seq - 1].id
    assert await store.frozen_authors() == []


async def test_query_filters(store: Store) -> None:
    alice, bob = identity("alice"), identity("bob")
    lead = make_record(alice, 1, None, document=lead_document(1, "Pharma-Spam.EXAMPLE."))
    contact = make_record(bob, 1, None, kind="contact", document=contact_document("AU"), created=T0 + 10)
    other = make_record(alice, 2, lead.id, document=lead_document(2, "other.example"), created=T0 + 5000)
    await store.ingest([lead.wire, contact.wire, other.wire])

    async def ids(**filters: object) -> list[bytes]:
        return [s.record.id for s in await store.query(QueryFilters(**filters))]  # type: ignore[arg-type]

    assert await ids() == [other.id, lead.id, contact.id]
    assert await ids(kind="contact") == [contact.id]
    assert await ids(author=alice.public_key.raw) == [other.id, lead.id]
    assert await ids(indicator="pharma-spam.example.") == [lead.id]
    assert await ids(indicator="PHARMA-SPAM.example") == [lead.id]
    assert await ids(indicator="198.51.100.7") == [other.id, lead.id]
    assert await ids(jurisdiction="au") == [contact.id]
    assert await ids(since=T0 + 1001, until=T0 + 5001) == [other.id]
    assert await ids(text="CAMPAIGN 2") == [other.id]
    assert await ids(text="100%_") == []
    assert await ids(limit=1) == [other.id]


async def test_get_by_id_and_prefix(store: Store) -> None:
    records = chain(identity("alice"), 3)
    await store.ingest([r.wire for r in records])
    found = await store.get(records[1].id.hex()[:12])
    assert found.record.id == records[1].id
    with pytest.raises(RecordNotFound):
        await store.get("00" * 32)
    with pytest.raises(InputError):
        await store.get("abc")


async def test_reopening_an_existing_store_keeps_everything(database_url: str) -> None:
    records = chain(identity("alice"), 3)
    first = await Store.open(database_url, network=NETWORK)
    await first.ingest([r.wire for r in records])
    await first.close()
    second = await Store.open(database_url, network=NETWORK)
    try:
        assert await second.count() == 3
    finally:
        await second.close()


@pytest.mark.parametrize(
    "filters",
    [
        QueryFilters(),
        QueryFilters(indicator="pharma-spam.example"),  # the ranked walk on SQLite (lapnode/store/ranked.py)
        QueryFilters(text="pharmacy"),
        QueryFilters(jurisdiction="NL", kind="lead"),
    ],
)
async def test_a_tampered_row_is_never_shown(database_url: str, filters: QueryFilters) -> None:
    records = chain(identity("alice"), 1)
    store = await Store.open(database_url, network=NETWORK)
    try:
        await store.ingest([records[0].wire])
        assert [r.record.id for r in await store.query(filters)] == [records[0].id]
        async with store._engine.begin() as conn:  # simulating an attacker with database access
            wire = bytearray(records[0].wire)
            wire[-3] ^= 0x01
            await conn.execute(text("UPDATE records SET wire = :w"), {"w": bytes(wire)})
        with pytest.raises(StoreError):
            await store.query(filters)
        with pytest.raises(StoreError):
            await store.get(records[0].id.hex())
    finally:
        await store.close()


async def test_an_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(StoreError) as caught:
        await Store.open("postgresql+asyncpg://nobody:s3cret@127.0.0.1:1/none", network=NETWORK)
    assert "s3cret" not in str(caught.value)
    assert "\n" not in str(caught.value)


async def test_holdings_are_ranges_with_gaps(store: Store) -> None:
    alice, bob = identity("alice"), identity("bob")
    records = chain(alice, 6)
    await store.ingest([records[i].wire for i in (0, 1, 2, 4)] + [chain(bob, 1)[0].wire])
    holdings = await store.holdings()
    assert holdings[alice.public_key.raw] == ((1, 3), (5, 5))
    assert holdings[bob.public_key.raw] == ((1, 1),)


async def test_holdings_for_a_publisher_leave_out_what_it_could_bring_closer(store: Store) -> None:
    alice, bob, relay = identity("alice"), identity("bob"), identity("relay")
    for peer in (alice, relay):
        await store.peers.add(peer.public_key.raw, "127.0.0.1:9", now_ms=T0)
    a, b = chain(alice, 3), chain(bob, 2)
    await store.ingest([a[0].wire], source=alice.public_key.raw, hops=[0])
    await store.ingest([a[1].wire, a[2].wire, b[0].wire], source=relay.public_key.raw, hops=[1, 2, 1])
    await store.ingest([b[1].wire])  # imported: held at 0 relays
    everything = {alice.public_key.raw: ((1, 3),), bob.public_key.raw: ((1, 2),)}
    assert await store.holdings() == everything
    # Alice herself could give us alice 2 and 3 at 0 relays; nobody can give bob 1 at fewer than 1.
    assert await store.holdings(publisher=alice.public_key.raw) == {
        alice.public_key.raw: ((1, 1),),
        bob.public_key.raw: ((1, 2),),
    }
    # Any other publisher (an author we never stored, or none) relays at 1 at best: only alice 3 is out.
    for publisher in (relay, identity("carol")):
        assert await store.holdings(publisher=publisher.public_key.raw) == {
            alice.public_key.raw: ((1, 2),),
            bob.public_key.raw: ((1, 2),),
        }


async def test_log_keeps_source_hops_and_moves_the_cursor_with_the_commit(store: Store) -> None:
    peer = identity("peer")
    await store.peers.add(peer.public_key.raw, "127.0.0.1:9", now_ms=T0, category="enforcement")
    records = chain(identity("alice"), 3)
    await store.ingest([r.wire for r in records], source=peer.public_key.raw, hops=[0, 1, 2], cursor=42)
    log = await store.read_log(0, limit=10)
    # The peer is not the author, so it is at least one relay whatever count it states (SPEC §6.5).
    assert [(e.position, e.hops, e.source) for e in log] == [
        (1, 1, peer.public_key.raw),
        (2, 1, peer.public_key.raw),
        (3, 2, peer.public_key.raw),
    ]
    assert [e.wire for e in await store.read_log(2, limit=10)] == [records[2].wire]
    stored_peer = await store.peers.get(peer.public_key.raw)
    assert stored_peer.cursor == 42 and stored_peer.records_received == 3
    await store.ingest([], source=peer.public_key.raw, cursor=7)
    assert (await store.peers.get(peer.public_key.raw)).cursor == 42  # never moves back
    assert await store.head() == 3


async def test_waiting_for_growth_wakes_on_a_new_record(store: Store) -> None:
    waiter = asyncio.create_task(store.wait_for_growth(0, timeout=5))
    await asyncio.sleep(0.05)
    await store.ingest([chain(identity("alice"), 1)[0].wire])
    assert await asyncio.wait_for(waiter, 2) == 1
    assert await store.wait_for_growth(1, timeout=0.01) == 1


@contextlib.contextmanager
def connections_opened(store: Store) -> Iterator[list[object]]:
    """The database connections `store` opens inside the block (bounded work: none, for a memory answer)."""
    opened: list[object] = []

    def count(*args: object) -> None:
        opened.append(args)

    sync_engine = store._engine.sync_engine
    event.listen(sync_engine, "engine_connect", count)
    try:
        yield opened
    finally:
        event.remove(sync_engine, "engine_connect", count)


async def ingest_elsewhere(database_url: str, wires: list[bytes]) -> None:
    """Store records through a second store on the same database, as another process would."""
    other = await Store.open(database_url, network=NETWORK)
    try:
        await other.ingest(wires)
    finally:
        await other.close()


async def test_a_caught_up_feed_asks_the_database_nothing_while_the_head_is_fresh(
    store: Store, database_url: str
) -> None:
    records = chain(identity("alice"), 4)
    await store.ingest([r.wire for r in records[:3]])
    assert await store.wait_for_growth(0, timeout=1) == 3
    with connections_opened(store) as connects:
        assert await store.read_log(3, limit=10) == []
    assert connects == []
    # A record another process stores is still found, when the head is read again (the poll).
    await ingest_elsewhere(database_url, [records[3].wire])
    assert await store.wait_for_growth(3, timeout=5) == 4
    assert [entry.position for entry in await store.read_log(3, limit=10)] == [4]


async def test_feeds_asking_at_once_for_what_another_process_wrote_share_one_query(
    store: Store, database_url: str
) -> None:
    records = chain(identity("alice"), 2)
    await store.ingest([records[0].wire])
    await ingest_elsewhere(database_url, [records[1].wire])
    assert await store.wait_for_growth(1, timeout=5) == 2
    with connections_opened(store) as connects:
        reads = await asyncio.gather(*(store.read_log(1, limit=10) for _ in range(4)))
        assert [[entry.position for entry in read] for read in reads] == [[2]] * 4
        assert len(connects) == 1
        # What that query read is in memory now (lapnode/store/tail.py Rule 4): a later asker costs nothing.
        assert [entry.wire for entry in await store.read_log(1, limit=10)] == [records[1].wire]
    assert len(connects) == 1


@contextlib.asynccontextmanager
async def sqlite_store(url: str) -> AsyncIterator[Store]:
    """A store on SQLite alone, for what lapnode/store/engine.py does on SQLite only (PostgreSQL keeps the
    pool's own reset, and its writers queue on an advisory lock)."""
    opened = await Store.open(url, network=NETWORK)
    try:
        yield opened
    finally:
        await opened.close()


async def test_a_connection_returned_inside_a_transaction_is_rolled_back(sqlite_url: str) -> None:
    async with sqlite_store(sqlite_url) as store:
        async with store._engine.connect() as conn:
            # Driver-level, so SQLAlchemy does not know of the transaction and will not end it itself.
            await sql.execute(conn, "BEGIN IMMEDIATE", ())
        # Had the pool kept that transaction open, this write would wait for its lock (or fail on BEGIN).
        report = await asyncio.wait_for(store.ingest([chain(identity("alice"), 1)[0].wire]), 5)
    assert len(report.stored) == 1


async def test_writers_of_one_process_queue_for_the_lock_before_taking_a_connection(sqlite_url: str) -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    async with sqlite_store(sqlite_url) as store:

        async def hold() -> None:
            async with store._write():
                entered.set()
                await release.wait()

        holder = asyncio.create_task(hold())
        await entered.wait()
        with connections_opened(store) as connects:
            waiting = asyncio.create_task(store.ingest([chain(identity("alice"), 1)[0].wire]))
            await asyncio.sleep(0.1)
            # Queued in this process, not sleeping in SQLite's busy handler on a connection of its own.
            assert connects == [] and not waiting.done()
            release.set()
            report = await asyncio.wait_for(waiting, 5)
        await holder
    assert len(report.stored) == 1


async def test_asking_for_a_kind_past_a_position_is_answered_from_memory_for_our_own_writes(
    store: Store, database_url: str
) -> None:
    alice = identity("alice")
    first = make_record(alice, 1, None, kind="lead")
    await store.ingest([first.wire])
    await store.ingest([make_record(alice, 2, first.id, kind="contact", document=contact_document()).wire])
    with connections_opened(store) as connects:
        assert await store.has_kind_after("contact", 0) and await store.has_kind_after("contact", 1)
        assert not await store.has_kind_after("lead", 1)
    assert connects == []
    # Another process's write is not in memory: the database answers.
    await ingest_elsewhere(database_url, [make_record(identity("bob"), 1, None, kind="lead").wire])
    assert await store.has_kind_after("lead", 2)


async def test_peer_book(store: Store) -> None:
    key = identity("peer").public_key.raw
    await store.peers.add(key, "127.0.0.1:7450", now_ms=T0, name="opta", jurisdiction="NL")
    await store.peers.set_subscription(key, True, ("lead", "contact"))
    peer = await store.peers.get(key)
    assert peer.subscribed and peer.kinds == ("contact", "lead") and peer.name == "opta"
    await store.peers.set_blocked(key, True)
    peer = await store.peers.get(key)
    assert peer.blocked and not peer.subscribed
    await store.peers.remove(key)
    assert await store.peers.all() == []


async def test_a_shorter_path_relogs_the_record_with_the_smaller_hop_count(store: Store) -> None:
    alice, far = identity("alice"), identity("far")
    near = alice  # the author itself: the only sender whose count of 0 is believed
    for peer in (near, far):
        await store.peers.add(peer.public_key.raw, "127.0.0.1:9", now_ms=T0)
    records = chain(alice, 2)
    await store.ingest([records[0].wire], source=far.public_key.raw, hops=[3], cursor=1)
    await store.ingest([records[1].wire], source=far.public_key.raw, hops=[3], cursor=2)
    report = await store.ingest([records[0].wire], source=near.public_key.raw, hops=[0], cursor=1)
    assert report.stored == [] and report.duplicates == 1
    log = await store.read_log(0, limit=10)
    assert [(e.wire, e.hops, e.source) for e in log] == [
        (records[1].wire, 3, far.public_key.raw),
        (records[0].wire, 0, near.public_key.raw),
    ]
    assert log[-1].position == 3
    assert await store.query(QueryFilters(indicator="pharma-spam.example")) != []
    # Its index terms moved with it: all at the new position, none left at the old one.
    counts = {2: len(RecordRow.of(records[1]).terms), 3: len(RecordRow.of(records[0]).terms)}
    assert await _term_positions(store) == counts
    again = await store.ingest([records[0].wire], source=far.public_key.raw, hops=[5], cursor=3)
    assert again.duplicates == 1 and (await store.read_log(2, limit=10))[0].hops == 0


async def _term_positions(store: Store) -> dict[int, int]:
    """How many index terms each log position has (the table has no public reader)."""
    async with store._engine.connect() as conn:
        rows = await conn.execute(text("SELECT record_id, COUNT(*) FROM terms GROUP BY record_id"))
        return {int(position): int(count) for position, count in rows}


async def test_a_held_record_is_not_verified_again_and_a_tampered_copy_changes_nothing(store: Store) -> None:
    record = chain(identity("alice"), 1)[0]
    await store.ingest([record.wire])
    tampered = bytearray(record.wire)
    tampered[12] ^= 0x01  # a salt inside the disclosures (the first key): same header and signature, same id
    report = await store.ingest([bytes(tampered)])
    assert report.duplicates == 1 and report.stored == [] and report.rejected == []
    assert (await store.get(record.id.hex())).record.wire == record.wire


async def test_copies_already_held_cost_no_transaction_and_their_cursor_waits(store: Store) -> None:
    peer = identity("peer")
    await store.peers.add(peer.public_key.raw, "127.0.0.1:9", now_ms=T0)
    records = chain(identity("alice"), 3)
    await store.ingest([r.wire for r in records[:2]], source=peer.public_key.raw, hops=[1, 1], cursor=5)
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    sync_engine = store._engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", count)
    try:
        copies = await store.ingest(
            [records[1].wire, records[0].wire], source=peer.public_key.raw, hops=[2, 1], cursor=9
        )
    finally:
        event.remove(sync_engine, "before_cursor_execute", count)
    assert copies.duplicates == 2 and copies.stored == [] and statements == []
    assert (await store.peers.get(peer.public_key.raw)).cursor == 5
    # The next real batch from that peer carries the waiting cursor with it.
    await store.ingest([records[2].wire], source=peer.public_key.raw, hops=[1], cursor=7)
    assert (await store.peers.get(peer.public_key.raw)).cursor == 9
    # A copy by a shorter path (straight from its author) is not a mere copy: it is relogged.
    alice = identity("alice")
    await store.peers.add(alice.public_key.raw, "127.0.0.1:10", now_ms=T0)
    shorter = await store.ingest([records[0].wire], source=alice.public_key.raw, hops=[0], cursor=10)
    assert shorter.duplicates == 1
    assert (await store.read_log(0, limit=10))[-1].wire == records[0].wire


async def test_a_sealed_record_is_stored_as_ciphertext_and_indexed_by_header_only(store: Store) -> None:
    """SPEC §3.7: a node stores the record as received; no term or search text comes from a sealed body."""
    alice, carol = identity("alice"), identity("carol")
    sealed_scope = Scope.create("red", members=[carol.public_key.raw], flags=["sealed"])
    sealed = make_record(alice, 1, None, document=lead_document(1, "sealed-only.example"), scope=sealed_scope)
    clear = make_record(alice, 2, sealed.id, document=lead_document(2, "clear.example"))
    report = await store.ingest([sealed.wire, clear.wire])
    assert report.stored == [sealed.id, clear.id]

    async def ids(**filters: object) -> list[bytes]:
        return [s.record.id for s in await store.query(QueryFilters(**filters))]  # type: ignore[arg-type]

    assert await ids(kind="lead") == [clear.id, sealed.id]
    assert await ids(author=alice.public_key.raw) == [clear.id, sealed.id]
    assert await ids(indicator="sealed-only.example") == []
    assert await ids(indicator="198.51.100.7") == [clear.id]
    assert await ids(text="campaign 1") == []
    held = await store.get(sealed.id.hex())
    assert held.record.wire == sealed.wire and isinstance(held.record.body, SealedBody)
    fields = body_from_document("lead", lead_document(1, "sealed-only.example"))
    assert open_sealed(held.record, carol) == parse_body("lead", 1, fields, frozenset(fields))


async def test_the_log_read_back_from_memory_is_the_log_in_the_database(database_url: str) -> None:
    peer = identity("peer")
    writer = await Store.open(database_url, network=NETWORK)
    try:
        await writer.peers.add(peer.public_key.raw, "127.0.0.1:9", now_ms=T0)
        alice, bob = chain(identity("alice"), 3), chain(identity("bob"), 2)
        await writer.ingest([r.wire for r in alice], source=peer.public_key.raw, hops=[0, 1, 2], cursor=3)
        await writer.ingest([bob[0].wire])
        # Another process writes a record in between: the tail has a gap and must not hide it.
        other = await Store.open(database_url, network=NETWORK)
        try:
            await other.ingest([bob[1].wire])
        finally:
            await other.close()
        late = chain(identity("carol"), 1)
        await writer.ingest([late[0].wire], source=peer.public_key.raw, hops=[1], cursor=4)
        fresh = await Store.open(database_url, network=NETWORK)  # reads the database only
        try:
            for after in range(0, 7):
                # A read may stop short at a gap in memory (the feed reads on from there), never skip one.
                assert await read_to_end(writer, after) == await fresh.read_log(after, limit=10)
        finally:
            await fresh.close()
        assert [e.position for e in await read_to_end(writer, 0)] == [1, 2, 3, 4, 5, 6]
    finally:
        await writer.close()


async def read_to_end(store: Store, after: int) -> list[LogEntry]:
    entries: list[LogEntry] = []
    while batch := await store.read_log(after, limit=10):
        entries += batch
        after = batch[-1].position
    return entries
