"""The contact kind: a realistic point of contact end to end, and a refusal for every validator."""

from __future__ import annotations

import json
from typing import Any

import pytest

from protocol import codec
from protocol.codec import Value
from protocol.errors import SchemaError
from protocol.kinds import ContactBody, body_from_document, body_to_document, parse_body

# The Dutch enforcement contact (OPTA until 2013, now ACM), as an operator would write it in TOML.
DOCUMENT: dict[str, object] = {
    "organisation": "Autoriteit Consument & Markt (ACM)",
    "unit": "Directie Telecommunicatie, Vervoer en Post",
    "role": "LAP designated point of contact",
    "person": "J. de Vries",
    "emails": ["LAP@ACM.nl ", "info@acm.nl"],
    "phones": ["+31 (0)70 722 2000"],
    "languages": ["NL", "en", "pt_br", "zh-hant-tw"],
    "timezone": "Europe/Amsterdam",
    "hours": "Mon-Fri 09:00-17:00 CET",
    "jurisdiction": "nl",
    "category": "Enforcement",
    "sector": "Telecommunications regulator",
    "topics": ["telemarketing", "email-spam", "do-not-call", "email-spam"],
    "notes": "Successor of OPTA (merged into ACM in 2013).\r\nReferrals in English are fine.\r\n",
}

FIELDS: dict[str, Value] = {
    "organisation": "Autoriteit Consument & Markt (ACM)",
    "unit": "Directie Telecommunicatie, Vervoer en Post",
    "role": "LAP designated point of contact",
    "person": "J. de Vries",
    "emails": ["lap@acm.nl", "info@acm.nl"],
    "phones": ["+31707222000"],
    "languages": ["nl", "en", "pt-BR", "zh-Hant-TW"],
    "timezone": "Europe/Amsterdam",
    "hours": "Mon-Fri 09:00-17:00 CET",
    "jurisdiction": "NL",
    "category": "enforcement",
    "sector": "Telecommunications regulator",
    "topics": ["do-not-call", "email-spam", "telemarketing"],
    "notes": "Successor of OPTA (merged into ACM in 2013).\nReferrals in English are fine.",
}


def parse(fields: dict[str, Value]) -> ContactBody:
    body = parse_body("contact", 1, fields, frozenset(fields))
    assert isinstance(body, ContactBody)
    return body


def test_document_to_canonical_fields() -> None:
    assert body_from_document("contact", DOCUMENT) == FIELDS


def test_round_trip() -> None:
    body = parse(codec.decode(codec.encode(FIELDS), max_size=1 << 16))
    assert body.emails == ("lap@acm.nl", "info@acm.nl")  # author's order: first is preferred
    assert body.topics == ("do-not-call", "email-spam", "telemarketing")
    shown = body_to_document(body)
    assert json.loads(json.dumps(shown)) == shown
    assert body_from_document("contact", shown) == FIELDS


def test_index_terms_text_and_summary() -> None:
    body = parse(FIELDS)
    assert body.index_terms() == [
        ("name", "autoriteit consument & markt (acm)"),
        ("name", "j. de vries"),
        ("email", "lap@acm.nl"),
        ("email", "info@acm.nl"),
        ("phone", "+31707222000"),
        ("jurisdiction", "NL"),
        ("category", "enforcement"),
        ("topic", "do-not-call"),
        ("topic", "email-spam"),
        ("topic", "telemarketing"),
    ]
    assert "OPTA" in body.search_text()
    assert "Telecommunications regulator" in body.search_text()
    assert body.summary_line() == (
        "[NL] Autoriteit Consument & Markt (ACM) / Directie Telecommunicatie, Vervoer en Post"
        " (enforcement) lap@acm.nl"
    )


def test_minimal_contact() -> None:
    body = parse({"organisation": "ACMA", "jurisdiction": "AU", "category": "government"})
    assert (body.emails, body.unit, body.notes) == ((), None, None)
    assert body.summary_line() == "[AU] ACMA (government)"


TOPICS = "do-not-call, email-spam, fraud, malware, phishing, sms-spam, telemarketing"
NOT_COUNTRY = "is not an ISO 3166-1 alpha-2 country code"
PHONE_HINT = "is not a valid phone number: write + and the country code, then 6-15 digits in all"

DELETE = object()

REFUSALS: list[tuple[str, Any, str]] = [
    ("organisation", DELETE, "contact: missing required field organisation"),
    ("organisation", "x" * 201, "contact.organisation: 201 characters is over the limit of 200"),
    ("jurisdiction", DELETE, "contact: missing required field jurisdiction"),
    ("jurisdiction", "XX", f"contact.jurisdiction: 'XX' {NOT_COUNTRY}"),
    (
        "jurisdiction",
        "UK",
        f"contact.jurisdiction: 'UK' {NOT_COUNTRY}; the United Kingdom is 'GB'",
    ),
    (
        "jurisdiction",
        "EU",
        f"contact.jurisdiction: 'EU' {NOT_COUNTRY}; the EU is not a country; list the member states",
    ),
    ("jurisdiction", "nl", "contact.jurisdiction: 'nl' must be upper case: 'NL'"),
    ("jurisdiction", "NLD", f"contact.jurisdiction: 'NLD' {NOT_COUNTRY}"),
    ("jurisdiction", ["NL"], "contact.jurisdiction: expected a country code, got a list"),
    (
        "category",
        "police",
        "contact.category: 'police' is not one of enforcement, government, industry, interest-group",
    ),
    ("unit", "", "contact.unit: empty text; leave the field out instead"),
    ("unit", "Team\nTelecom", "contact.unit: 'Team\\nTelecom' contains a line break"),
    ("emails", [], "contact.emails: empty list; leave the field out instead"),
    (
        "emails",
        ["Lap@acm.nl"],
        "contact.emails[0]: 'Lap@acm.nl' is not in canonical form (that is 'lap@acm.nl')",
    ),
    ("emails", ["lap@@acm.nl"], "contact.emails[0]: 'lap@@acm.nl' is not a valid email address"),
    ("emails", ["lap@acm.nl", "lap@acm.nl"], "contact.emails: duplicate item 'lap@acm.nl'"),
    ("emails", [f"x{i}@acm.nl" for i in range(17)], "contact.emails: 17 items is over the limit of 16"),
    ("emails", "lap@acm.nl", "contact.emails: expected a list, got text"),
    (
        "phones",
        ["070 722 2000"],
        f"contact.phones[0]: '070 722 2000' {PHONE_HINT}",
    ),
    (
        "phones",
        ["+31 70 722 2000"],
        "contact.phones[0]: '+31 70 722 2000' is not in canonical form (that is '+31707222000')",
    ),
    ("languages", ["pt-br"], "contact.languages[0]: 'pt-br' is not a language tag like 'en' or 'pt-BR'"),
    ("languages", ["Dutch"], "contact.languages[0]: 'Dutch' is not a language tag like 'en' or 'pt-BR'"),
    (
        "timezone",
        "Europe Amsterdam",
        "contact.timezone: 'Europe Amsterdam' is not an IANA time zone name like 'Europe/Amsterdam'",
    ),
    (
        "timezone",
        "CET+1/",
        "contact.timezone: 'CET+1/' is not an IANA time zone name like 'Europe/Amsterdam'",
    ),
    (
        "topics",
        ["spam"],
        f"contact.topics[0]: 'spam' is not one of {TOPICS}",
    ),
    (
        "topics",
        ["telemarketing", "email-spam"],
        "contact.topics: 'email-spam' is out of order (canonical form is sorted, unique)",
    ),
    ("topics", [{"topic": "fraud"}], "contact.topics[0]: expected text, got a map"),
    ("notes", "x" * 4001, "contact.notes: 4001 characters is over the limit of 4000"),
    ("notes", "tab\there", "contact.notes: 'tab\\there' contains a control character"),
    (
        "notes",
        "ends with a newline\n",
        "contact.notes: 'ends with a newline\\n' has leading or trailing blanks",
    ),
    ("notes", "next line\u2028here", "contact.notes: 'next line\\u2028here' contains a control character"),
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


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "jurisdiction",
            "uk",
            f"contact.jurisdiction: 'UK' {NOT_COUNTRY}; the United Kingdom is 'GB'",
        ),
        ("emails", ["not an address"], "contact.emails[0]: 'not an address' is not a valid email address"),
        ("phones", "+31 70 722 2000", "contact.phones: expected a list, got text"),
        ("languages", [7], "contact.languages[0]: expected a language tag, got an integer"),
        ("category", 1, "contact.category: expected text, got an integer"),
        (
            "topics",
            ["Email-Spam", "SMS spam"],
            f"contact.topics[1]: 'sms spam' is not one of {TOPICS}",
        ),
    ],
)
def test_document_refusals(field: str, value: object, message: str) -> None:
    with pytest.raises(SchemaError) as caught:
        body_from_document("contact", {**DOCUMENT, field: value})
    assert str(caught.value) == message
