"""Versions in the store, on both backends: the `supersedes` column, live queries, history (SPEC §5.1)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from lapnode.clock import now_ms
from lapnode.store import QueryFilters, Store
from lapnode.store.schema import records
from protocol.envelope import Record, RecordId
from protocol.scope import Scope
from tests.factories import T0, contact_document, identity, make_record


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(database_url, network="test-net")
    try:
        yield opened
    finally:
        await opened.close()


def version(
    author_name: str, seq: int, prev: Record | None, supersedes: Record | None, *, unit: str, **extra: object
) -> Record:
    document = {**contact_document("AU"), "unit": unit}
    if supersedes is not None:
        document["supersedes"] = supersedes.id.hex()
    return make_record(
        identity(author_name),
        seq,
        prev.id if prev is not None else None,
        kind="contact",
        document=document,
        **extra,  # type: ignore[arg-type]
    )


async def stored_link(store: Store, record: Record) -> bytes | None:
    async with store._engine.connect() as conn:
        return (
            await conn.execute(select(records.c.supersedes).where(records.c.rid == record.id))
        ).scalar_one()


async def ids(store: Store, **filters: object) -> list[RecordId]:
    return [item.record.id for item in await store.query(QueryFilters(**filters))]  # type: ignore[arg-type]


async def test_the_writer_fills_supersedes_and_live_queries_show_the_newest_version(store: Store) -> None:
    first = version("alice", 1, None, None, unit="Spam team")
    second = version("alice", 2, first, first, unit="SMS team")
    third = version("alice", 3, second, second, unit="SMS and email team")
    other = version("bob", 1, None, None, unit="Bob's team")
    report = await store.ingest([r.wire for r in (first, second, third, other)])
    assert not report.rejected
    assert await stored_link(store, first) is None
    assert await stored_link(store, second) == first.id
    assert await stored_link(store, third) == second.id
    now = T0 + 10_000
    assert set(await ids(store, live_at=now)) == {third.id, other.id}
    assert set(await ids(store, live_at=now, all_versions=True)) == {first.id, second.id, third.id, other.id}
    # Every other filter still works together with the live test.
    assert await ids(store, live_at=now, text="sms and email") == [third.id]
    assert await ids(store, live_at=now, text="spam team") == []
    assert await ids(store, live_at=now, all_versions=True, text="spam team") == [first.id]


async def test_history_lists_earlier_and_later_versions_among_the_records_held(store: Store) -> None:
    first = version("alice", 1, None, None, unit="One")
    second = version("alice", 2, first, first, unit="Two")
    third = version("alice", 3, second, second, unit="Three")
    await store.ingest([r.wire for r in (first, second, third)])
    now = T0 + 10_000
    middle = await store.history(second.id, now_ms=now)
    assert [v.id for v in middle.earlier] == [first.id]
    assert [v.id for v in middle.later] == [third.id]
    assert middle.newest is not None and middle.newest.id == third.id and not middle.live
    newest = await store.history(third.id, now_ms=now)
    assert [v.id for v in newest.earlier] == [second.id, first.id] and newest.later == () and newest.live
    assert newest.earlier[0].created == second.header.created and newest.earlier[0].tlp == "green"


async def test_a_version_missing_here_ends_the_walk_without_error(store: Store) -> None:
    first = version("alice", 1, None, None, unit="One")
    second = version("alice", 2, first, first, unit="Two")
    third = version("alice", 3, second, second, unit="Three")
    await store.ingest([first.wire, third.wire])  # scope withheld the middle one from us
    history = await store.history(third.id, now_ms=T0 + 10_000)
    assert history.earlier == () and history.live
    # The first version is not superseded by anything held here, so it is still current here.
    assert set(await ids(store, live_at=T0 + 10_000)) == {first.id, third.id}


async def test_a_supersedes_link_to_another_authors_record_changes_nothing(store: Store) -> None:
    victim = version("alice", 1, None, None, unit="Alice's real team")
    forger = version("mallory", 1, None, victim, unit="Fake team")
    report = await store.ingest([victim.wire, forger.wire])
    assert not report.rejected  # valid, stored, and shown
    assert await stored_link(store, forger) == victim.id
    assert set(await ids(store, live_at=T0 + 10_000)) == {victim.id, forger.id}
    victim_history = await store.history(victim.id, now_ms=T0 + 10_000)
    assert victim_history.later == () and victim_history.live
    assert (await store.history(forger.id, now_ms=T0 + 10_000)).earlier == ()


async def test_an_expired_version_is_not_live(store: Store) -> None:
    first = version("alice", 1, None, None, unit="One")
    # Expiring after the wall clock's now: a record already expired on arrival is stored purged (SPEC §4).
    soon = now_ms() + 60_000
    expired = version("alice", 2, first, first, unit="Two", scope=Scope.create("green", expires=soon))
    await store.ingest([first.wire, expired.wire])
    assert await ids(store, live_at=soon - 1_000) == [expired.id]
    # Once the correction expires, it hides nothing: the earlier version is current again until purged.
    assert await ids(store, live_at=soon + 1_000) == [first.id]
    assert not (await store.history(expired.id, now_ms=soon + 1_000)).live
