"""The `trend` kind, schema 1: an aggregate indicator, such as complaints per month in one jurisdiction.

Rule 1: period_start, period_end, category, metric, value and unit are required (redactable, never
absent), and at least one of jurisdiction and region is committed to.
Rule 2: the period is half-open, [period_start, period_end) in Unix milliseconds, and not empty
(period_end > period_start when both are disclosed).
Rule 3: value and every breakdown value are an integer or a canonical decimal string, never a float.
Rule 4: category is an open vocabulary of lower-case identifiers; the contact TOPICS are the recommended
words, so that trends and contacts about "sms-spam" meet in the index.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import ClassVar, Final

from protocol.codec import Value
from protocol.errors import SchemaError
from protocol.frozen import quick_init
from protocol.kinds import documents, fields

KIND: Final = "trend"
SCHEMA: Final = 1

MAX_REGION_LEN: Final = fields.MAX_LABEL_LEN
MAX_METHOD_LEN: Final = fields.MAX_TEXT_LEN
MAX_COMMENTARY_LEN: Final = fields.MAX_TEXT_LEN
MAX_UNIT_LEN: Final = 32
MAX_BREAKDOWN_KEY_LEN: Final = fields.MAX_IDENT_LEN
MAX_BREAKDOWN: Final = fields.MAX_LIST_LEN
_IDENT_RE: Final = re.compile(r"[a-z0-9]+(?:[-_.][a-z0-9]+)*")
_UNIT_RE: Final = re.compile(r"[A-Za-z0-9%/._+-]+")


@quick_init
@dataclass(frozen=True, slots=True)
class BreakdownEntry:
    key: str
    value: int | str  # an integer or a canonical decimal string


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class TrendBody:
    """A trend indicator. None means redacted (or, for optional scalars, not given); () means none."""

    kind: ClassVar[str] = KIND
    period_start: int | None
    period_end: int | None
    category: str | None
    metric: str | None
    value: int | str | None
    unit: str | None
    jurisdiction: str | None = None
    region: str | None = None
    method: str | None = None
    breakdown: tuple[BreakdownEntry, ...] | None = ()
    commentary: str | None = None
    # The earlier version of this record that this one replaces (SPEC §5.1); 32 raw bytes.
    supersedes: bytes | None = None

    def index_terms(self) -> list[tuple[str, str]]:
        terms: list[tuple[str, str]] = []
        if self.jurisdiction is not None:
            terms.append(("jurisdiction", self.jurisdiction))
        if self.category is not None:
            terms.append(("topic", self.category))
        if self.metric is not None:
            terms.append(("metric", self.metric))
        return terms

    def search_text(self) -> str:
        parts = (self.region, self.method, self.commentary)
        return "\n".join(part for part in parts if part is not None)

    def summary_line(self) -> str:
        where = self.jurisdiction or self.region or "[redacted]"
        start = "?" if self.period_start is None else documents.render_time(self.period_start)
        end = "?" if self.period_end is None else documents.render_time(self.period_end, end=True)
        what = " ".join(part or "[redacted]" for part in (self.category, self.metric))
        amount = "[redacted]" if self.value is None else f"{self.value} {self.unit or ''}".rstrip()
        return f"[{where}] {what} {start}..{end}: {amount}"


_ident: Final = fields.pattern(_IDENT_RE, "a lower-case identifier like 'sms-spam'")
_breakdown_entry: Final = fields.record(
    BreakdownEntry, {"key": fields.text(MAX_BREAKDOWN_KEY_LEN), "value": fields.number}
)


SCHEMA_TABLE: Final = fields.Schema(
    KIND,
    {
        "period_start": fields.time_ms,
        "period_end": fields.time_ms,
        "category": _ident,
        "metric": _ident,
        "value": fields.number,
        "unit": fields.pattern(_UNIT_RE, "a unit like 'count' or 'EUR'", MAX_UNIT_LEN),
        "jurisdiction": fields.country,
        "region": fields.text(MAX_REGION_LEN),
        "method": fields.text(MAX_METHOD_LEN, multiline=True),
        "breakdown": fields.ordered(_breakdown_entry, MAX_BREAKDOWN, key=attrgetter("key")),
        "commentary": fields.text(MAX_COMMENTARY_LEN, multiline=True),
        "supersedes": fields.record_ref,
    },
    required=("period_start", "period_end", "category", "metric", "value", "unit"),
)

_CONVERTERS: Final[Mapping[str, documents.Convert]] = {
    "period_start": documents.time,
    "period_end": documents.period_end,
    "category": documents.word,
    "metric": documents.word,
    "value": documents.decimal,
    "unit": documents.text,
    "jurisdiction": documents.code,
    "region": documents.text,
    "method": documents.text,
    "breakdown": documents.each(documents.table({"key": documents.text, "value": documents.decimal})),
    "commentary": documents.text,
    "supersedes": documents.record_ref,
}


def parse(body_fields: Mapping[str, Value], committed: frozenset[str]) -> TrendBody:
    body = TrendBody(**SCHEMA_TABLE.parse(body_fields, committed))
    if "jurisdiction" not in committed and "region" not in committed:
        raise SchemaError("trend: give a jurisdiction or a region (or both)")
    start, end = body.period_start, body.period_end
    if start is not None and end is not None and end <= start:
        shown = documents.render_time(end), documents.render_time(start)
        raise SchemaError(f"trend.period_end: {shown[0]} is not after period_start {shown[1]}")
    return body


def from_document(document: object) -> dict[str, Value]:
    return documents.convert(SCHEMA_TABLE, _CONVERTERS, document)


def to_document(body: TrendBody) -> dict[str, object]:
    result: dict[str, object] = {}
    for name in SCHEMA_TABLE.checks:
        value = getattr(body, name)
        if value is None or value == ():
            continue
        if name == "period_start":
            result[name] = documents.render_time(value)
        elif name == "period_end":
            result[name] = documents.render_time(value, end=True)
        else:
            result[name] = documents.render(value)
    return result
