"""protocol.kinds: dispatch, redaction rules, opaque bodies and the document conventions shared by all kinds.

Kind-specific round trips and refusals are in test_kinds_contact.py, test_kinds_lead.py and
test_kinds_trend.py.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from typing import Any

import pytest

from protocol import codec
from protocol.codec import Value
from protocol.errors import SchemaError
from protocol.kinds import (
    KNOWN_KINDS,
    SCHEMA_VERSIONS,
    Body,
    ContactBody,
    LeadBody,
    OpaqueBody,
    TrendBody,
    body_from_document,
    body_to_document,
    parse_body,
)
from protocol.kinds.codes import COUNTRY_CODES

CONTACT: dict[str, Value] = {"organisation": "ACM", "jurisdiction": "NL", "category": "enforcement"}
LEAD: dict[str, Value] = {"title": "Pharma spam", "summary": "Unlicensed medicines.", "status": "suspected"}
TREND: dict[str, Value] = {
    "period_start": 1_767_225_600_000,
    "period_end": 1_769_904_000_000,
    "jurisdiction": "AU",
    "category": "sms-spam",
    "metric": "complaints",
    "value": 18234,
    "unit": "count",
}
MINIMAL: dict[str, dict[str, Value]] = {"contact": CONTACT, "lead": LEAD, "trend": TREND}


def parse(kind: str, fields: Mapping[str, Value], committed: frozenset[str] | None = None) -> Any:
    return parse_body(kind, 1, fields, frozenset(fields) if committed is None else committed)


def refused(kind: str, fields: Mapping[str, Value], committed: frozenset[str] | None = None) -> str:
    with pytest.raises(SchemaError) as caught:
        parse(kind, fields, committed)
    return str(caught.value)


def test_known_kinds_and_versions() -> None:
    assert frozenset({"contact", "lead", "trend", "referral", "referral-status"}) == KNOWN_KINDS
    assert dict(SCHEMA_VERSIONS) == {"contact": 1, "lead": 1, "trend": 1, "referral": 1, "referral-status": 1}
    assert len(COUNTRY_CODES) == 249


@pytest.mark.parametrize(
    ("kind", "body_type"), [("contact", ContactBody), ("lead", LeadBody), ("trend", TrendBody)]
)
def test_dispatch(kind: str, body_type: type) -> None:
    body: Body = parse(kind, MINIMAL[kind])
    assert body.kind == kind
    assert type(body) is body_type


# Redaction: committed names the author committed to; fields holds what is disclosed.


@pytest.mark.parametrize("kind", sorted(MINIMAL))
def test_required_field_redacted_reads_as_none(kind: str) -> None:
    fields = dict(MINIMAL[kind])
    name = next(iter(fields))
    committed = frozenset(fields)
    del fields[name]
    body = parse(kind, fields, committed)
    assert getattr(body, name) is None
    assert name not in body_to_document(body)


@pytest.mark.parametrize("kind", sorted(MINIMAL))
def test_required_field_missing_is_refused(kind: str) -> None:
    fields = dict(MINIMAL[kind])
    name = next(iter(fields))
    del fields[name]
    assert refused(kind, fields) == f"{kind}: missing required field {name}"


def test_redacted_list_is_none_and_omitted_list_is_empty() -> None:
    fields = {**CONTACT, "notes": "n"}
    redacted = parse("contact", fields, frozenset(fields) | {"emails"})
    omitted = parse("contact", fields)
    assert redacted.emails is None
    assert omitted.emails == ()
    assert redacted.index_terms() == omitted.index_terms()


def test_unknown_field_is_refused() -> None:
    message = refused("lead", {**LEAD, "colour": "red"})
    assert message.startswith("lead: unknown field 'colour'; known fields are contact_ref, detriment,")


def test_unknown_committed_field_is_refused_even_when_redacted() -> None:
    message = refused("lead", LEAD, frozenset(LEAD) | {"colour"})
    assert message.startswith("lead: unknown field 'colour'")


def test_disclosed_but_not_committed_is_refused() -> None:
    fields = {**LEAD, "legal_basis": "Telecommunicatiewet art. 11.7"}
    assert refused("lead", fields, frozenset(LEAD)) == "lead.legal_basis: disclosed but not committed to"


def test_null_value_is_refused() -> None:
    assert refused("lead", {**LEAD, "legal_basis": None}) == "lead.legal_basis: expected text, got null"


# Unknown kinds and newer schemas are kept, not interpreted.


def test_unknown_kind_is_opaque() -> None:
    fields: dict[str, Value] = {"anything": [1, b"\x00\xff", {"x": None}]}
    body = parse_body("takedown-notice", 1, fields, frozenset({"anything", "redacted"}))
    assert body == OpaqueBody("takedown-notice", 1, fields)
    assert body.index_terms() == []
    assert body.search_text() == ""
    assert "takedown-notice" in body.summary_line()
    assert body_to_document(body) == {"anything": [1, "00ff", {"x": None}]}
    hash(body)
    with pytest.raises(TypeError):
        body.fields["anything"] = 2  # type: ignore[index]


def test_newer_schema_of_known_kind_is_opaque() -> None:
    body = parse_body("lead", 2, {"title": 7, "whatever": "new"}, frozenset({"title", "whatever"}))
    assert isinstance(body, OpaqueBody)
    assert (body.kind, body.schema) == ("lead", 2)


@pytest.mark.parametrize(
    ("kind", "schema", "message"),
    [
        ("lead", 0, "lead: schema version 0 is not a positive integer"),
        ("x-kind", -1, "schema version -1"),
        ("Lead", 1, "'Lead' is not a valid kind name"),
        ("", 1, "'' is not a valid kind name"),
        ("a" * 33, 1, "is not a valid kind name"),
        ("lead", True, "schema version True"),
    ],
)
def test_garbage_kind_or_schema_is_refused(kind: str, schema: int, message: str) -> None:
    with pytest.raises(SchemaError) as caught:
        parse_body(kind, schema, {}, frozenset())
    assert message in str(caught.value)


# Document conventions (protocol/kinds/documents.py), tried on whichever kind shows them best.


def test_unknown_kind_in_document() -> None:
    known = "contact, lead, referral, referral-status, trend"
    with pytest.raises(SchemaError, match=f"unknown kind 'memo'; known kinds are {known}"):
        body_from_document("memo", {})


def test_document_must_be_a_map() -> None:
    with pytest.raises(SchemaError, match="lead: expected a map of fields, got list"):
        body_from_document("lead", [])  # type: ignore[arg-type]


def test_document_unknown_keys_are_all_named() -> None:
    with pytest.raises(SchemaError, match="lead: unknown fields 'colour', 'size'; known fields are"):
        body_from_document("lead", {**LEAD, "size": 1, "colour": "red"})


@pytest.mark.parametrize(
    ("kind", "document", "message"),
    [
        ("trend", {**TREND, "value": 12.5}, "trend.value: 12.5 is a float; write an integer, or a decimal"),
        ("trend", {**TREND, "value": 12.0}, "trend.value: 12.0 is a float"),
        (
            "trend",
            {**TREND, "breakdown": [{"key": "NL", "value": 1}, {"key": "BE", "value": 0.5}]},
            "trend.breakdown[1].value: 0.5 is a float",
        ),
        ("lead", {**LEAD, "detriment": {"amount": 99.99, "currency": "EUR"}}, "lead.detriment.amount: 99.99"),
        ("lead", {**LEAD, "estimated_victims": float("nan")}, "lead.estimated_victims: nan is a float"),
        ("lead", {**LEAD, "first_seen": 1.7e12}, "lead.first_seen: 1700000000000.0 is a float"),
    ],
)
def test_floats_are_refused_everywhere(kind: str, document: dict[str, object], message: str) -> None:
    with pytest.raises(SchemaError) as caught:
        body_from_document(kind, document)
    assert str(caught.value).startswith(message)


def test_blank_optional_values_are_dropped_but_required_ones_refused() -> None:
    document = {**CONTACT, "unit": "  ", "emails": [], "notes": None, "person": ""}
    assert body_from_document("contact", document) == CONTACT
    with pytest.raises(SchemaError, match="contact: missing required field organisation"):
        body_from_document("contact", {**CONTACT, "organisation": " "})


def test_document_text_is_trimmed_and_nfc() -> None:
    document = {**CONTACT, "organisation": "  Autorite\u0301 ", "notes": "line 1\r\nline 2\r\n"}
    fields = body_from_document("contact", document)
    assert fields["organisation"] == "Autorit\u00e9"
    assert fields["notes"] == "line 1\nline 2"


TIMES = [
    ("2026-11-01", False, 1_793_491_200_000),
    ("2026-11-01", True, 1_793_577_600_000),  # the end of a period: the midnight after the date
    ("2026-11-01T10:00:00Z", False, 1_793_527_200_000),
    ("2026-11-01T10:00:00Z", True, 1_793_527_200_000),  # a datetime is an instant either way
    ("2026-11-01t10:00:00z", False, 1_793_527_200_000),
    ("2026-11-01 11:00+01:00", False, 1_793_527_200_000),
    ("2026-11-01T10:00:00.123456Z", False, 1_793_527_200_123),
    (datetime.date(2026, 11, 1), False, 1_793_491_200_000),
    (datetime.datetime(2026, 11, 1, 10, tzinfo=datetime.UTC), False, 1_793_527_200_000),
    (1_793_527_200_000, False, 1_793_527_200_000),
]


@pytest.mark.parametrize(("given", "end", "expected"), TIMES)
def test_document_times(given: object, end: bool, expected: int) -> None:
    field = "period_end" if end else "period_start"
    other, other_value = ("period_start", 0) if end else ("period_end", 4_000_000_000_000)
    fields = body_from_document("trend", {**TREND, field: given, other: other_value})
    assert fields[field] == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("2026-11-01T10:00:00", "is not an ISO-8601 date or a datetime with an offset"),
        (datetime.datetime(2026, 11, 1, 10), "has no UTC offset"),
        ("01/11/2026", "is not an ISO-8601 date"),
        ("2026-02-30", "is not an ISO-8601 date"),
        ("2026-W44", "is not an ISO-8601 date"),
        (datetime.time(10), "expected a date or datetime, got time"),
        (True, "expected a date or datetime, got a boolean"),
        ("1969-12-31", "is outside 0..253402300799999"),
    ],
)
def test_document_time_refusals(given: object, message: str) -> None:
    with pytest.raises(SchemaError) as caught:
        body_from_document("lead", {**LEAD, "first_seen": given})
    assert str(caught.value).startswith("lead.first_seen: ")
    assert message in str(caught.value)


EXAMPLES: dict[str, dict[str, object]] = {
    "contact": {**CONTACT, "emails": ["LAP@acm.nl"], "topics": ["telemarketing", "email-spam"]},
    "lead": {
        **LEAD,
        "first_seen": "2026-01-03",
        "last_seen": "2026-03-01T12:30:00.250+01:00",
        "detriment": {"amount": "1250.5", "currency": "eur"},
        "subjects": [{"type": "Domain", "value": "Pharma-Example.COM."}],
    },
    "trend": {**TREND, "period_start": "2026-01-01", "period_end": "2026-01-31", "value": "007.50"},
}


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_display_document_feeds_back_to_the_same_fields(kind: str) -> None:
    fields = body_from_document(kind, EXAMPLES[kind])
    wire = codec.decode(codec.encode(fields), max_size=1 << 16)
    body = parse_body(kind, 1, wire, frozenset(wire))
    shown = body_to_document(body)
    assert json.loads(json.dumps(shown)) == shown
    assert body_from_document(kind, shown) == fields
    assert parse_body(kind, 1, fields, frozenset(fields)) == body


def test_display_forms() -> None:
    lead = parse("lead", body_from_document("lead", EXAMPLES["lead"]))
    shown = body_to_document(lead)
    assert shown["first_seen"] == "2026-01-03"
    assert shown["last_seen"] == "2026-03-01T11:30:00.250Z"
    assert shown["detriment"] == {"amount": "1250.50", "currency": "EUR"}
    trend = body_to_document(parse("trend", body_from_document("trend", EXAMPLES["trend"])))
    assert (trend["period_start"], trend["period_end"], trend["value"]) == ("2026-01-01", "2026-01-31", "7.5")
