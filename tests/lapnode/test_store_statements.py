"""The statement book against both backends, and what a stored revocation does to records (SPEC §8.7):
new records of the revoked key are refused, held ones are kept and flagged."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lapnode.store import AUTHOR_REVOKED, QueryFilters, Store, StoreError
from protocol.statements import Revocation, issue_revocation
from tests.factories import NETWORK, T0, chain, identity

AUTHORITY, ROGUE, HONEST = identity("secretariat"), identity("rogue"), identity("honest")


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(database_url, network=NETWORK)
    try:
        yield opened
    finally:
        await opened.close()


def revocation(subject: bytes = ROGUE.public_key.raw, reason: str = "stolen") -> Revocation:
    return issue_revocation(AUTHORITY, network=NETWORK, subject=subject, reason=reason, issued_at=T0)


async def test_statements_are_stored_once_and_listed_in_order(store: Store) -> None:
    first, second = revocation(), revocation(HONEST.public_key.raw, "left the network")
    assert await store.statements.add([first, first], now_ms=1) == [first]
    assert await store.statements.add([first, second], now_ms=2) == [second]
    assert await store.statements.add([], now_ms=3) == []
    rows = await store.statements.after(0)
    assert [row.wire for row in rows] == [first.wire, second.wire]
    assert [row.kind for row in rows] == ["revoke", "revoke"]
    assert rows[0].subject == ROGUE.public_key.raw and rows[0].signer == AUTHORITY.public_key.raw
    assert await store.statements.after(rows[0].position) == rows[1:]
    assert await store.statements.head() == rows[1].position
    assert sorted(await store.statements.ids()) == sorted([first.id, second.id])
    assert await store.revoked_keys() == {ROGUE.public_key.raw, HONEST.public_key.raw}


async def test_a_revocation_refuses_new_records_and_flags_held_ones(store: Store) -> None:
    rogue_records, honest_records = chain(ROGUE, 4), chain(HONEST, 2)
    await store.ingest([r.wire for r in rogue_records[:2]] + [honest_records[0].wire])
    await store.statements.add([revocation()], now_ms=1)

    report = await store.ingest([rogue_records[3].wire, rogue_records[2].wire, honest_records[1].wire])
    assert report.stored == [honest_records[1].id]
    assert [(r.index, r.reason, r.invalid) for r in report.rejected] == [
        (0, "the author's key has been revoked", False),  # not the sender's fault: no penalty
        (1, "the author's key has been revoked", False),
    ]
    # A copy of a record held before the revocation is still just a duplicate.
    assert (await store.ingest([rogue_records[0].wire])).duplicates == 1

    held = {item.record.id: item.flags for item in await store.query(QueryFilters(limit=100))}
    assert held == {
        rogue_records[0].id: (AUTHOR_REVOKED,),
        rogue_records[1].id: (AUTHOR_REVOKED,),
        honest_records[0].id: (),
        honest_records[1].id: (),
    }
    assert (await store.get(rogue_records[0].id.hex())).flags == (AUTHOR_REVOKED,)
    with pytest.raises(StoreError, match="revoked"):
        await store.publish(ROGUE.public_key.raw, lambda seq, prev: chain(ROGUE, seq)[-1])
