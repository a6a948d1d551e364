"""lapnode/referrals.py: refer as policy allows, the current state, who answers, overdue, the store reads.

Real stores (SQLite, and PostgreSQL when configured), real keys and real sealed records. The referrer's
store and the recipient's are separate; records move between them by `ingest`, as gossip would.
"""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator

import pytest

from keys.membership import TrustedAuthorities
from lapnode.exits import PeerEvidence, RecordWithheld
from lapnode.policy import NO_RULES, parse_policy
from lapnode.referrals import (
    SENT,
    AlreadyAnswered,
    NotTheRecipient,
    Referral,
    ReferralRequest,
    answer_referral,
    embeddable_lead,
    load_referrals,
    recipient_audience,
    send_referral,
    unanswered,
)
from lapnode.store import AuditFilters, Store
from protocol.envelope import Record
from protocol.kinds import ReferralBody
from protocol.scope import Scope
from tests.factories import NETWORK, T0, identity, lead_document, make_record

REFERRER, RECIPIENT, STRANGER = identity("ref referrer"), identity("ref recipient"), identity("ref stranger")
DAY = 86_400_000

# Legacy mode: no authority trusted, so the peer book vouches (lapnode.exits Rule 2).
PINS = PeerEvidence(NETWORK, TrustedAuthorities(), frozenset(), frozenset(), 0)


@pytest.fixture
async def stores(database_url: str, sqlite_url: str) -> AsyncIterator[tuple[Store, Store]]:
    ours = await Store.open(database_url, network=NETWORK)
    theirs = await Store.open(sqlite_url.replace("store.sqlite", "recipient.sqlite"), network=NETWORK)
    try:
        yield ours, theirs
    finally:
        await ours.close()
        await theirs.close()


async def publish_lead(store: Store, scope: Scope) -> Record:
    record = make_record(REFERRER, 1, None, scope=scope, document=lead_document(1), created=T0)
    report = await store.ingest([record.wire])
    assert report.stored == [record.id]
    return record


async def refer(store: Store, lead: Record, *, due: int | None = None, created: int = T0 + 1000) -> Record:
    audience = recipient_audience([], RECIPIENT.public_key.raw, PINS)
    disclosed = await embeddable_lead(
        store, lead.id.hex(), audience, our_key=REFERRER.public_key.raw, policy=NO_RULES, now_ms=created
    )
    request = ReferralRequest(RECIPIENT.public_key.raw, "investigation", due)
    return await send_referral(store, REFERRER, disclosed, request, created=created)


NAMED = Scope.create("amber", members=[RECIPIENT.public_key.raw], relay_hops=0)


async def test_a_referral_reaches_its_recipient_sealed_and_opens_there(stores: tuple[Store, Store]) -> None:
    ours, theirs = stores
    lead = await publish_lead(ours, NAMED)
    referral = await refer(ours, lead)
    assert referral.header.scope.members == (RECIPIENT.public_key.raw,)
    assert "sealed" in referral.header.scope.flags and referral.header.scope.tlp == "amber"
    await theirs.ingest([referral.wire])

    (inbox,) = await load_referrals(theirs, RECIPIENT, now_ms=T0 + 2000)
    assert inbox.direction == "inbox" and inbox.counterpart == REFERRER.public_key.raw
    assert inbox.state == SENT and inbox.lead is not None and inbox.lead.id == lead.id
    assert unanswered([inbox]) == [inbox]
    (outbox,) = await load_referrals(ours, REFERRER, now_ms=T0 + 2000)
    assert outbox.direction == "outbox" and outbox.counterpart == RECIPIENT.public_key.raw
    # A third node holds ciphertext it cannot open: for it there is no referral at all.
    assert await load_referrals(theirs, STRANGER, now_ms=T0 + 2000) == []


async def test_refer_refuses_a_lead_the_policy_withholds_and_audits_it(stores: tuple[Store, Store]) -> None:
    ours, _ = stores
    # The recipient is not in the peer book: it has no attributes, so a category clause keeps it out.
    lead = await publish_lead(ours, Scope.create("amber", categories=["enforcement"]))
    with pytest.raises(RecordWithheld, match=r"scope\.categories"):
        await refer(ours, lead)
    assert await load_referrals(ours, REFERRER, now_ms=T0 + 2000) == []
    (entry,) = await ours.audit.entries(AuditFilters(exit="referral"))
    assert entry.event.action == "withhold" and entry.event.record == lead.id
    assert entry.event.recipient == RECIPIENT.public_key.raw


async def test_a_local_rule_that_withholds_the_lead_stops_the_referral(stores: tuple[Store, Store]) -> None:
    ours, _ = stores
    lead = await publish_lead(ours, NAMED)
    rules = tomllib.loads('[[rule]]\nname = "no-leads-out"\naction = "deny"\nrecord.kind = ["lead"]\n')
    policy = parse_policy(rules, source="test")
    audience = recipient_audience([], RECIPIENT.public_key.raw, PINS)
    with pytest.raises(RecordWithheld, match="no-leads-out"):
        await embeddable_lead(
            ours, lead.id.hex(), audience, our_key=REFERRER.public_key.raw, policy=policy, now_ms=T0 + 1000
        )


async def answer(store: Store, referral: Referral, status: str, created: int, **details: object) -> Record:
    return await answer_referral(store, RECIPIENT, referral, status, details, created=created)


async def test_state_is_the_recipients_latest_status_and_others_are_ignored(
    stores: tuple[Store, Store],
) -> None:
    ours, theirs = stores
    referral = await refer(ours, await publish_lead(ours, NAMED))
    await theirs.ingest([referral.wire])
    (inbox,) = await load_referrals(theirs, RECIPIENT, now_ms=T0 + 2000)
    received = await answer(theirs, inbox, "received", T0 + 3000)
    accepted = await answer(theirs, inbox, "accepted", T0 + 4000, note="On it.")
    # A status by someone else, sealed to the referrer too, does not count.
    forged_scope = Scope.create("amber", relay_hops=2, members=[REFERRER.public_key.raw], flags=["sealed"])
    forged = make_record(
        STRANGER,
        1,
        None,
        kind="referral-status",
        document={"referral": referral.id.hex(), "status": "closed", "outcome": "Forged."},
        scope=forged_scope,
        created=T0 + 5000,
    )
    await ours.ingest([received.wire, accepted.wire, forged.wire])

    (outbox,) = await load_referrals(ours, REFERRER, now_ms=T0 + 6000)
    assert outbox.state == "accepted"
    assert [record.id for record, _ in outbox.statuses] == [received.id, accepted.id]


async def test_only_the_recipient_answers_and_never_after_a_final_state(stores: tuple[Store, Store]) -> None:
    ours, theirs = stores
    referral = await refer(ours, await publish_lead(ours, NAMED))
    (outbox,) = await load_referrals(ours, REFERRER, now_ms=T0 + 2000)
    with pytest.raises(NotTheRecipient, match="only it can answer"):
        await answer_referral(ours, REFERRER, outbox, "accepted", {}, created=T0 + 3000)
    await theirs.ingest([referral.wire])
    (inbox,) = await load_referrals(theirs, RECIPIENT, now_ms=T0 + 2000)
    await answer(theirs, inbox, "declined", T0 + 3000, reason="Not our jurisdiction.")
    (inbox,) = await load_referrals(theirs, RECIPIENT, now_ms=T0 + 4000)
    assert inbox.state == "declined"
    count = await theirs.count()
    with pytest.raises(AlreadyAnswered, match="declined already"):
        await answer(theirs, inbox, "accepted", T0 + 5000)
    assert await theirs.count() == count


async def test_overdue_means_due_passed_and_not_closed_or_declined(stores: tuple[Store, Store]) -> None:
    ours, theirs = stores
    due = T0 + DAY
    referral = await refer(ours, await publish_lead(ours, NAMED), due=due)
    await theirs.ingest([referral.wire])
    (inbox,) = await load_referrals(theirs, RECIPIENT, now_ms=T0 + 2000)
    assert isinstance(inbox.body, ReferralBody) and inbox.body.due == due
    assert not inbox.overdue(due - 1) and inbox.overdue(due + 1)
    await answer(theirs, inbox, "accepted", T0 + 3000)
    (inbox,) = await load_referrals(theirs, RECIPIENT, now_ms=T0 + 4000)
    assert inbox.overdue(due + 1)
    await answer(theirs, inbox, "closed", T0 + 5000, outcome="Warning sent.", action="warning")
    (inbox,) = await load_referrals(theirs, RECIPIENT, now_ms=T0 + 6000)
    assert inbox.state == "closed" and not inbox.overdue(due + 1)


async def test_the_store_reads_referrals_by_kind_and_finds_new_ones(stores: tuple[Store, Store]) -> None:
    ours, _ = stores
    lead = await publish_lead(ours, NAMED)
    position = await ours.head()
    assert not await ours.has_kind_after("referral", 0)
    referral = await refer(ours, lead)
    assert await ours.has_kind_after("referral", position)
    assert not await ours.has_kind_after("referral", await ours.head())
    held = await ours.live_of_kinds(["referral", "referral-status"], now_ms=T0 + 2000)
    assert [item.record.id for item in held] == [referral.id]
