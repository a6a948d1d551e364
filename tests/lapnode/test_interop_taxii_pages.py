"""TAXII pages over a real store: keyset `next`, bounded scans past withheld records, added_after."""

from __future__ import annotations

from lapnode.exits import token_audience
from lapnode.interop.stix_common import parse_timestamp, timestamp
from lapnode.interop.taxii_collections import Filters, Reader, parse_next
from lapnode.policy import NO_RULES
from lapnode.store import Store
from protocol.scope import Scope
from tests.factories import NETWORK, T0, identity, make_record

AUTHOR = identity("taxii-pages")


async def _store_with(url: str, tlps: list[str]) -> Store:
    store = await Store.open(url, network=NETWORK)
    prev = None
    wires = []
    for seq, tlp in enumerate(tlps, start=1):
        record = make_record(AUTHOR, seq, prev, scope=Scope.create(tlp))
        wires.append(record.wire)
        prev = record.id
    assert not (await store.ingest(wires)).rejected
    return store


async def test_paging_skips_withheld_records_with_bounded_scans(database_url: str) -> None:
    tlps = ["amber+strict"] * 7 + ["green"] + ["red"] * 6 + ["green", "green"]
    store = await _store_with(database_url, tlps)
    try:
        audience = token_audience("t", None, "industry", "US")
        reader = Reader(store, audience, AUTHOR.public_key.raw, NETWORK, T0, {}, scan_rows=5, policy=NO_RULES)
        only = Filters(types=frozenset({"indicator"}))
        pages, cursor, found, decided = 0, None, [], []
        while True:
            page = await reader.page("lead", only, limit=2, cursor=cursor)
            pages += 1
            found += [e.obj["id"] for e in page.entries]
            decided += page.decided
            assert len(page.entries) <= 2
            if page.next is None:
                break
            cursor = parse_next(page.next)
        # Three green leads, each an indicator; at most 5 rows read per request means several requests.
        assert len(found) == len(set(found)) == 3
        assert pages >= len(tlps) // 5
        # The pages together decided every record once, withheld ones included, for the audit trail.
        expected = ["send" if tlp == "green" else "withhold" for tlp in tlps]
        assert [decision.action for _, decision in decided] == expected
        assert len({rid for rid, _ in decided}) == len(tlps)
        everything = Reader(store, audience, AUTHOR.public_key.raw, NETWORK, T0, {}, policy=NO_RULES)
        whole = await everything.page("lead", only, limit=100, cursor=None)
        assert [e.obj["id"] for e in whole.entries] == found and whole.next is None
    finally:
        await store.close()


async def test_added_after_returns_only_later_records(database_url: str) -> None:
    store = await _store_with(database_url, ["green", "green"])
    try:
        reader = Reader(
            store,
            token_audience("t", None, "industry", "US"),
            AUTHOR.public_key.raw,
            NETWORK,
            T0,
            {},
            policy=NO_RULES,
        )
        first = await reader.page("lead", Filters(), limit=100, cursor=None)
        last_added = first.entries[-1].date_added
        assert (await reader.page("lead", Filters(added_after=T0 - 10**12), limit=100, cursor=None)).entries
        later = Filters(added_after=parse_timestamp(last_added))
        # The last millisecond is served again (never missed); nothing older comes back.
        again = await reader.page("lead", later, limit=100, cursor=None)
        assert again.entries and all(e.date_added == last_added for e in again.entries)
        extra = make_record(identity("taxii-pages-2"), 1, None, scope=Scope.create("green"))
        await store.ingest([extra.wire])
        fresh = await reader.page("lead", later, limit=100, cursor=None)
        assert extra.id.hex() in str([e.obj for e in fresh.entries])
        assert all(e.date_added >= last_added for e in fresh.entries)
        assert timestamp(0) < last_added
    finally:
        await store.close()
