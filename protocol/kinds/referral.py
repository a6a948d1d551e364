"""The `referral` kind, schema 1: a lead sent to one member with a request for assistance.

Rule 1: lead, lead_record and request are required (redactable, never absent); due and note optional.
Rule 2: `lead` is the referred lead's record id, 64 lowercase hex digits (the form `contact_ref` uses);
`lead_record` carries that lead's signed wire bytes as the referrer disclosed them to the recipient
(whole or redacted), an independent record whose author may be anyone.
Rule 3: the schema checks only the shape of `lead_record` (bytes, 1 .. MAX_RECORD_SIZE). Nothing may
read the embedded lead before `protocol.referrals.verified_lead` has verified it in full (SPEC §3.6) and
checked that it is a lead whose id is `lead`: a schema check cannot, because it knows no network id.
Rule 4: a referral is always sealed to its one recipient (SPEC §5.2); the schema does not check the
scope, `protocol.referrals.check_referral_scope` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Final

from protocol.codec import Value
from protocol.frozen import quick_init
from protocol.kinds import documents, fields
from protocol.kinds.fields import FieldError, wrong_type

KIND: Final = "referral"
SCHEMA: Final = 1

REQUESTS: Final = frozenset({"information", "investigation", "enforcement", "takedown"})
MAX_NOTE_LEN: Final = fields.MAX_TEXT_LEN
# The embedded lead is a whole record; the referral around it is one too, so it must fit inside.
MAX_LEAD_RECORD_BYTES: Final = 64 * 1024


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class ReferralBody:
    """A referral. None means redacted (or, for optional scalars, not given)."""

    kind: ClassVar[str] = KIND
    lead: str | None
    lead_record: bytes | None
    request: str | None
    due: int | None = None
    note: str | None = None

    def index_terms(self) -> list[tuple[str, str]]:
        # Referrals travel sealed; a relay indexes nothing of them, and a recipient indexes no plaintext.
        return []

    def search_text(self) -> str:
        return ""

    def summary_line(self) -> str:
        request = self.request or "[redacted]"
        lead = self.lead[:12] if self.lead else "[redacted]"
        due = "" if self.due is None else f", due {documents.render_time(self.due)}"
        return f"[referral: {request}] lead {lead}{due}"


def _lead_record(value: Value) -> bytes:
    if type(value) is not bytes:
        raise wrong_type("bytes (a signed record)", value)
    if not 0 < len(value) <= MAX_LEAD_RECORD_BYTES:
        raise FieldError(f"{len(value)} bytes is not a record size (1..{MAX_LEAD_RECORD_BYTES})")
    return value


SCHEMA_TABLE: Final = fields.Schema(
    KIND,
    {
        "lead": fields.record_id,
        "lead_record": _lead_record,
        "request": fields.choice(REQUESTS),
        "due": fields.time_ms,
        "note": fields.text(MAX_NOTE_LEN, multiline=True),
    },
    required=("lead", "lead_record", "request"),
)

_CONVERTERS: Final[Mapping[str, documents.Convert]] = {
    "lead": documents.word,
    "lead_record": documents.same,
    "request": documents.word,
    "due": documents.time,
    "note": documents.text,
}


def parse(body_fields: Mapping[str, Value], committed: frozenset[str]) -> ReferralBody:
    return ReferralBody(**SCHEMA_TABLE.parse(body_fields, committed))


def from_document(document: object) -> dict[str, Value]:
    return documents.convert(SCHEMA_TABLE, _CONVERTERS, document)


def to_document(body: ReferralBody) -> dict[str, object]:
    """Display form; the embedded lead is shown by its size here, and verified and shown by the reader."""
    result: dict[str, object] = {}
    for name in SCHEMA_TABLE.checks:
        value = getattr(body, name)
        if value is None:
            continue
        if name == "due":
            result[name] = documents.render_time(value)
        elif name == "lead_record":
            result[name] = f"<signed lead record, {len(value)} bytes>"
        else:
            result[name] = value
    return result
