"""The `contact` kind, schema 1: a member's designated point of contact.

Rule 1: organisation, jurisdiction and category are required (they may be redacted, never absent).
Rule 2: emails and phones are stored normalised (protocol.indicators), so the same mailbox or number has
one spelling in every record; languages use canonical BCP 47 case ("pt-BR", "zh-Hant-TW").
Rule 3: lists keep the author's order (first = preferred) except topics, a set, which is sorted.
Rule 4: timezone is checked against the shape of an IANA name only: looking it up would read tz files, and
the wire layer does no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Final

from protocol.codec import Value
from protocol.frozen import quick_init
from protocol.indicators import normalise
from protocol.kinds import documents, fields

KIND: Final = "contact"
SCHEMA: Final = 1

CATEGORIES: Final = frozenset({"enforcement", "government", "industry", "interest-group"})
TOPICS: Final = frozenset(
    {"email-spam", "sms-spam", "telemarketing", "do-not-call", "phishing", "malware", "fraud"}
)
MAX_ORGANISATION_LEN: Final = fields.MAX_LABEL_LEN
MAX_NOTES_LEN: Final = fields.MAX_TEXT_LEN
MAX_EMAILS: Final = 16
MAX_PHONES: Final = 16
MAX_LANGUAGES: Final = 32
MAX_TIMEZONE_LEN: Final = 64

# language[-Script][-REGION][-variant...]: enough of BCP 47 for "which languages can we work in".
_LANGUAGE_RE: Final = re.compile(
    r"[a-z]{2,3}(?:-[A-Z][a-z]{3})?(?:-(?:[A-Z]{2}|[0-9]{3}))?(?:-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*"
)
_TIMEZONE_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+){0,2}")


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class ContactBody:
    """A point of contact. None means redacted (or, for optional scalars, not given); () means none."""

    kind: ClassVar[str] = KIND
    organisation: str | None
    jurisdiction: str | None
    category: str | None
    unit: str | None = None
    role: str | None = None
    person: str | None = None
    emails: tuple[str, ...] | None = ()
    phones: tuple[str, ...] | None = ()
    languages: tuple[str, ...] | None = ()
    timezone: str | None = None
    hours: str | None = None
    sector: str | None = None
    topics: tuple[str, ...] | None = ()
    notes: str | None = None
    # The earlier version of this record that this one replaces (SPEC §5.1); 32 raw bytes.
    supersedes: bytes | None = None

    def index_terms(self) -> list[tuple[str, str]]:
        terms: list[tuple[str, str]] = []
        for name in (self.organisation, self.person):
            if name is not None:
                terms.append(("name", normalise("name", name)))
        terms += [("email", email) for email in self.emails or ()]
        terms += [("phone", phone) for phone in self.phones or ()]
        if self.jurisdiction is not None:
            terms.append(("jurisdiction", self.jurisdiction))
        if self.category is not None:
            terms.append(("category", self.category))
        terms += [("topic", topic) for topic in self.topics or ()]
        return list(dict.fromkeys(terms))

    def search_text(self) -> str:
        parts = (self.organisation, self.unit, self.role, self.person, self.sector, self.hours, self.notes)
        return "\n".join(part for part in parts if part is not None)

    def summary_line(self) -> str:
        who = " / ".join(part for part in (self.organisation or "[redacted]", self.unit) if part)
        reach = (self.emails or self.phones or ("",))[0]
        jurisdiction = self.jurisdiction or "??"
        category = self.category or "[redacted]"
        return f"[{jurisdiction}] {who} ({category})" + (f" {reach}" if reach else "")


def _language(value: object) -> str:
    """Canonical BCP 47 case: language lower, Script title, REGION upper, the rest lower."""
    if not isinstance(value, str):
        raise fields.wrong_type("a language tag", value)
    subtags = value.strip().replace("_", "-").split("-")
    result = [subtags[0].lower()]
    for subtag in subtags[1:]:
        if len(subtag) == 4 and subtag.isalpha():
            result.append(subtag.title())
        elif len(subtag) == 2:
            result.append(subtag.upper())
        else:
            result.append(subtag.lower())
    return "-".join(result)


_language_check: Final = fields.pattern(_LANGUAGE_RE, "a language tag like 'en' or 'pt-BR'")
_label: Final = fields.text(fields.MAX_LABEL_LEN)

SCHEMA_TABLE: Final = fields.Schema(
    KIND,
    {
        "organisation": fields.text(MAX_ORGANISATION_LEN),
        "jurisdiction": fields.country,
        "category": fields.choice(CATEGORIES),
        "unit": _label,
        "role": _label,
        "person": _label,
        "emails": fields.ordered(fields.indicator("email"), MAX_EMAILS),
        "phones": fields.ordered(fields.indicator("phone"), MAX_PHONES),
        "languages": fields.ordered(_language_check, MAX_LANGUAGES),
        "timezone": fields.pattern(
            _TIMEZONE_RE, "an IANA time zone name like 'Europe/Amsterdam'", MAX_TIMEZONE_LEN
        ),
        "hours": _label,
        "sector": _label,
        "topics": fields.sorted_set(fields.choice(TOPICS), vocabulary=TOPICS),
        "notes": fields.text(MAX_NOTES_LEN, multiline=True),
        "supersedes": fields.record_ref,
    },
    required=("organisation", "jurisdiction", "category"),
)

_CONVERTERS: Final[Mapping[str, documents.Convert]] = {
    "organisation": documents.text,
    "jurisdiction": documents.code,
    "category": documents.word,
    "unit": documents.text,
    "role": documents.text,
    "person": documents.text,
    "emails": documents.each(documents.indicator("email")),
    "phones": documents.each(documents.indicator("phone")),
    "languages": documents.each(_language),
    "timezone": documents.text,
    "hours": documents.text,
    "sector": documents.text,
    "topics": documents.set_of(documents.word),
    "notes": documents.text,
    "supersedes": documents.record_ref,
}


def parse(body_fields: Mapping[str, Value], committed: frozenset[str]) -> ContactBody:
    return ContactBody(**SCHEMA_TABLE.parse(body_fields, committed))


def from_document(document: object) -> dict[str, Value]:
    return documents.convert(SCHEMA_TABLE, _CONVERTERS, document)


def to_document(body: ContactBody) -> dict[str, object]:
    return {
        name: documents.render(value)
        for name in SCHEMA_TABLE.checks
        if (value := getattr(body, name)) is not None and value != ()
    }
