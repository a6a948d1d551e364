"""The store's interop tables and log reads, on SQLite and PostgreSQL: drafts, TAXII tokens, export pages."""

from __future__ import annotations

import asyncio

from lapnode.interop.tokens import new_token, token_hash
from lapnode.store import Store, TokenEntry
from tests.factories import NETWORK, chain, identity, make_record


async def test_drafts_are_idempotent_by_fingerprint_and_published_once(database_url: str) -> None:
    store = await Store.open(database_url, network=NETWORK)
    try:
        document = {"title": "t", "summary": "s", "status": "suspected"}
        first = await store.drafts.add_all(
            [(b"f" * 32, document, "amber")], kind="lead", source="arf:x", now_ms=1
        )
        again = await store.drafts.add_all(
            [(b"f" * 32, document, None)], kind="lead", source="arf:x", now_ms=2
        )
        assert first[0].new and not again[0].new and again[0].draft.id == first[0].draft.id
        assert again[0].draft.min_tlp == "amber" and again[0].draft.document == document
        await store.drafts.mark_published(first[0].draft.id, b"r" * 32, now_ms=3)
        await store.drafts.mark_published(first[0].draft.id, b"s" * 32, now_ms=4)
        assert (await store.drafts.get(first[0].draft.id)).published_rid == b"r" * 32
        assert await store.drafts.all() == []
        assert len(await store.drafts.all(include_published=True)) == 1
    finally:
        await store.close()


async def test_tokens_are_found_by_hash_only_and_removed(database_url: str) -> None:
    store = await Store.open(database_url, network=NETWORK)
    try:
        token = new_token()
        await store.taxii_tokens.add(TokenEntry("opencti", token_hash(token), None, "industry", "US", 1))
        found = await store.taxii_tokens.find(token_hash(token))
        assert found is not None and found.category == "industry"
        assert await store.taxii_tokens.find(token_hash(new_token())) is None
        assert token not in repr(await store.taxii_tokens.all())
        await store.taxii_tokens.remove("opencti")
        assert await store.taxii_tokens.find(token_hash(token)) is None
    finally:
        await store.close()


async def test_export_pages_and_the_time_search(database_url: str) -> None:
    store = await Store.open(database_url, network=NETWORK)
    try:
        author = identity("interop-store")
        records = chain(author, 6)
        for batch in (records[:2], records[2:4], records[4:]):
            assert not (await store.ingest([r.wire for r in batch])).rejected
            await asyncio.sleep(0.01)  # so the three batches get different receive times
        rows = await store.exports.page(after=0, limit=100)
        assert [row.position for row in rows] == sorted(row.position for row in rows)
        assert len(rows) == 6 and all(row.kind == "lead" for row in rows)
        assert await store.exports.position_at(rows[0].received_at - 1) == 0
        for row in rows:
            last_at_that_time = max(r.position for r in rows if r.received_at <= row.received_at)
            assert await store.exports.position_at(row.received_at) == last_at_that_time
        assert await store.exports.position_at(rows[-1].received_at + 10**6) == rows[-1].position
        assert [r.position for r in await store.exports.page(after=rows[1].position, limit=2)] == [
            rows[2].position,
            rows[3].position,
        ]
        prefix = records[3].id[:6]
        assert [r.wire for r in await store.exports.by_id_prefix(prefix, kind="lead")] == [records[3].wire]
        assert await store.exports.by_id_prefix(prefix, kind="trend") == []
        other = make_record(
            identity("interop-store-2"),
            1,
            None,
            kind="contact",
            document={"organisation": "X", "jurisdiction": "NL", "category": "industry"},
        )
        await store.ingest([other.wire])
        assert [r.kind for r in await store.exports.page(after=0, limit=100, kind="contact")] == ["contact"]
    finally:
        await store.close()
