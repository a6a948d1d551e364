"""Record body kinds: what a contact, a case lead, a trend indicator, a referral and a referral status
contain, and how to read them.

A body is a flat map of top-level field name -> canonical value. The author commits to each top-level
field separately, so a body may arrive with some fields redacted: `fields` holds the disclosed values,
`committed` every name committed to, and the redacted fields are `committed - fields.keys()`.

Rule 1: `parse_body` is the only way a received body becomes a typed value, a frozen dataclass. It is
strict: an unknown field name (disclosed or committed), a missing required field, a wrong type, an empty
string or list, or a value not in canonical form is a `SchemaError` naming the field
("lead.subjects[2].value: 'exa mple.com' is not a valid domain").
Rule 2: a redacted field reads as None; an optional field the author left out reads as None, or () for a
list. A required field must be committed to, and may be redacted.
Rule 3: each value has one encoding. Operators' friendly input (dates, amounts, mixed case, unsorted
sets) is repaired by `body_from_document` only, whose output then passes `parse_body` like any peer's.
Conventions for times, numbers, money and empty values: protocol.kinds.documents.
Rule 4: an unknown kind, or a known kind at a schema version this node does not know, is an
`OpaqueBody`: stored and relayed as received, never interpreted.
Rule 5: a sealed record's body is a `SealedBody` (protocol.kinds.sealed), parsed by the envelope from the
scope's `sealed` flag; once a recipient opens it, the plaintext goes through `parse_body` like any body.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final, TypeAlias

from protocol.codec import Value
from protocol.errors import SchemaError
from protocol.indicators import show
from protocol.kinds import contact, lead, opaque, referral, referral_status, sealed, trend
from protocol.kinds.contact import ContactBody
from protocol.kinds.lead import Detriment, Evidence, LeadBody, Subject
from protocol.kinds.opaque import OpaqueBody
from protocol.kinds.referral import ReferralBody
from protocol.kinds.referral_status import ReferralStatusBody
from protocol.kinds.sealed import SealedBody
from protocol.kinds.trend import BreakdownEntry, TrendBody

__all__ = [
    "KNOWN_KINDS",
    "SCHEMA_VERSIONS",
    "Body",
    "BreakdownEntry",
    "ContactBody",
    "Detriment",
    "Evidence",
    "LeadBody",
    "OpaqueBody",
    "ReferralBody",
    "ReferralStatusBody",
    "SealedBody",
    "Subject",
    "TrendBody",
    "body_from_document",
    "body_to_document",
    "parse_body",
]

Body: TypeAlias = (
    ContactBody | LeadBody | TrendBody | ReferralBody | ReferralStatusBody | OpaqueBody | SealedBody
)

KNOWN_KINDS: Final[frozenset[str]] = frozenset(
    {"contact", "lead", "trend", referral.KIND, referral_status.KIND}
)
SCHEMA_VERSIONS: Final[Mapping[str, int]] = MappingProxyType(
    {
        contact.KIND: contact.SCHEMA,
        lead.KIND: lead.SCHEMA,
        trend.KIND: trend.SCHEMA,
        referral.KIND: referral.SCHEMA,
        referral_status.KIND: referral_status.SCHEMA,
    }
)

_Parser = Callable[[Mapping[str, Value], frozenset[str]], Body]
# Keyed by (kind, schema version): when a schema 2 comes, schema 1 keeps its parser next to it.
_PARSERS: Final[Mapping[tuple[str, int], _Parser]] = {
    (contact.KIND, contact.SCHEMA): contact.parse,
    (lead.KIND, lead.SCHEMA): lead.parse,
    (trend.KIND, trend.SCHEMA): trend.parse,
    (referral.KIND, referral.SCHEMA): referral.parse,
    (referral_status.KIND, referral_status.SCHEMA): referral_status.parse,
}
_FROM_DOCUMENT: Final[Mapping[str, Callable[[object], dict[str, Value]]]] = {
    contact.KIND: contact.from_document,
    lead.KIND: lead.from_document,
    trend.KIND: trend.from_document,
    referral.KIND: referral.from_document,
    referral_status.KIND: referral_status.from_document,
}
_TO_DOCUMENT: Final[Mapping[type, Callable[[Any], dict[str, object]]]] = {
    ContactBody: contact.to_document,
    LeadBody: lead.to_document,
    TrendBody: trend.to_document,
    ReferralBody: referral.to_document,
    ReferralStatusBody: referral_status.to_document,
    OpaqueBody: opaque.to_document,
    SealedBody: sealed.to_document,
}
assert {kind for kind, _ in _PARSERS} == KNOWN_KINDS == _FROM_DOCUMENT.keys()


def parse_body(kind: str, schema: int, fields: Mapping[str, Value], committed: frozenset[str]) -> Body:
    """Validate a received body: the typed body, an OpaqueBody for what we cannot read, or SchemaError."""
    # True == 1 as a dict key; a boolean schema version must not pass for schema 1.
    parser = _PARSERS.get((kind, schema)) if type(schema) is int else None
    if parser is None:
        return opaque.parse(kind, schema, fields)
    return parser(fields, committed)


def body_from_document(kind: str, document: Mapping[str, object]) -> dict[str, Value]:
    """An operator's document (parsed JSON or TOML) as the canonical wire fields of `kind`'s schema."""
    convert = _FROM_DOCUMENT.get(kind)
    if convert is None:
        raise SchemaError(f"unknown kind {show(kind)}; known kinds are {', '.join(sorted(KNOWN_KINDS))}")
    body_fields = convert(document)
    parse_body(kind, SCHEMA_VERSIONS[kind], body_fields, frozenset(body_fields))
    return body_fields


def body_to_document(body: Body) -> dict[str, object]:
    """A JSON-serialisable display form. Redacted fields are left out: the record lists them."""
    return _TO_DOCUMENT[type(body)](body)
