"""The lead kind: a realistic referral end to end, and a refusal for every validator."""

from __future__ import annotations

import json
from typing import Any

import pytest

from protocol import codec
from protocol.codec import Value
from protocol.errors import SchemaError
from protocol.kinds import LeadBody, body_from_document, body_to_document, parse_body
from protocol.kinds.lead import Detriment, Evidence, Subject

DIGEST = "sha256:" + "3f" * 32
CONTACT_REF = "c0ffee" * 10 + "abcd"

# A referral in the spirit of the LAP spam referral pro forma: pharma spam sent from abroad.
DOCUMENT: dict[str, object] = {
    "title": "Unlicensed pharmacy spam for pharma-example.com",
    "summary": (
        "Since January 2026 NL, BE and DE consumers receive e-mail advertising prescription\r\n"
        "medicines without prescription. Orders are paid by card and never delivered.\n"
    ),
    "status": "Verified",
    "violation_types": ["unsolicited-email", "fraud", "unsolicited-email"],
    "legal_basis": "Telecommunicatiewet art. 11.7; Geneesmiddelenwet art. 67",
    "subjects": [
        {"type": "domain", "value": "Pharma-Example.COM."},
        {"type": "url", "value": "HTTPS://pharma-example.com:443/order?ref=lap"},
        {"type": "ip", "value": "198.51.100.25"},
        {"type": "ip", "value": "2001:0db8:0000:0000:0000:0000:0000:0025"},
        {"type": "email", "value": "Sales@Pharma-Example.com"},
        {"type": "phone", "value": "+44 20 7946 0958"},
        {"type": "asn", "value": "as64500"},
        {"type": "name", "value": "  Pharma   Example Ltd"},
        {"type": "payment-account", "value": "GB33 BUKB 2020 1555 5555 55"},
        {"type": "message-hash", "value": "MD5:" + "A1" * 16},
    ],
    "first_seen": "2026-01-03",
    "last_seen": "2026-03-01T12:30:00+01:00",
    "estimated_victims": 1200,
    "detriment": {"amount": "125000.5", "currency": "eur"},
    "victim_locations": ["nl", "DE", "be"],
    "evidence": [
        {"digest": DIGEST.upper().replace("SHA256", "sha-256"), "description": "Headers of 40 spams"}
    ],
    "requested_assistance": ["takedown", "information"],
    "contact_ref": CONTACT_REF.upper(),
}

FIELDS: dict[str, Value] = {
    "title": "Unlicensed pharmacy spam for pharma-example.com",
    "summary": (
        "Since January 2026 NL, BE and DE consumers receive e-mail advertising prescription\n"
        "medicines without prescription. Orders are paid by card and never delivered."
    ),
    "status": "verified",
    "violation_types": ["fraud", "unsolicited-email"],
    "legal_basis": "Telecommunicatiewet art. 11.7; Geneesmiddelenwet art. 67",
    "subjects": [
        {"type": "domain", "value": "pharma-example.com"},
        {"type": "url", "value": "https://pharma-example.com/order?ref=lap"},
        {"type": "ip", "value": "198.51.100.25"},
        {"type": "ip", "value": "2001:db8::25"},
        {"type": "email", "value": "sales@pharma-example.com"},
        {"type": "phone", "value": "+442079460958"},
        {"type": "asn", "value": "AS64500"},
        {"type": "name", "value": "Pharma Example Ltd"},
        {"type": "payment-account", "value": "GB33 BUKB 2020 1555 5555 55"},
        {"type": "message-hash", "value": "md5:" + "a1" * 16},
    ],
    "first_seen": 1_767_398_400_000,
    "last_seen": 1_772_364_600_000,
    "estimated_victims": 1200,
    "detriment": {"amount": 12_500_050, "currency": "EUR"},
    "victim_locations": ["BE", "DE", "NL"],
    "evidence": [{"digest": DIGEST, "description": "Headers of 40 spams"}],
    "requested_assistance": ["information", "takedown"],
    "contact_ref": CONTACT_REF,
}


def parse(fields: dict[str, Value]) -> LeadBody:
    body = parse_body("lead", 1, fields, frozenset(fields))
    assert isinstance(body, LeadBody)
    return body


def test_document_to_canonical_fields() -> None:
    assert body_from_document("lead", DOCUMENT) == FIELDS


def test_round_trip() -> None:
    wire = codec.decode(codec.encode(FIELDS), max_size=1 << 16)
    body = parse(wire)
    assert body.subjects is not None and body.subjects[6] == Subject("asn", "AS64500")
    assert body.detriment == Detriment(12_500_050, "EUR")
    assert body.evidence == (Evidence(DIGEST, "Headers of 40 spams"),)
    shown = body_to_document(body)
    assert json.loads(json.dumps(shown)) == shown
    assert shown["detriment"] == {"amount": "125000.50", "currency": "EUR"}
    assert (shown["first_seen"], shown["last_seen"]) == ("2026-01-03", "2026-03-01T11:30:00Z")
    assert body_from_document("lead", shown) == FIELDS


def test_index_terms() -> None:
    terms = parse(FIELDS).index_terms()
    assert terms == [
        ("domain", "pharma-example.com"),
        ("url", "https://pharma-example.com/order?ref=lap"),
        ("ip", "198.51.100.25"),
        ("ip", "2001:db8::25"),
        ("email", "sales@pharma-example.com"),
        ("phone", "+442079460958"),
        ("asn", "AS64500"),
        ("name", "pharma example ltd"),
        ("payment", "gb33bukb20201555555555"),
        ("hash", "md5:" + "a1" * 16),
        ("violation", "fraud"),
        ("violation", "unsolicited-email"),
        ("jurisdiction", "BE"),
        ("jurisdiction", "DE"),
        ("jurisdiction", "NL"),
        ("hash", DIGEST),
        ("record", CONTACT_REF),
    ]


def test_text_and_summary_line() -> None:
    body = parse(FIELDS)
    assert "never delivered" in body.search_text()
    assert "Headers of 40 spams" in body.search_text()
    assert body.summary_line() == (
        "[verified] Unlicensed pharmacy spam for pharma-example.com - 10 subjects, victims in BE, DE, NL"
    )
    redacted = parse_body(
        "lead", 1, {"summary": "s", "status": "suspected"}, frozenset({"title", "summary", "status"})
    )
    assert redacted.summary_line() == "[suspected] [redacted]"


def test_redacted_subjects_are_not_indexed() -> None:
    fields = {key: value for key, value in FIELDS.items() if key != "subjects"}
    body = parse_body("lead", 1, fields, frozenset(FIELDS))
    assert isinstance(body, LeadBody) and body.subjects is None
    assert not [term for term in body.index_terms() if term[0] in ("domain", "ip", "url")]


VIOLATIONS = (
    "do-not-call, fraud, identity-theft, malware, other, phishing, spoofing, telemarketing,"
    " unsolicited-email, unsolicited-sms"
)
SUBJECT_TYPES = "asn, domain, email, ip, message-hash, name, payment-account, phone, url"
NOT_COUNTRY = "is not an ISO 3166-1 alpha-2 country code"
BAD_DIGEST = "is not 'sha256:' or 'blake2b:' and the hex digest"
NOT_LDH = "is not a valid domain: labels are letters, digits and inner hyphens"
PHONE_HINT = "is not a valid phone number: write + and the country code, then 6-15 digits in all"
NO_SCHEME = "is not a valid URL: it needs a scheme and a host, like https://example.com/"
ASSISTANCE = "enforcement, information, investigation, none, takedown"

DELETE = object()
SUBJECT = {"type": "domain", "value": "pharma-example.com"}

# (field, wire value or DELETE, the whole expected message)
REFUSALS: list[tuple[str, Any, str]] = [
    ("title", DELETE, "lead: missing required field title"),
    ("title", "x" * 201, "lead.title: 201 characters is over the limit of 200"),
    ("title", "", "lead.title: empty text; leave the field out instead"),
    ("title", "two\nlines", "lead.title: 'two\\nlines' contains a line break"),
    ("title", " padded", "lead.title: ' padded' has leading or trailing blanks"),
    ("title", 7, "lead.title: expected text, got an integer"),
    ("title", b"bytes", "lead.title: expected text, got bytes"),
    ("title", 7.5, "lead.title: expected text, got a float"),
    ("summary", "bell\x07", "lead.summary: 'bell\\x07' contains a control character"),
    ("summary", "x" * 4001, "lead.summary: 4001 characters is over the limit of 4000"),
    ("summary", "Autorite\u0301", "lead.summary: 'Autorite\u0301' is not in Unicode NFC form"),
    ("status", "confirmed", "lead.status: 'confirmed' is not one of suspected, verified"),
    ("violation_types", [], "lead.violation_types: empty list; leave the field out instead"),
    ("violation_types", "fraud", "lead.violation_types: expected a list, got text"),
    (
        "violation_types",
        ["phishing", "fraud"],
        "lead.violation_types: 'fraud' is out of order (canonical form is sorted, unique)",
    ),
    (
        "violation_types",
        ["fraud", "fraud"],
        "lead.violation_types: 'fraud' is a duplicate (canonical form is sorted, unique)",
    ),
    (
        "violation_types",
        ["fraud", "spam"],
        f"lead.violation_types[1]: 'spam' is not one of {VIOLATIONS}",
    ),
    ("violation_types", [["fraud"]], "lead.violation_types[0]: expected text, got a list"),
    (
        "subjects",
        [{"type": "domain", "value": "exa mple.com"}],
        f"lead.subjects[0].value: 'exa mple.com' {NOT_LDH}",
    ),
    (
        "subjects",
        [SUBJECT, {"type": "domain", "value": "Example.COM"}],
        "lead.subjects[1].value: 'Example.COM' is not in canonical form (that is 'example.com')",
    ),
    (
        "subjects",
        [{"type": "ip", "value": "999.1.1.1"}],
        "lead.subjects[0].value: '999.1.1.1' is not a valid IP address or network",
    ),
    (
        "subjects",
        [{"type": "ip", "value": "2001:DB8::1"}],
        "lead.subjects[0].value: '2001:DB8::1' is not in canonical form (that is '2001:db8::1')",
    ),
    (
        "subjects",
        [{"type": "email", "value": "bob@@example.com"}],
        "lead.subjects[0].value: 'bob@@example.com' is not a valid email address",
    ),
    (
        "subjects",
        [{"type": "url", "value": "pharma-example.com/buy"}],
        f"lead.subjects[0].value: 'pharma-example.com/buy' {NO_SCHEME}",
    ),
    (
        "subjects",
        [{"type": "phone", "value": "0612345678"}],
        f"lead.subjects[0].value: '0612345678' {PHONE_HINT}",
    ),
    (
        "subjects",
        [{"type": "name", "value": "ACME  Ltd"}],
        "lead.subjects[0].value: 'ACME  Ltd' is not in canonical form (that is 'ACME Ltd')",
    ),
    (
        "subjects",
        [{"type": "twitter", "value": "@spammer"}],
        f"lead.subjects[0].type: 'twitter' is not one of {SUBJECT_TYPES}",
    ),
    (
        "subjects",
        [{"type": "domain", "value": "pharma-example.com", "note": "x"}],
        "lead.subjects[0]: unknown key 'note'; keys are type, value",
    ),
    ("subjects", [{"type": "domain"}], "lead.subjects[0]: missing key value"),
    ("subjects", ["pharma-example.com"], "lead.subjects[0]: expected a map, got text"),
    ("subjects", [{"type": "domain", "value": 1.5}], "lead.subjects[0].value: expected text, got a float"),
    ("subjects", [SUBJECT, SUBJECT], "lead.subjects: duplicate item ('domain', 'pharma-example.com')"),
    (
        "subjects",
        [{"type": "ip", "value": f"10.0.{i // 256}.{i % 256}"} for i in range(1001)],
        "lead.subjects: 1001 items is over the limit of 1000",
    ),
    ("first_seen", 1.7e12, "lead.first_seen: expected an integer, got a float"),
    ("first_seen", True, "lead.first_seen: expected an integer, got a boolean"),
    ("first_seen", -1, "lead.first_seen: -1 is outside 0..253402300799999"),
    ("last_seen", 1_767_312_000_000, "lead.last_seen: 2026-01-02 is before first_seen 2026-01-03"),
    ("estimated_victims", -1, "lead.estimated_victims: -1 is outside 0..9223372036854775807"),
    (
        "detriment",
        {"amount": -1, "currency": "EUR"},
        "lead.detriment.amount: -1 is outside 0..9223372036854775807",
    ),
    (
        "detriment",
        {"amount": 100, "currency": "eur"},
        "lead.detriment.currency: 'eur' is not an ISO 4217 currency code like 'EUR'",
    ),
    (
        "detriment",
        {"amount": 100.0, "currency": "EUR"},
        "lead.detriment.amount: expected an integer, got a float",
    ),
    ("detriment", {"amount": 100}, "lead.detriment: missing key currency"),
    (
        "detriment",
        {"amount": 100, "currency": "EUR", "vat": 0},
        "lead.detriment: unknown key 'vat'; keys are amount, currency",
    ),
    ("detriment", [100, "EUR"], "lead.detriment: expected a map, got a list"),
    ("victim_locations", ["XX"], f"lead.victim_locations[0]: 'XX' {NOT_COUNTRY}"),
    (
        "victim_locations",
        ["UK"],
        f"lead.victim_locations[0]: 'UK' {NOT_COUNTRY}; the United Kingdom is 'GB'",
    ),
    (
        "victim_locations",
        ["EL"],
        f"lead.victim_locations[0]: 'EL' {NOT_COUNTRY}; Greece is 'GR' (EL is the EU's own abbreviation)",
    ),
    ("victim_locations", ["nl"], "lead.victim_locations[0]: 'nl' must be upper case: 'NL'"),
    (
        "victim_locations",
        ["NL", "BE"],
        "lead.victim_locations: 'BE' is out of order (canonical form is sorted, unique)",
    ),
    (
        "evidence",
        [{"digest": "md5:" + "a1" * 16, "description": "x"}],
        f"lead.evidence[0].digest: 'md5:a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1' {BAD_DIGEST}",
    ),
    (
        "evidence",
        [{"digest": DIGEST.upper(), "description": "x"}],
        f"lead.evidence[0].digest: '{DIGEST.upper()[:56]}... {BAD_DIGEST}",
    ),
    (
        "evidence",
        [{"digest": DIGEST, "description": ""}],
        "lead.evidence[0].description: empty text; leave the field out instead",
    ),
    (
        "evidence",
        [{"digest": DIGEST, "description": "a"}, {"digest": DIGEST, "description": "b"}],
        f"lead.evidence: duplicate item '{DIGEST[:56]}...",
    ),
    (
        "requested_assistance",
        ["information", "none"],
        "lead.requested_assistance: 'none' cannot be combined with other requests",
    ),
    (
        "requested_assistance",
        ["help"],
        f"lead.requested_assistance[0]: 'help' is not one of {ASSISTANCE}",
    ),
    (
        "contact_ref",
        CONTACT_REF.upper(),
        f"lead.contact_ref: '{CONTACT_REF.upper()[:56]}... is not a record id (64 lowercase hex digits)",
    ),
    ("contact_ref", "abc", "lead.contact_ref: 'abc' is not a record id (64 lowercase hex digits)"),
]


@pytest.mark.parametrize(
    ("field", "value", "message"), REFUSALS, ids=[f"{r[0]}-{i}" for i, r in enumerate(REFUSALS)]
)
def test_refusals(field: str, value: Any, message: str) -> None:
    fields = dict(FIELDS)
    if value is DELETE:
        del fields[field]
    else:
        fields[field] = value
    with pytest.raises(SchemaError) as caught:
        parse(fields)
    assert str(caught.value) == message


DOCUMENT_REFUSALS: list[tuple[str, object, str]] = [
    (
        "detriment",
        {"amount": "12.345", "currency": "EUR"},
        "lead.detriment.amount: '12.345' has more decimals than EUR's 2",
    ),
    (
        "detriment",
        {"amount": "12.5", "currency": "JPY"},
        "lead.detriment.amount: '12.5' has more decimals than JPY's 0",
    ),
    ("detriment", {"amount": -5, "currency": "EUR"}, "lead.detriment.amount: -5 is negative"),
    (
        "detriment",
        {"amount": "1,250.00", "currency": "EUR"},
        "lead.detriment.amount: '1,250.00' is not an amount like '1250' or '1250.50'",
    ),
    (
        "detriment",
        {"amount": "12", "currency": "EURO"},
        "lead.detriment.currency: 'EURO' is not an ISO 4217 currency code like 'EUR'",
    ),
    (
        "subjects",
        [{"type": "domain", "value": "exa mple.com"}],
        f"lead.subjects[0].value: 'exa mple.com' {NOT_LDH}",
    ),
    (
        "subjects",
        [{"type": "twitter", "value": "@x"}],
        f"lead.subjects[0].type: 'twitter' is not one of {SUBJECT_TYPES}",
    ),
    ("subjects", [{"kind": "domain"}], "lead.subjects[0]: unknown key 'kind'; keys are type, value"),
    (
        "victim_locations",
        ["Netherlands"],
        f"lead.victim_locations[0]: 'NETHERLANDS' {NOT_COUNTRY}",
    ),
    ("first_seen", "2026-03-02", "lead.last_seen: 2026-03-01T11:30:00Z is before first_seen 2026-03-02"),
]


@pytest.mark.parametrize(("field", "value", "message"), DOCUMENT_REFUSALS)
def test_document_refusals(field: str, value: object, message: str) -> None:
    document = {**DOCUMENT, field: value}
    with pytest.raises(SchemaError) as caught:
        body_from_document("lead", document)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("1250", "JPY", 1250),
        (1250, "EUR", 125000),
        ("1.234", "BHD", 1234),
        ("0.5", "USD", 50),
        ("7.10", "EUR", 710),
    ],
)
def test_document_amounts(amount: object, currency: str, minor: int) -> None:
    fields = body_from_document("lead", {**DOCUMENT, "detriment": {"amount": amount, "currency": currency}})
    assert fields["detriment"] == {"amount": minor, "currency": currency}
