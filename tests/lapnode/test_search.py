"""Text and indicator search against both backends (issue #6): word semantics, live records only, the
SQLite index's catch-up, and the ranked walk giving exactly the plain query's answer."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import text

from lapnode.errors import InputError
from lapnode.store import QueryFilters, Store
from lapnode.store.queries import contacts_query
from lapnode.store.search import fts5_query, query_words, tsquery, words
from protocol.envelope import Record
from tests.factories import T0, contact_document, identity, lead_document, make_record

LATER = T0 + 10**9


def lead(
    seq: int,
    title: str,
    summary: str = "Nothing else.",
    subjects: list[dict[str, str]] | None = None,
    created: int | None = None,
    author: str = "alice",
) -> Record:
    document = {
        "title": title,
        "summary": summary,
        "violation_types": ["unsolicited-email"],
        "status": "suspected",
        "subjects": subjects or [{"type": "domain", "value": f"site-{seq}.example"}],
        "victim_locations": ["NL"],
        "requested_assistance": ["information"],
    }
    # Each record the first of its own author: no chains to build, and log order is ours to choose.
    return make_record(identity(f"{author}/{seq}"), 1, None, document=document, created=created or T0 + seq)


async def texts(store: Store, query: str, **filters: object) -> list[str]:
    found = await store.query(QueryFilters(text=query, live_at=LATER, **filters))  # type: ignore[arg-type]
    return [item.record.body.title for item in found]  # type: ignore[attr-defined]


async def test_all_words_must_match_in_any_case_and_as_prefixes(store: Store) -> None:
    records = [
        lead(1, "Pharmacy spam from Botnet X", created=T0 + 1),
        lead(2, "Lottery fraud", "Sent by the BOTNET operators.", created=T0 + 2),
        lead(3, "Pharmaceutical phishing", created=T0 + 3),
    ]
    await store.ingest([r.wire for r in records])
    assert await texts(store, "botnet") == ["Lottery fraud", "Pharmacy spam from Botnet X"]
    assert await texts(store, "BotNet pharmacy") == ["Pharmacy spam from Botnet X"]
    assert await texts(store, "pharm") == []
    assert await texts(store, "pharm*") == ["Pharmaceutical phishing", "Pharmacy spam from Botnet X"]
    assert await texts(store, "PHARMAC* phish*") == ["Pharmaceutical phishing"]
    assert await texts(store, "pharmacy lottery") == []
    # A one-character word matches only itself, with or without a star.
    assert await texts(store, "x") == ["Pharmacy spam from Botnet X"]
    assert await texts(store, "p*") == []


@pytest.mark.parametrize(
    "raw",
    [
        '"botnet',
        "botnet*",
        "botnet OR lottery",
        "NEAR(botnet x)",
        "botnet -x",
        "'botnet'",
        "botnet:*",
        "(botnet",
        "botnet & !x",
        "botnet\\",
        "^botnet",
        "{botnet}",
        "botnet; DROP TABLE records",
    ],
)
async def test_syntax_characters_only_separate_words(store: Store, raw: str) -> None:
    await store.ingest([lead(1, "Botnet X relays").wire, lead(2, "Lottery fraud").wire])
    found = await texts(store, raw)
    # Whatever the syntax characters, the query means "all these words": OR, NEAR, NOT do nothing.
    if set(words(raw)) <= {"botnet", "x", "relays"}:
        assert found == ["Botnet X relays"]
    else:
        assert found == []


@pytest.mark.parametrize("raw", ["***", '"', "  ", "--", "()"])
async def test_input_without_words_is_a_clear_error(store: Store, raw: str) -> None:
    with pytest.raises(InputError, match="at least one word"):
        await store.query(QueryFilters(text=raw))


def test_queries_quote_every_word() -> None:
    assert words('Straße "OR" botnet* x-1') == ["strasse", "or", "botnet", "x", "1"]
    found = query_words('Straße "OR*" x* *y z"*')
    assert found == [("strasse", False), ("or", True), ("x", False), ("y", False), ("z", False)]
    assert fts5_query(found) == '"strasse" AND "or"* AND "x" AND "y" AND "z"'
    assert tsquery(found) == "'strasse' & 'or':* & 'x' & 'y' & 'z'"


def test_the_postgres_expression_matches_the_migration() -> None:
    import importlib

    from lapnode.store.search import PG_VECTOR_SQL

    migration = importlib.import_module("lapnode.store.migrations.versions.0009_search")
    assert migration._PG_VECTOR == PG_VECTOR_SQL


async def test_indicator_search_finds_every_lead_naming_it(store: Store) -> None:
    hit = [
        lead(1, "By domain", subjects=[{"type": "domain", "value": "Bad-Shop.EXAMPLE"}]),
        lead(2, "By mailbox", subjects=[{"type": "email", "value": "sales@bad-shop.example"}]),
        lead(3, "By URL", subjects=[{"type": "url", "value": "https://bad-shop.example/buy"}]),
        lead(4, "Other", subjects=[{"type": "domain", "value": "good-shop.example"}]),
        lead(5, "By IP", subjects=[{"type": "ip", "value": "203.0.113.9"}]),
        lead(6, "By phone", subjects=[{"type": "phone", "value": "+31 20 123 4567"}]),
    ]
    await store.ingest([r.wire for r in hit])

    async def titles(value: str) -> set[str]:
        found = await store.query(QueryFilters(indicator=value, live_at=LATER))
        return {item.record.body.title for item in found}  # type: ignore[attr-defined]

    assert await titles("bad-shop.example") == {"By domain", "By mailbox", "By URL"}
    assert await titles("SALES@Bad-Shop.example") == {"By mailbox"}
    assert await titles("203.0.113.9") == {"By IP"}
    assert await titles("+31201234567") == {"By phone"}
    assert await titles("+31 (20) 123-4567") == {"By phone"}


async def test_purged_and_superseded_records_drop_out(store: Store) -> None:
    subjects = [{"type": "domain", "value": "x.example"}]
    old = lead(1, "Botnet first version", subjects=subjects)
    document = {**lead_document(2, "x.example"), "title": "Botnet second version"}
    new = make_record(identity("alice/1"), 2, old.id, document=document, created=T0 + 2)
    gone = lead(3, "Botnet retracted", subjects=[{"type": "domain", "value": "x.example"}])
    await store.ingest([old.wire, new.wire, gone.wire])
    assert len(await texts(store, "botnet")) == 3  # indexed before the lifecycle changes below
    async with store._engine.begin() as conn:  # what lifecycle code does (issue #5): columns only
        await conn.execute(
            text("UPDATE records SET supersedes = :old WHERE rid = :new"), {"old": old.id, "new": new.id}
        )
        await conn.execute(
            text("UPDATE records SET purged = 'retracted', search_text = '' WHERE rid = :r"), {"r": gone.id}
        )
    assert await texts(store, "botnet") == ["Botnet second version"]
    found = await store.query(QueryFilters(indicator="x.example", live_at=LATER))
    assert [item.record.id for item in found] == [new.id]
    if store._engine.dialect.name == "sqlite":
        async with store._engine.connect() as conn:  # the purged text is gone from the index itself
            rows = await conn.execute(
                text("SELECT rowid FROM records_search WHERE records_search MATCH 'retracted'")
            )
            assert rows.all() == []


async def test_a_relogged_record_is_found_once_at_its_new_position(store: Store) -> None:
    record = lead(1, "Botnet relayed")
    await store.ingest([record.wire])
    assert await texts(store, "relayed") == ["Botnet relayed"]
    async with store._engine.begin() as conn:  # what relog_shorter_paths does: a new log position
        await conn.execute(text("UPDATE records SET id = id + 100 WHERE rid = :r"), {"r": record.id})
    assert await texts(store, "relayed") == ["Botnet relayed"]


async def test_catch_up_over_many_batches_indexes_everything_once(store: Store) -> None:
    records = [lead(n, f"Word{n % 7} campaign {n}", created=T0 + n) for n in range(1, 121)]
    await store.ingest([r.wire for r in records[:50]])
    assert await store.search.catch_up(batch=7) == (50 if store._engine.dialect.name == "sqlite" else 0)
    await store.ingest([r.wire for r in records[50:]])
    assert await store.search.behind() == (70 if store._engine.dialect.name == "sqlite" else 0)
    found = await texts(store, "word3", limit=1000)
    assert found == [f"Word3 campaign {n}" for n in range(120, 0, -1) if n % 7 == 3]
    assert await store.search.behind() == 0
    assert await store.search.catch_up(batch=7) == 0


async def test_ranked_walk_gives_the_plain_querys_answer(store: Store) -> None:
    """Records created out of log order, many matches, small limits: the early stop must never cut."""
    rng = random.Random(6)
    records = []
    for n in range(1, 301):
        created = T0 + rng.randrange(10**6)
        words_ = "common " + ("rare" if n % 50 == 0 else "plain")
        subjects = [{"type": "domain", "value": "hot.example" if n % 3 else "cold.example"}]
        records.append(lead(n, f"{words_} {n}", created=created, subjects=subjects, author=f"a{n % 5}"))
    for start in range(0, 300, 40):  # several ingests: log order is not created order
        await store.ingest([r.wire for r in records[start : start + 40]])
    await store.search.catch_up(batch=16)
    by_created = sorted(records, key=lambda r: r.header.created, reverse=True)
    for limit in (1, 5, 37, 300):
        expected = [r.body.title for r in by_created if "common" in r.body.title][:limit]  # type: ignore[attr-defined]
        assert await texts(store, "common", limit=limit) == expected
        found = await store.query(QueryFilters(indicator="hot.example", limit=limit, live_at=LATER))
        hot = [r.id for n, r in enumerate(records, 1) if n % 3]
        assert [f.record.id for f in found] == [r.id for r in by_created if r.id in hot][:limit]


async def test_contacts_query_filters_live_contacts_by_jurisdiction_topic_and_text(store: Store) -> None:
    def contact(seq: int, country: str, topics: list[str], unit: str) -> Record:
        document = {**contact_document(country), "topics": topics, "unit": unit}
        return make_record(
            identity(f"bob/{seq}"), 1, None, kind="contact", document=document, created=T0 + seq
        )

    nl_spam = contact(1, "NL", ["email-spam"], "Spam unit")
    nl_fraud = contact(2, "NL", ["fraud"], "Fraud desk")
    au = contact(3, "AU", ["email-spam"], "Spam unit")
    await store.ingest([nl_spam.wire, nl_fraud.wire, au.wire, lead(9, "Spam in NL").wire])

    async def ids(**kwargs: object) -> list[bytes]:
        found = await store.query(contacts_query(now_ms=LATER, **kwargs))  # type: ignore[arg-type]
        return [item.record.id for item in found]

    assert await ids(jurisdiction="NL") == [nl_fraud.id, nl_spam.id]
    assert await ids(jurisdiction="NL", topic="email-spam") == [nl_spam.id]
    assert await ids(text="spam unit") == [au.id, nl_spam.id]
    assert await ids(jurisdiction="AU", text="fraud") == []
