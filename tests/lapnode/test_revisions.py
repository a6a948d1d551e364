"""New versions of own records (lapnode.revisions) and the contact directory (lapnode.directory)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lapnode.directory import DirectoryFilter, current_contacts, directory, stale
from lapnode.errors import InputError
from lapnode.publishing import ScopeRequest, publish_record
from lapnode.revisions import (
    corrected_scope,
    current_fields,
    declassified_scope,
    own_live_version,
    publish_version,
)
from lapnode.store import Store
from protocol.envelope import Record
from protocol.kinds import ContactBody, SealedBody, body_from_document
from protocol.scope import SEALED_FLAG, Scope
from tests.factories import NETWORK, T0, contact_document, identity, make_record

ALICE = identity("revisions alice")
BOB = identity("revisions bob")
DAY = 86_400_000
NOW = T0 + 400 * DAY


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(sqlite_url, network=NETWORK)
    try:
        yield opened
    finally:
        await opened.close()


async def publish(store: Store, document: dict[str, object], scope: Scope, created: int) -> Record:
    fields = body_from_document("contact", document)
    return await publish_record(
        store, ALICE, network=NETWORK, kind="contact", fields=fields, scope=scope, created=created
    )


async def test_only_the_author_may_make_a_new_version_of_a_live_record(store: Store) -> None:
    ours = await publish(store, contact_document("AU"), Scope.create("amber"), T0)
    theirs = make_record(BOB, 1, None, kind="contact", document=contact_document("NL"))
    await store.ingest([theirs.wire])
    with pytest.raises(InputError, match="not by this node: only its author"):
        await own_live_version(store, theirs.id.hex(), our_key=ALICE.public_key.raw, now=NOW)
    found = await own_live_version(store, ours.id.hex()[:10], our_key=ALICE.public_key.raw, now=NOW)
    assert found.record.id == ours.id
    newer = await publish_version(
        store,
        ALICE,
        network=NETWORK,
        old=ours,
        fields=current_fields(ours, ALICE),
        scope=declassified_scope(ours.header.scope, "GREEN"),
        created=T0 + DAY,
    )
    assert newer.header.scope.tlp == "green" and newer.header.kind == "contact"
    assert getattr(newer.body, "supersedes") == ours.id  # noqa: B009
    assert current_fields(newer, ALICE) == current_fields(ours, ALICE)  # the same body, new link only
    with pytest.raises(InputError, match=f"superseded by {newer.id.hex()}"):
        await own_live_version(store, ours.id.hex(), our_key=ALICE.public_key.raw, now=NOW)


def test_declassifying_only_lowers_the_tlp_and_keeps_the_rest() -> None:
    original = Scope.create("amber+strict", categories=["enforcement"], flags=["personal-data"], relay_hops=1)
    lowered = declassified_scope(original, "green")
    assert lowered == Scope.create("green", categories=["enforcement"], flags=["personal-data"], relay_hops=1)
    for label in ("amber+strict", "red"):
        with pytest.raises(InputError, match="is not lower than the record's TLP amber\\+strict"):
            declassified_scope(original, label)


def test_a_correction_may_narrow_the_scope_but_never_widen_it() -> None:
    original = Scope.create("green", categories=["enforcement", "government"], jurisdictions_deny=["US"])
    narrower = corrected_scope(
        original,
        ScopeRequest(
            tlp="amber", categories=["enforcement"], jurisdictions_deny=["CA"], flags=["personal-data"]
        ),
        given=frozenset({"tlp"}),
        now=NOW,
    )
    assert narrower == Scope.create(
        "amber",
        categories=["enforcement"],
        jurisdictions_deny=["CA", "US"],
        flags=["personal-data"],
    )
    # Options left at their defaults keep the original's values (the default TLP amber is not "given").
    kept = corrected_scope(original, ScopeRequest(), given=frozenset(), now=NOW)
    assert kept == original
    with pytest.raises(InputError, match="must not reach anyone the original could not: tlp clear"):
        corrected_scope(original, ScopeRequest(tlp="clear"), given=frozenset({"tlp"}), now=NOW)
    with pytest.raises(InputError, match="categories would reach beyond"):
        corrected_scope(original, ScopeRequest(categories=["industry"]), given=frozenset(), now=NOW)
    with pytest.raises(InputError, match="relay hops 5 is more than 3"):
        corrected_scope(original, ScopeRequest(relay_hops=5), given=frozenset({"relay_hops"}), now=NOW)


async def test_a_sealed_record_gives_a_sealed_version_with_the_same_body(store: Store) -> None:
    sealed_scope = Scope.create("amber", members=[BOB.public_key.raw], flags=[SEALED_FLAG])
    original = await publish(store, contact_document("AU"), sealed_scope, T0)
    assert isinstance(original.body, SealedBody)
    fields = current_fields(original, ALICE)
    assert fields == body_from_document("contact", contact_document("AU"))
    newer = await publish_version(
        store,
        ALICE,
        network=NETWORK,
        old=original,
        fields=fields,
        scope=corrected_scope(sealed_scope, ScopeRequest(), given=frozenset(), now=NOW),
        created=T0 + DAY,
    )
    assert isinstance(newer.body, SealedBody) and newer.header.scope == sealed_scope
    # The body hides the link from every store; the author's own store records it at publish time.
    assert [item.record.id for item in await current_contacts(store, now=NOW)] == [newer.id]
    with pytest.raises(InputError, match="not readable here"):
        current_fields(original, identity("revisions carol"))  # not a recipient: nothing to re-sign


async def test_the_directory_filters_and_lists_stale_contacts(store: Store) -> None:
    sms = {**contact_document("AU"), "unit": "SMS team", "topics": ["sms-spam"], "notes": "Mobile fraud desk"}
    email = {**contact_document("AU"), "unit": "Email team", "topics": ["email-spam"]}
    dutch = {**contact_document("NL"), "category": "government", "topics": ["telemarketing"]}
    scope = Scope.create("green")
    old_sms = await publish(store, sms, scope, T0)
    email_record = await publish(store, email, scope, T0 + 10 * DAY)
    dutch_record = await publish(store, dutch, scope, T0 + 300 * DAY)
    sms_record = await publish_version(
        store,
        ALICE,
        network=NETWORK,
        old=old_sms,
        fields=current_fields(old_sms, ALICE),
        scope=scope,
        created=T0 + 390 * DAY,
    )
    found = await current_contacts(store, now=NOW)
    readable = [(item, item.record.body) for item in found if isinstance(item.record.body, ContactBody)]

    def ask(**question: str) -> list[Record]:
        return [entry.stored.record for entry in directory(readable, DirectoryFilter(**question))]

    assert ask() == [email_record, sms_record, dutch_record]  # by country, organisation, unit
    assert ask(jurisdiction="AU", topic="sms-spam") == [sms_record]
    assert ask(category="government") == [dutch_record]
    assert ask(text="MOBILE FRAUD") == [sms_record]
    assert ask(text="email-spam") == [email_record]  # topics are searched too
    assert ask(jurisdiction="AU", category="government") == []
    entries = directory(readable, DirectoryFilter())
    assert {entry.stored.record.id: entry.age_days(NOW) for entry in entries} == {
        sms_record.id: 10,
        email_record.id: 390,
        dutch_record.id: 100,
    }
    overdue = stale(entries, older_than_ms=180 * DAY, now=NOW)
    assert [entry.stored.record for entry in overdue] == [email_record]
    assert [e.stored.record for e in stale(entries, older_than_ms=50 * DAY, now=NOW)] == [
        email_record,
        dutch_record,
    ]
