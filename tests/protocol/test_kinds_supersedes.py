"""The `supersedes` field of every known kind (SPEC §5.1): 32 raw bytes on the wire, hex in documents."""

from __future__ import annotations

from typing import Any

import pytest

from protocol.codec import Value
from protocol.envelope import redact, verify_record
from protocol.errors import SchemaError
from protocol.kinds import body_from_document, body_to_document, parse_body
from protocol.scope import Scope, widenings
from tests.factories import NETWORK, contact_document, identity, lead_document, make_record

OLD_ID = bytes(range(32))
TREND: dict[str, object] = {
    "period_start": "2026-01-01",
    "period_end": "2026-01-31",
    "category": "sms-spam",
    "metric": "complaints",
    "value": 120,
    "unit": "count",
    "jurisdiction": "AU",
}
DOCUMENTS: dict[str, dict[str, object]] = {
    "contact": contact_document("AU"),
    "lead": lead_document(),
    "trend": TREND,
}


@pytest.mark.parametrize("kind", sorted(DOCUMENTS))
def test_a_document_names_the_replaced_version_in_hex_and_the_wire_carries_its_bytes(kind: str) -> None:
    fields = body_from_document(kind, {**DOCUMENTS[kind], "supersedes": " " + OLD_ID.hex().upper()})
    assert fields["supersedes"] == OLD_ID
    body = parse_body(kind, 1, fields, frozenset(fields))
    assert getattr(body, "supersedes") == OLD_ID  # noqa: B009 - every kind has it; the type is a union
    assert body_to_document(body)["supersedes"] == OLD_ID.hex()
    without = body_from_document(kind, DOCUMENTS[kind])
    assert getattr(parse_body(kind, 1, without, frozenset(without)), "supersedes") is None  # noqa: B009


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (OLD_ID[:31], "31 bytes; a record id is exactly 32"),
        (OLD_ID + b"\x00", "33 bytes; a record id is exactly 32"),
        (b"", "0 bytes"),
        (OLD_ID.hex(), "expected bytes"),
        (7, "expected bytes"),
        ([OLD_ID], "expected bytes"),
        (None, "expected bytes"),
    ],
)
@pytest.mark.parametrize("kind", sorted(DOCUMENTS))
def test_a_wire_supersedes_that_is_not_32_bytes_is_refused(kind: str, value: Value, message: str) -> None:
    fields: dict[str, Any] = {**body_from_document(kind, DOCUMENTS[kind]), "supersedes": value}
    with pytest.raises(SchemaError, match=rf"^{kind}\.supersedes: .*{message}"):
        parse_body(kind, 1, fields, frozenset(fields))


@pytest.mark.parametrize("value", ["abc", OLD_ID.hex()[:-1] + "g", OLD_ID.hex() + "00", 12])
def test_a_document_supersedes_must_be_64_hex_digits(value: object) -> None:
    with pytest.raises(SchemaError, match=r"^contact\.supersedes: "):
        body_from_document("contact", {**DOCUMENTS["contact"], "supersedes": value})


def test_a_signed_record_with_supersedes_verifies_and_can_have_it_redacted() -> None:
    author = identity("supersedes author")
    document = {**DOCUMENTS["contact"], "supersedes": OLD_ID.hex()}
    record = make_record(author, 1, None, kind="contact", document=document)
    verified = verify_record(record.wire, network=NETWORK, key_for=lambda raw: author.public_key)
    assert getattr(verified.body, "supersedes") == OLD_ID  # noqa: B009
    # A relay may withhold the link like any field; the receiver then reads no link (None).
    redacted = verify_record(
        redact(record, ["supersedes"]), network=NETWORK, key_for=lambda raw: author.public_key
    )
    assert getattr(redacted.body, "supersedes") is None and "supersedes" in redacted.redacted  # noqa: B009


GREEN = Scope.create("green", relay_hops=2, categories=["enforcement"], jurisdictions_deny=["US"])


@pytest.mark.parametrize(
    ("candidate", "wider"),
    [
        (GREEN, []),
        (Scope.create("amber", relay_hops=1, categories=["enforcement"], jurisdictions_deny=["US"]), []),
        (
            Scope.create("green", relay_hops=2, categories=["enforcement"], jurisdictions_deny=["CA", "US"]),
            [],
        ),
        (Scope.create("clear", relay_hops=2, categories=["enforcement"], jurisdictions_deny=["US"]), ["tlp"]),
        (
            Scope.create("green", relay_hops=3, categories=["enforcement"], jurisdictions_deny=["US"]),
            ["relay"],
        ),
        (Scope.create("green", relay_hops=2, jurisdictions_deny=["US"]), ["categories"]),
        (
            Scope.create(
                "green", relay_hops=2, categories=["enforcement", "industry"], jurisdictions_deny=["US"]
            ),
            ["categories"],
        ),
        (Scope.create("green", relay_hops=2, categories=["enforcement"]), ["jurisdictions deny"]),
        (
            Scope.create(
                "red", relay_hops=2, categories=["enforcement"], jurisdictions_deny=["US"], expires=5
            ),
            [],
        ),
    ],
)
def test_widenings_name_every_clause_that_would_reach_further(candidate: Scope, wider: list[str]) -> None:
    found = widenings(GREEN, candidate)
    assert len(found) == len(wider)
    for clause, text in zip(wider, found, strict=True):
        assert text.startswith(clause)


def test_dropping_a_flag_an_expiry_or_an_embargo_widens() -> None:
    original = Scope.create("amber", flags=["personal-data"], expires=2000, embargo_until=1000)
    assert widenings(original, Scope.create("amber", expires=2000, embargo_until=1000)) == [
        "flags would drop personal-data"
    ]
    assert widenings(original, Scope.create("amber", flags=["personal-data"], embargo_until=1000)) == [
        "it would expire later"
    ]
    assert widenings(original, Scope.create("amber", flags=["personal-data"], expires=2000)) == [
        "the embargo would end earlier"
    ]
