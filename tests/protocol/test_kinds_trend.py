"""The trend kind: a realistic monthly statistic end to end, refusals, and the decimal rules."""

from __future__ import annotations

import decimal
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import codec
from protocol.codec import Value
from protocol.errors import SchemaError
from protocol.kinds import TrendBody, body_from_document, body_to_document, documents, fields, parse_body
from protocol.kinds.trend import BreakdownEntry

JANUARY_2026 = 1_767_225_600_000
FEBRUARY_2026 = 1_769_904_000_000

# SMS spam complaints in Australia for one month, by where the sending number is registered.
DOCUMENT: dict[str, object] = {
    "period_start": "2026-01-01",
    "period_end": "2026-01-31",
    "jurisdiction": "au",
    "region": "Australia (national)",
    "category": "SMS-Spam",
    "metric": "complaints",
    "value": 18234,
    "unit": "count",
    "method": "Reports to the national spam SMS reporting service, de-duplicated by message.",
    "breakdown": [
        {"key": "AU", "value": 12000},
        {"key": "unknown", "value": "6234"},
    ],
    "commentary": "Up 12.5% on December: a parcel-delivery scam wave.\n",
}

FIELDS: dict[str, Value] = {
    "period_start": JANUARY_2026,
    "period_end": FEBRUARY_2026,
    "jurisdiction": "AU",
    "region": "Australia (national)",
    "category": "sms-spam",
    "metric": "complaints",
    "value": 18234,
    "unit": "count",
    "method": "Reports to the national spam SMS reporting service, de-duplicated by message.",
    "breakdown": [{"key": "AU", "value": 12000}, {"key": "unknown", "value": 6234}],
    "commentary": "Up 12.5% on December: a parcel-delivery scam wave.",
}


def parse(body_fields: dict[str, Value], committed: frozenset[str] | None = None) -> TrendBody:
    body = parse_body("trend", 1, body_fields, frozenset(body_fields) if committed is None else committed)
    assert isinstance(body, TrendBody)
    return body


def test_document_to_canonical_fields() -> None:
    assert body_from_document("trend", DOCUMENT) == FIELDS


def test_round_trip() -> None:
    body = parse(codec.decode(codec.encode(FIELDS), max_size=1 << 16))
    assert body.breakdown == (BreakdownEntry("AU", 12000), BreakdownEntry("unknown", 6234))
    shown = body_to_document(body)
    assert json.loads(json.dumps(shown)) == shown
    assert (shown["period_start"], shown["period_end"]) == ("2026-01-01", "2026-01-31")
    assert body_from_document("trend", shown) == FIELDS


def test_index_terms_text_and_summary() -> None:
    body = parse(FIELDS)
    assert body.index_terms() == [("jurisdiction", "AU"), ("topic", "sms-spam"), ("metric", "complaints")]
    assert "parcel-delivery" in body.search_text()
    assert body.summary_line() == "[AU] sms-spam complaints 2026-01-01..2026-01-31: 18234 count"


def test_region_alone_or_redacted_jurisdiction_is_enough() -> None:
    without = {key: value for key, value in FIELDS.items() if key != "jurisdiction"}
    assert parse(without).region == "Australia (national)"
    bare = {key: value for key, value in without.items() if key != "region"}
    assert parse(bare, frozenset(bare) | {"jurisdiction"}).jurisdiction is None


def test_decimal_values() -> None:
    body = parse({**FIELDS, "value": "-0.125", "unit": "EUR", "breakdown": [{"key": "NL", "value": "3.5"}]})
    assert body.value == "-0.125"
    assert body.summary_line().endswith(": -0.125 EUR")


NOT_DECIMAL = (
    "is not a canonical decimal (like '12.5': no leading or trailing zeros, at most 40 characters;"
    " whole numbers are integers)"
)
NOT_IDENTIFIER = "is not a lower-case identifier like 'sms-spam'"
ARABIC_INDIC = "\u0661.\u0665"  # "1.5" in other digits: \d would take them, the wire must not

DELETE = object()

REFUSALS: list[tuple[str, Any, str]] = [
    ("period_start", DELETE, "trend: missing required field period_start"),
    ("period_end", JANUARY_2026, "trend.period_end: 2026-01-01 is not after period_start 2026-01-01"),
    ("period_end", 1.5, "trend.period_end: expected an integer, got a float"),
    ("jurisdiction", "XX", "trend.jurisdiction: 'XX' is not an ISO 3166-1 alpha-2 country code"),
    ("region", "", "trend.region: empty text; leave the field out instead"),
    ("category", "SMS spam", f"trend.category: 'SMS spam' {NOT_IDENTIFIER}"),
    ("metric", "Complaints", f"trend.metric: 'Complaints' {NOT_IDENTIFIER}"),
    ("metric", "x" * 65, f"trend.metric: '{'x' * 56}... {NOT_IDENTIFIER}"),
    ("value", 18234.0, "trend.value: expected an integer or a decimal string, got a float"),
    (
        "value",
        "18234",
        f"trend.value: '18234' {NOT_DECIMAL}",
    ),
    (
        "value",
        "12.50",
        f"trend.value: '12.50' {NOT_DECIMAL}",
    ),
    (
        "value",
        "012.5",
        f"trend.value: '012.5' {NOT_DECIMAL}",
    ),
    (
        "value",
        "-0.0",
        f"trend.value: '-0.0' {NOT_DECIMAL}",
    ),
    (
        "value",
        "1e3",
        f"trend.value: '1e3' {NOT_DECIMAL}",
    ),
    ("value", ARABIC_INDIC, f"trend.value: {ARABIC_INDIC!r} {NOT_DECIMAL}"),
    ("value", 2**63, "trend.value: 9223372036854775808 is outside -9223372036854775808..9223372036854775807"),
    ("value", None, "trend.value: expected an integer or a decimal string, got null"),
    ("unit", "per 100k people", "trend.unit: 'per 100k people' is not a unit like 'count' or 'EUR'"),
    ("breakdown", [], "trend.breakdown: empty list; leave the field out instead"),
    (
        "breakdown",
        [{"key": "NL", "value": 1}, {"key": "NL", "value": 2}],
        "trend.breakdown: duplicate item 'NL'",
    ),
    (
        "breakdown",
        [{"key": "NL", "value": 0.5}],
        "trend.breakdown[0].value: expected an integer or a decimal string, got a float",
    ),
    (
        "breakdown",
        [{"key": "", "value": 1}],
        "trend.breakdown[0].key: empty text; leave the field out instead",
    ),
    ("breakdown", [{"key": "NL"}], "trend.breakdown[0]: missing key value"),
    ("breakdown", {"NL": 1}, "trend.breakdown: expected a list, got a map"),
    ("commentary", "bell\x07", "trend.commentary: 'bell\\x07' contains a control character"),
]


@pytest.mark.parametrize(
    ("field", "value", "message"), REFUSALS, ids=[f"{r[0]}-{i}" for i, r in enumerate(REFUSALS)]
)
def test_refusals(field: str, value: Any, message: str) -> None:
    body_fields = dict(FIELDS)
    if value is DELETE:
        del body_fields[field]
    else:
        body_fields[field] = value
    with pytest.raises(SchemaError) as caught:
        parse(body_fields)
    assert str(caught.value) == message


def test_jurisdiction_or_region_required() -> None:
    bare = {key: value for key, value in FIELDS.items() if key not in ("jurisdiction", "region")}
    with pytest.raises(SchemaError) as caught:
        parse(bare)
    assert str(caught.value) == "trend: give a jurisdiction or a region (or both)"


@pytest.mark.parametrize(
    ("given", "wire"),
    [
        (12, 12),
        ("12", 12),
        ("0012.500", "12.5"),
        ("3.000", 3),
        ("-0", 0),
        ("-0.50", "-0.5"),
        (" 7.25 ", "7.25"),
    ],
)
def test_document_decimals(given: object, wire: int | str) -> None:
    assert body_from_document("trend", {**DOCUMENT, "value": given})["value"] == wire


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("1,5", "trend.value: '1,5' is not an integer or a decimal like '12.5'"),
        ("12.", "trend.value: '12.' is not an integer or a decimal like '12.5'"),
        (True, "trend.value: expected an integer or a decimal string, got a boolean"),
        ("9" * 41, "trend.value: '99999999999999999999999999999999999999999' is not an integer or a decimal"),
    ],
)
def test_document_decimal_refusals(given: object, message: str) -> None:
    with pytest.raises(SchemaError) as caught:
        body_from_document("trend", {**DOCUMENT, "value": given})
    assert str(caught.value).startswith(message)


@given(st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=-(10**12), max_value=10**12))
def test_any_decimal_string_becomes_one_canonical_wire_value(number: decimal.Decimal) -> None:
    text = f"{number:f}"
    wire = documents.decimal(text)
    assert fields.number(wire) == wire
    assert decimal.Decimal(wire) == number
    assert documents.decimal(str(wire)) == wire
