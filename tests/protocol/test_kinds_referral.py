"""The referral and referral-status kinds (SPEC §5.2): schemas, vocabularies, the embedded lead, scopes."""

from __future__ import annotations

from typing import Any

import pytest

from protocol.codec import Value
from protocol.envelope import redact
from protocol.errors import SchemaError
from protocol.kinds import (
    ReferralBody,
    ReferralStatusBody,
    body_from_document,
    body_to_document,
    parse_body,
)
from protocol.kinds.lead import Detriment
from protocol.referrals import (
    ReferralError,
    latest_status,
    referral_recipient,
    referral_tlp,
    status_counts,
    status_scope,
    verified_lead,
)
from protocol.scope import Scope
from protocol.sealed import open_sealed
from tests import factories
from tests.factories import NETWORK, make_record

REFERRER = factories.identity("referral referrer")
RECIPIENT = factories.identity("referral recipient")
OTHER = factories.identity("referral other")
LEAD = make_record(REFERRER, 1, None)
LEAD_ID = LEAD.id.hex()


def referral_fields(**changes: Value) -> dict[str, Value]:
    fields: dict[str, Value] = {"lead": LEAD_ID, "lead_record": LEAD.wire, "request": "investigation"}
    fields.update(changes)
    return {name: value for name, value in fields.items() if value is not None}


def parse_referral(fields: dict[str, Value]) -> ReferralBody:
    body = parse_body("referral", 1, fields, frozenset(fields))
    assert isinstance(body, ReferralBody)
    return body


def parse_status(fields: dict[str, Value], committed: frozenset[str] | None = None) -> ReferralStatusBody:
    body = parse_body("referral-status", 1, fields, frozenset(fields) if committed is None else committed)
    assert isinstance(body, ReferralStatusBody)
    return body


def test_a_referral_from_a_document_round_trips() -> None:
    fields = body_from_document(
        "referral",
        {"lead": LEAD_ID.upper(), "lead_record": LEAD.wire, "request": "Takedown", "due": "2026-12-01"},
    )
    body = parse_referral(dict(fields))
    assert (body.lead, body.request, body.due) == (LEAD_ID, "takedown", 1_796_083_200_000)
    shown = body_to_document(body)
    assert shown["due"] == "2026-12-01"
    assert shown["lead_record"] == f"<signed lead record, {len(LEAD.wire)} bytes>"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (referral_fields(request=None), "missing required field request"),
        (referral_fields(lead=None), "missing required field lead"),
        (referral_fields(lead_record=None), "missing required field lead_record"),
        (referral_fields(request="arrest"), "referral.request: 'arrest' is not one of"),
        (referral_fields(lead="abc"), "referral.lead: 'abc' is not a record id"),
        (referral_fields(lead_record=b""), "referral.lead_record: 0 bytes"),
        (referral_fields(lead_record="text"), "referral.lead_record: expected bytes"),
        (referral_fields(due=-1), "referral.due"),
        (referral_fields(note=""), "referral.note: empty text"),
        ({**referral_fields(), "target": "x"}, "unknown field 'target'"),
    ],
)
def test_referral_schema_refusals(fields: dict[str, Value], message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        parse_referral(fields)


def status(**fields: Any) -> dict[str, Value]:
    return {"referral": LEAD_ID, **fields}


@pytest.mark.parametrize(
    "fields",
    [
        status(status="received"),
        status(status="accepted", note="Assigned to the SMS team."),
        status(status="in-progress", note="Subpoena sent to the carrier."),
        status(status="declined", reason="Outside our jurisdiction: no AU link."),
        status(
            status="closed", outcome="Sender fined.", action="fine", penalty={"amount": 1, "currency": "AUD"}
        ),
        status(status="closed", outcome="No further action."),
    ],
)
def test_valid_statuses(fields: dict[str, Value]) -> None:
    assert parse_status(fields).status == fields["status"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (status(), "missing required field status"),
        ({"status": "accepted"}, "missing required field referral"),
        (status(status="done"), "referral-status.status: 'done' is not one of"),
        (status(status="declined"), "a 'declined' status needs a reason"),
        (status(status="closed"), "a 'closed' status needs a outcome"),
        (status(status="accepted", reason="x"), "referral-status.reason: only a 'declined' status"),
        (status(status="declined", reason="x", outcome="y"), "referral-status.outcome: only a 'closed'"),
        (status(status="in-progress", action="fine"), "referral-status.action: only a 'closed'"),
        (status(status="closed", outcome="x", action="jail"), "referral-status.action: 'jail' is not one of"),
        (
            status(status="closed", outcome="x", penalty={"amount": 1.5, "currency": "EUR"}),
            "referral-status.penalty.amount: expected an integer",
        ),
        (
            status(status="closed", outcome="x", penalty={"amount": 100}),
            "referral-status.penalty: missing key currency",
        ),
    ],
)
def test_status_schema_refusals(fields: dict[str, Value], message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        parse_status(fields)


def test_a_redacted_status_word_hides_which_fields_it_needs() -> None:
    fields = status(reason="x")
    body = parse_status(fields, frozenset({"referral", "status", "reason"}))
    assert body.status is None and body.reason == "x"


def test_a_penalty_from_a_document_is_in_minor_units() -> None:
    fields = body_from_document(
        "referral-status",
        status(
            status="closed", outcome="Fined", action="fine", penalty={"amount": "2500.50", "currency": "eur"}
        ),
    )
    body = parse_status(dict(fields))
    assert body.penalty == Detriment(250050, "EUR")
    assert body_to_document(body)["penalty"] == {"amount": "2500.50", "currency": "EUR"}


def test_the_embedded_lead_is_verified_and_must_match_its_id() -> None:
    assert verified_lead(parse_referral(referral_fields()), network=NETWORK).id == LEAD.id
    other = make_record(REFERRER, 1, None, tag="other")
    with pytest.raises(ReferralError, match="not the one the referral names"):
        verified_lead(parse_referral(referral_fields(lead_record=other.wire)), network=NETWORK)
    with pytest.raises(ReferralError, match="does not verify"):
        verified_lead(parse_referral(referral_fields()), network="another-net")
    tampered = bytearray(LEAD.wire)
    tampered[-5] ^= 1
    with pytest.raises(ReferralError, match="does not verify"):
        verified_lead(parse_referral(referral_fields(lead_record=bytes(tampered))), network=NETWORK)
    trend = make_record(REFERRER, 1, None, kind="contact", document=factories.contact_document())
    with pytest.raises(ReferralError, match="is a 'contact', not a lead"):
        verified_lead(
            parse_referral(referral_fields(lead=trend.id.hex(), lead_record=trend.wire)), network=NETWORK
        )


def test_a_redacted_embedded_lead_still_verifies() -> None:
    copy = redact(LEAD, ["subjects"])
    lead = verified_lead(parse_referral(referral_fields(lead_record=copy)), network=NETWORK)
    assert lead.id == LEAD.id and "subjects" in lead.redacted


def sealed_referral(author: factories.Identity, to: bytes, seq: int = 1) -> factories.Record:
    scope = Scope.create("amber", relay_hops=2, members=[to], flags=["sealed"])
    return make_record(author, seq, None, kind="referral", document=referral_fields(), scope=scope)


def test_a_referral_is_addressed_to_its_one_sealed_member() -> None:
    referral = sealed_referral(REFERRER, RECIPIENT.public_key.raw)
    assert referral_recipient(referral) == RECIPIENT.public_key.raw
    opened = open_sealed(referral, RECIPIENT)
    assert isinstance(opened, ReferralBody) and opened.lead == LEAD_ID
    unsealed = make_record(REFERRER, 1, None, kind="referral", document=referral_fields(), tag="u")
    assert referral_recipient(unsealed) is None
    assert referral_recipient(sealed_referral(REFERRER, REFERRER.public_key.raw)) is None


def test_only_the_recipients_statuses_sealed_back_count_and_the_latest_wins() -> None:
    referral = sealed_referral(REFERRER, RECIPIENT.public_key.raw)
    back = status_scope(referral.header.scope, REFERRER.public_key.raw)
    assert back.members == (REFERRER.public_key.raw,) and back.tlp == "amber" and back.relay_hops == 2

    def answer(author: factories.Identity, seq: int, word: str, created: int) -> factories.Record:
        return make_record(
            author,
            seq,
            None,
            kind="referral-status",
            document=status(status=word),
            scope=back,
            created=created,
        )

    received = answer(RECIPIENT, 1, "received", 1000)
    accepted = make_record(
        RECIPIENT,
        2,
        received.id,
        kind="referral-status",
        document=status(status="accepted"),
        scope=back,
        created=2000,
    )
    forged = answer(OTHER, 1, "accepted", 3000)
    assert status_counts(accepted, referral) and not status_counts(forged, referral)
    latest = latest_status((record, record.id) for record in (received, accepted))
    assert latest is not None and latest[0] is accepted


@pytest.mark.parametrize(
    ("lead_tlp", "expected"),
    [
        ("clear", "amber"),
        ("green", "amber"),
        ("amber", "amber"),
        ("amber+strict", "amber+strict"),
        ("red", "red"),
    ],
)
def test_a_referral_is_never_less_strict_than_amber(lead_tlp: str, expected: str) -> None:
    assert referral_tlp(lead_tlp) == expected
