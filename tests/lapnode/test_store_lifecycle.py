"""Purging against both backends (SPEC §4, §8.10): tombstones, expiry and retention per kind.

Each test checks the three promises of a purge: the content is gone from every reader (get, query,
indicator search, the log a feed reads), the row stays (same id, counted, chain intact), and storing the
record again changes nothing.
"""

from __future__ import annotations

from sqlalchemy import func, select

from lapnode.clock import now_ms
from lapnode.daemon.feed import select_for
from lapnode.policy import NO_RULES, Recipient
from lapnode.store import QueryFilters, Store
from lapnode.store.schema import records, terms
from protocol.envelope import Record
from protocol.scope import Scope
from protocol.statements import issue_retraction, issue_rotation
from tests.factories import NETWORK, T0, chain, contact_document, identity, make_record

ALICE, BOB = identity("alice"), identity("bob")
DAY = 86_400_000
RETRACTED_AT = now_ms()
READER = Recipient(identity("reader").public_key.raw, category="enforcement", jurisdiction="NL")


def tombstone(target: Record, *, by: object = ALICE, reason: str = "error") -> object:
    return issue_retraction(
        by,  # type: ignore[arg-type]
        network=NETWORK,
        target=target.id,
        reason=reason,
        retracted_at=RETRACTED_AT,
    )


async def content_visible(store: Store, record: Record) -> list[str]:
    """Every reader that still yields the record's content (the list must be empty after a purge)."""
    found: list[str] = []
    held = await store.get(record.id.hex())
    if held.purged is None or held.record.disclosures:
        found.append("get")
    if any(item.record.id == record.id for item in await store.query(QueryFilters(limit=1000))):
        found.append("query")
    if any(
        item.record.id == record.id
        for item in await store.query(QueryFilters(indicator="pharma-spam.example", limit=1000))
    ):
        found.append("indicator")
    entries = await store.read_log(0, limit=1000)
    mine = [entry for entry in entries if entry.rid == record.id]
    if any(entry.purged is None or entry.wire != held.record.wire for entry in mine):
        found.append("log")
    selection = select_for(
        entries,
        READER,
        kinds=frozenset(),
        vector={},
        policy=NO_RULES,
        our_key=b"\x00" * 32,
        now_ms=now_ms(),
        network=NETWORK,
    )
    if any(item.wire == record.wire or item.wire == held.record.wire for item in selection.items):
        found.append("feed")
    return found


async def term_rows(store: Store, position_of: Record) -> int:
    # The index table has no public reader: look at it directly.
    async with store._engine.connect() as conn:
        position = (await conn.execute(select(records.c.id).where(records.c.rid == position_of.id))).scalar()
        count = await conn.execute(
            select(func.count()).select_from(terms).where(terms.c.record_id == position)
        )
        return int(count.scalar_one())


async def test_a_tombstone_purges_the_authors_record_and_keeps_the_row(store: Store) -> None:
    records_ = chain(ALICE, 3)
    await store.ingest([r.wire for r in records_])
    target = records_[1]
    assert await term_rows(store, target) > 0
    # Live, every reader yields it: the check below can see content where there is some.
    assert await content_visible(store, target) == ["get", "query", "indicator", "log", "feed"]
    stored = await store.statements.add([tombstone(target)], now_ms=now_ms())  # type: ignore[list-item]
    assert len(stored) == 1
    held = await store.get(target.id.hex())
    assert held.purged == "retracted" and held.record.id == target.id and not held.record.disclosures
    assert held.record.signature == target.signature
    assert await content_visible(store, target) == []
    assert await term_rows(store, target) == 0
    assert await store.count() == 3
    # The others are untouched, and the chain around the stub is still whole (no equivocation).
    assert {item.record.id for item in await store.query(QueryFilters(limit=10))} == {
        records_[0].id,
        records_[2].id,
    }
    assert await store.frozen_authors() == []
    assert await store.purged_counts() == {"retracted": 1}


async def test_storing_a_purged_record_again_is_a_no_op(store: Store) -> None:
    (record,) = chain(ALICE, 1)
    await store.ingest([record.wire])
    await store.statements.add([tombstone(record)], now_ms=now_ms())  # type: ignore[list-item]
    again = await store.ingest([record.wire], source=BOB.public_key.raw, hops=[1], cursor=1)
    assert again.stored == [] and again.duplicates == 1
    assert await content_visible(store, record) == []
    # A second copy of the tombstone is a no-op too.
    assert await store.statements.add([tombstone(record)], now_ms=now_ms()) == []  # type: ignore[list-item]


async def test_a_record_arriving_after_its_tombstone_is_stored_as_a_stub(store: Store) -> None:
    first, second = chain(ALICE, 2)
    await store.statements.add([tombstone(second, reason="withdrawn")], now_ms=now_ms())  # type: ignore[list-item]
    report = await store.ingest([first.wire, second.wire])
    assert report.stored == [first.id, second.id]
    held = await store.get(second.id.hex())
    assert held.purged == "retracted" and not held.record.disclosures
    assert await content_visible(store, second) == []
    assert await term_rows(store, second) == 0
    live = await store.get(first.id.hex())
    assert live.purged is None and live.record.disclosures


async def test_a_tombstone_by_anyone_else_is_kept_and_purges_nothing(store: Store) -> None:
    (record,) = chain(ALICE, 1)
    await store.ingest([record.wire])
    forged = tombstone(record, by=BOB)
    stored = await store.statements.add([forged], now_ms=now_ms())  # type: ignore[list-item]
    assert stored == [forged]  # a valid statement: kept and passed on
    held = await store.get(record.id.hex())
    assert held.purged is None and held.record.wire == record.wire
    # Nor does it turn a later copy into a stub, nor a purge pass act on it.
    await store.purge(now_ms=now_ms(), retention={})
    assert (await store.get(record.id.hex())).purged is None


async def test_the_authors_rotation_successor_may_retract(store: Store) -> None:
    successor = identity("alice, next key")
    first, second = chain(ALICE, 2)
    await store.ingest([first.wire, second.wire])
    # The tombstone by the new key arrives before the rotation: it purges nothing yet...
    await store.statements.add([tombstone(first, by=successor)], now_ms=now_ms())  # type: ignore[list-item]
    assert (await store.get(first.id.hex())).purged is None
    # ...and takes effect when the rotation that makes it the author's key arrives.
    rotation = issue_rotation(ALICE, successor, network=NETWORK, rotated_at=now_ms(), last_seq=2)
    await store.statements.add([rotation], now_ms=now_ms())
    assert (await store.get(first.id.hex())).purged == "retracted"
    assert (await store.get(second.id.hex())).purged is None
    assert await store.may_retract(successor.public_key.raw, ALICE.public_key.raw)
    assert not await store.may_retract(BOB.public_key.raw, ALICE.public_key.raw)


async def test_expired_records_are_purged_and_never_read(store: Store) -> None:
    soon = now_ms() + 60_000
    expiring = make_record(ALICE, 1, None, scope=Scope.create("green", expires=soon))
    lasting = make_record(ALICE, 2, expiring.id, scope=Scope.create("green", expires=soon + 365 * DAY))
    await store.ingest([expiring.wire, lasting.wire])
    assert (await store.purge(now_ms=soon - 1, retention={})).total == 0
    # Past its expiry a read never yields it, purged or not yet.
    later = await store.query(QueryFilters(limit=10, live_at=soon + 1))
    assert [item.record.id for item in later] == [lasting.id]
    report = await store.purge(now_ms=soon + 1, retention={})
    assert (report.expired, report.retracted, report.retention) == (1, 0, 0)
    held = await store.get(expiring.id.hex())
    assert held.purged == "expired" and not held.record.disclosures
    assert await term_rows(store, expiring) == 0
    # Idempotent: the next pass finds nothing.
    assert (await store.purge(now_ms=soon + 2, retention={})).total == 0


async def test_a_record_that_arrives_expired_is_stored_as_a_stub(store: Store) -> None:
    expired = make_record(ALICE, 1, None, scope=Scope.create("green", expires=T0 + 1000))
    report = await store.ingest([expired.wire])
    assert report.stored == [expired.id]
    held = await store.get(expired.id.hex())
    assert held.purged == "expired" and not held.record.disclosures
    assert await content_visible(store, expired) == []


async def test_retention_purges_old_records_of_that_kind_only(store: Store) -> None:
    now = now_ms()
    old_lead = make_record(ALICE, 1, None, created=now - 40 * DAY)
    new_lead = make_record(ALICE, 2, old_lead.id, created=now - 1 * DAY)
    old_contact = make_record(
        ALICE, 3, new_lead.id, kind="contact", document=contact_document(), created=now - 400 * DAY
    )
    await store.ingest([r.wire for r in (old_lead, new_lead, old_contact)])
    report = await store.purge(now_ms=now, retention={"lead": 30 * DAY, "trend": 0})
    assert (report.retention, report.expired, report.retracted) == (1, 0, 0)
    assert (await store.get(old_lead.id.hex())).purged == "retention"
    assert (await store.get(new_lead.id.hex())).purged is None
    assert (await store.get(old_contact.id.hex())).purged is None
    assert await content_visible(store, old_lead) == []


async def test_a_large_purge_runs_in_chunks(store: Store) -> None:
    now = now_ms()
    many = chain(ALICE, 1100, created=now - 10 * DAY)
    await store.ingest([r.wire for r in many])
    report = await store.purge(now_ms=now, retention={"lead": DAY})
    assert report.retention == 1100
    assert await store.query(QueryFilters(limit=10)) == []
    assert await store.purged_counts() == {"retention": 1100}
