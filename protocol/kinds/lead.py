"""The `lead` kind, schema 1: a case lead or cross-border referral.

Modelled on the LAP spam referral pro forma and the EU CPC alert form.
Rule 1: title, summary and status are required (they may be redacted, never absent).
Rule 2: subject values are stored in canonical form: machine indicators as protocol.indicators normalises
them, names and payment accounts as written but trimmed, with blanks collapsed and in NFC (the store
indexes their case-folded form; the record keeps what an investigator wrote).
Rule 3: violation_types, victim_locations and requested_assistance are sets, stored sorted; subjects,
evidence keep the author's order and have no duplicates.
Rule 4: last_seen >= first_seen when both are disclosed; "none" is the only requested assistance if given.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import ClassVar, Final

from protocol import indicators
from protocol.codec import Value
from protocol.errors import SchemaError
from protocol.frozen import quick_init
from protocol.indicators import normalise, show, url_host
from protocol.kinds import documents, fields
from protocol.kinds.codes import COUNTRY_CODES
from protocol.kinds.fields import FieldError

KIND: Final = "lead"
SCHEMA: Final = 1

STATUSES: Final = frozenset({"verified", "suspected"})
VIOLATION_TYPES: Final = frozenset(
    {
        "unsolicited-email",
        "unsolicited-sms",
        "telemarketing",
        "do-not-call",
        "phishing",
        "malware",
        "fraud",
        "spoofing",
        "identity-theft",
        "other",
    }
)
ASSISTANCE: Final = frozenset({"information", "investigation", "enforcement", "takedown", "none"})
# Subject type -> index term type (protocol.indicators.TERM_TYPES).
SUBJECT_TYPES: Final[Mapping[str, str]] = {
    "name": "name",
    "domain": "domain",
    "url": "url",
    "email": "email",
    "ip": "ip",
    "asn": "asn",
    "phone": "phone",
    "payment-account": "payment",
    "message-hash": "hash",
}
_FREE_FORM_SUBJECTS: Final = frozenset({"name", "payment-account"})
MAX_TITLE_LEN: Final = fields.MAX_LABEL_LEN
MAX_SUMMARY_LEN: Final = fields.MAX_TEXT_LEN
MAX_LEGAL_BASIS_LEN: Final = fields.MAX_TEXT_LEN
MAX_EVIDENCE_DESCRIPTION_LEN: Final = fields.MAX_LABEL_LEN
MAX_SUBJECTS: Final = 1000
MAX_EVIDENCE: Final = fields.MAX_LIST_LEN
MAX_COUNT: Final = fields.MAX_INT
_CURRENCY_RE: Final = re.compile(r"[A-Z]{3}")
MAX_DIGEST_LEN: Final = len("blake2b:") + 128
_DIGEST_RE: Final = re.compile(r"sha256:[0-9a-f]{64}|blake2b:(?:[0-9a-f]{2}){16,64}")


@quick_init
@dataclass(frozen=True, slots=True)
class Subject:
    type: str
    value: str


@quick_init
@dataclass(frozen=True, slots=True)
class Detriment:
    amount: int  # minor units of `currency`
    currency: str


@quick_init
@dataclass(frozen=True, slots=True)
class Evidence:
    digest: str
    description: str


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class LeadBody:
    """A case lead. None means redacted (or, for optional scalars, not given); () means none."""

    kind: ClassVar[str] = KIND
    title: str | None
    summary: str | None
    status: str | None
    violation_types: tuple[str, ...] | None = ()
    legal_basis: str | None = None
    subjects: tuple[Subject, ...] | None = ()
    first_seen: int | None = None
    last_seen: int | None = None
    estimated_victims: int | None = None
    detriment: Detriment | None = None
    victim_locations: tuple[str, ...] | None = ()
    evidence: tuple[Evidence, ...] | None = ()
    requested_assistance: tuple[str, ...] | None = ()
    contact_ref: str | None = None
    # The earlier version of this record that this one replaces (SPEC §5.1); 32 raw bytes.
    supersedes: bytes | None = None

    def index_terms(self) -> list[tuple[str, str]]:
        terms: list[tuple[str, str]] = []
        for subject in self.subjects or ():
            term_type = SUBJECT_TYPES[subject.type]
            if subject.type in _FREE_FORM_SUBJECTS:
                terms.append((term_type, normalise(term_type, subject.value)))
                continue
            terms.append((term_type, subject.value))
            # A lookup for a domain should find the URLs and mailboxes on it too.
            if term_type == "url":
                terms.append(url_host(subject.value))
            elif term_type == "email":
                terms.append(("domain", subject.value.rpartition("@")[2]))
        terms += [("violation", violation) for violation in self.violation_types or ()]
        terms += [("jurisdiction", code) for code in self.victim_locations or ()]
        terms += [("hash", item.digest) for item in self.evidence or ()]
        if self.contact_ref is not None:
            terms.append(("record", self.contact_ref))
        return list(dict.fromkeys(terms))

    def search_text(self) -> str:
        parts = [self.title, self.summary, self.legal_basis]
        parts += [item.description for item in self.evidence or ()]
        return "\n".join(part for part in parts if part is not None)

    def summary_line(self) -> str:
        status = self.status or "[redacted]"
        line = f"[{status}] {self.title or '[redacted]'}"
        if self.subjects:
            line += f" - {len(self.subjects)} subject{'s' if len(self.subjects) > 1 else ''}"
        if self.victim_locations:
            line += f", victims in {', '.join(self.victim_locations)}"
        return line


def _subject_value(subject_type: str, value: str) -> str:
    """The canonical wire form of a subject value (Rule 2)."""
    if subject_type in _FREE_FORM_SUBJECTS:
        collapsed = unicodedata.normalize("NFC", " ".join(value.split()))
        _subject_label(collapsed)
        fields.canonical_indicator(SUBJECT_TYPES[subject_type], collapsed)  # so index_terms cannot fail
        return collapsed
    return fields.canonical_indicator(SUBJECT_TYPES[subject_type], value)


_subject_label: Final = fields.text(fields.MAX_LABEL_LEN)
_subject_type: Final = fields.choice(frozenset(SUBJECT_TYPES))
_SUBJECT_KEYS: Final = frozenset({"type", "value"})


def _is_canonical_free_form(text: str) -> bool:
    try:
        _subject_label(text)
    except FieldError:
        return False
    return " ".join(text.split()) == text


_CANONICAL: Final[Mapping[str, Callable[[str], bool]]] = {
    subject_type: (
        _is_canonical_free_form
        if subject_type in _FREE_FORM_SUBJECTS
        else indicators.canonical_check(term_type)
    )
    for subject_type, term_type in SUBJECT_TYPES.items()
}


def _subjects(value: Value) -> tuple[Subject, ...]:
    """The subjects list, with a short path for canonical lists (a lead may carry MAX_SUBJECTS).

    Anything the short path does not accept goes to the general checks, which find and name the problem.
    """
    if type(value) is list and 0 < len(value) <= MAX_SUBJECTS:
        subjects = []
        seen = set()
        for item in value:
            if type(item) is not dict or len(item) != 2:
                break
            subject_type, text = item.get("type"), item.get("value")
            if type(subject_type) is not str or type(text) is not str:
                break
            canonical = _CANONICAL.get(subject_type)
            if canonical is None or not canonical(text):
                break
            subjects.append(Subject(subject_type, text))
            seen.add((subject_type, text))
        else:
            if len(seen) == len(subjects):
                return tuple(subjects)
    return _explain_subjects(value)


def _subject(value: Value) -> Subject:
    members = fields.exact_map(value, _SUBJECT_KEYS)
    try:
        subject_type = _subject_type(members["type"])
    except FieldError as exc:
        raise exc.under(".type") from None
    text = members["value"]
    if type(text) is not str:
        raise fields.wrong_type("text", text).under(".value")
    try:
        canonical = _subject_value(subject_type, text)
    except FieldError as exc:
        raise exc.under(".value") from None
    if canonical != text:
        raise FieldError(f"{show(text)} is not in canonical form (that is {show(canonical)})", ".value")
    return Subject(subject_type, text)


_explain_subjects: Final = fields.ordered(_subject, MAX_SUBJECTS, key=attrgetter("type", "value"))


def _assistance(value: Value) -> tuple[str, ...]:
    requested = _assistance_set(value)
    if "none" in requested and len(requested) > 1:
        raise FieldError("'none' cannot be combined with other requests")
    return requested


_detriment: Final = fields.record(
    Detriment,
    {
        "amount": fields.integer(0, MAX_COUNT),
        "currency": fields.pattern(_CURRENCY_RE, "an ISO 4217 currency code like 'EUR'", 3),
    },
)
_digest: Final = fields.pattern(_DIGEST_RE, "'sha256:' or 'blake2b:' and the hex digest", MAX_DIGEST_LEN)
_evidence: Final = fields.record(
    Evidence, {"digest": _digest, "description": fields.text(MAX_EVIDENCE_DESCRIPTION_LEN)}
)
_assistance_set: Final = fields.sorted_set(fields.choice(ASSISTANCE), vocabulary=ASSISTANCE)

SCHEMA_TABLE: Final = fields.Schema(
    KIND,
    {
        "title": fields.text(MAX_TITLE_LEN),
        "summary": fields.text(MAX_SUMMARY_LEN, multiline=True),
        "status": fields.choice(STATUSES),
        "violation_types": fields.sorted_set(fields.choice(VIOLATION_TYPES), vocabulary=VIOLATION_TYPES),
        "legal_basis": fields.text(MAX_LEGAL_BASIS_LEN, multiline=True),
        "subjects": _subjects,
        "first_seen": fields.time_ms,
        "last_seen": fields.time_ms,
        "estimated_victims": fields.integer(0, MAX_COUNT),
        "detriment": _detriment,
        "victim_locations": fields.sorted_set(fields.country, vocabulary=COUNTRY_CODES),
        "evidence": fields.ordered(_evidence, MAX_EVIDENCE, key=attrgetter("digest")),
        "requested_assistance": _assistance,
        "contact_ref": fields.record_id,
        "supersedes": fields.record_ref,
    },
    required=("title", "summary", "status"),
)


def _document_subject(value: object) -> dict[str, Value]:
    subject = documents.table({"type": documents.word, "value": documents.same})(value)
    subject_type, text = subject.get("type"), subject.get("value")
    if subject_type in SUBJECT_TYPES and isinstance(text, str):
        try:
            subject["value"] = _subject_value(str(subject_type), text)
        except FieldError as exc:
            raise exc.under(".value") from None
    return subject


def _document_detriment(value: object) -> dict[str, Value]:
    detriment = documents.table({"amount": documents.same, "currency": documents.code})(value)
    if "amount" in detriment:
        try:
            detriment["amount"] = documents.amount(detriment["amount"], str(detriment.get("currency")))
        except FieldError as exc:
            raise exc.under(".amount") from None
    return detriment


_CONVERTERS: Final[Mapping[str, documents.Convert]] = {
    "title": documents.text,
    "summary": documents.text,
    "status": documents.word,
    "violation_types": documents.set_of(documents.word),
    "legal_basis": documents.text,
    "subjects": documents.each(_document_subject),
    "first_seen": documents.time,
    "last_seen": documents.time,
    "estimated_victims": documents.same,
    "detriment": _document_detriment,
    "victim_locations": documents.set_of(documents.code),
    "evidence": documents.each(
        documents.table({"digest": documents.indicator("hash"), "description": documents.text})
    ),
    "requested_assistance": documents.set_of(documents.word),
    "contact_ref": documents.word,
    "supersedes": documents.record_ref,
}


def parse(body_fields: Mapping[str, Value], committed: frozenset[str]) -> LeadBody:
    body = LeadBody(**SCHEMA_TABLE.parse(body_fields, committed))
    if body.first_seen is not None and body.last_seen is not None and body.last_seen < body.first_seen:
        last, first = documents.render_time(body.last_seen), documents.render_time(body.first_seen)
        raise SchemaError(f"lead.last_seen: {last} is before first_seen {first}")
    return body


def from_document(document: object) -> dict[str, Value]:
    return documents.convert(SCHEMA_TABLE, _CONVERTERS, document)


def to_document(body: LeadBody) -> dict[str, object]:
    result: dict[str, object] = {}
    for name in SCHEMA_TABLE.checks:
        value = getattr(body, name)
        if value is None or value == ():
            continue
        if name in ("first_seen", "last_seen"):
            result[name] = documents.render_time(value)
        elif isinstance(value, Detriment):
            result[name] = {
                "amount": documents.render_amount(value.amount, value.currency),
                "currency": value.currency,
            }
        else:
            result[name] = documents.render(value)
    return result
