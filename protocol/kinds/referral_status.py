"""The `referral-status` kind, schema 1: the recipient's answer to a referral.

Rule 1: referral (the referral's record id, 64 lowercase hex digits) and status are required.
Rule 2: status is one of received, accepted, declined, in-progress, closed. `declined` commits to a
`reason`, and only `declined` carries one; `closed` commits to an `outcome`, and only `closed` carries an
outcome, an `action` or a `penalty`. Checked when the status is disclosed (a redacted status hides which
fields it needs).
Rule 3: `penalty` is money as everywhere: integer minor units of an ISO 4217 currency, never a float.
Rule 4: only the referral's recipient's statuses count, and the latest counts (`lapnode.referrals`):
the schema checks one record, not the conversation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Final

from protocol.codec import Value
from protocol.errors import SchemaError
from protocol.frozen import quick_init
from protocol.kinds import documents, fields
from protocol.kinds.lead import Detriment

KIND: Final = "referral-status"
SCHEMA: Final = 1

RECEIVED: Final = "received"
ACCEPTED: Final = "accepted"
DECLINED: Final = "declined"
IN_PROGRESS: Final = "in-progress"
CLOSED: Final = "closed"
STATUSES: Final = frozenset({RECEIVED, ACCEPTED, DECLINED, IN_PROGRESS, CLOSED})
# A referral in one of these states is answered for good.
FINAL: Final = frozenset({DECLINED, CLOSED})
ACTIONS: Final = frozenset({"none", "warning", "fine", "takedown", "prosecution", "other"})
MAX_REASON_LEN: Final = fields.MAX_TEXT_LEN
MAX_NOTE_LEN: Final = fields.MAX_TEXT_LEN
MAX_OUTCOME_LEN: Final = fields.MAX_TEXT_LEN
_CURRENCY_RE: Final = re.compile(r"[A-Z]{3}")
# Which status each conditional field belongs to (Rule 2).
_ONLY_WITH: Final[Mapping[str, str]] = {
    "reason": DECLINED,
    "outcome": CLOSED,
    "action": CLOSED,
    "penalty": CLOSED,
}
_NEEDS: Final[Mapping[str, str]] = {DECLINED: "reason", CLOSED: "outcome"}


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class ReferralStatusBody:
    """One status of a referral. None means redacted (or, for optional scalars, not given)."""

    kind: ClassVar[str] = KIND
    referral: str | None
    status: str | None
    reason: str | None = None
    note: str | None = None
    outcome: str | None = None
    action: str | None = None
    penalty: Detriment | None = None

    def index_terms(self) -> list[tuple[str, str]]:
        return []  # sealed, like the referral it answers

    def search_text(self) -> str:
        return ""

    def summary_line(self) -> str:
        referral = self.referral[:12] if self.referral else "[redacted]"
        line = f"[{self.status or '[redacted]'}] referral {referral}"
        detail = self.reason or self.outcome or self.note
        return f"{line}: {detail}" if detail else line


_penalty: Final = fields.record(
    Detriment,
    {
        "amount": fields.integer(0, fields.MAX_INT),
        "currency": fields.pattern(_CURRENCY_RE, "an ISO 4217 currency code like 'EUR'", 3),
    },
)

SCHEMA_TABLE: Final = fields.Schema(
    KIND,
    {
        "referral": fields.record_id,
        "status": fields.choice(STATUSES),
        "reason": fields.text(MAX_REASON_LEN, multiline=True),
        "note": fields.text(MAX_NOTE_LEN, multiline=True),
        "outcome": fields.text(MAX_OUTCOME_LEN, multiline=True),
        "action": fields.choice(ACTIONS),
        "penalty": _penalty,
    },
    required=("referral", "status"),
)


def _document_penalty(value: object) -> dict[str, Value]:
    penalty = documents.table({"amount": documents.same, "currency": documents.code})(value)
    if "amount" in penalty:
        try:
            penalty["amount"] = documents.amount(penalty["amount"], str(penalty.get("currency")))
        except fields.FieldError as exc:
            raise exc.under(".amount") from None
    return penalty


_CONVERTERS: Final[Mapping[str, documents.Convert]] = {
    "referral": documents.word,
    "status": documents.word,
    "reason": documents.text,
    "note": documents.text,
    "outcome": documents.text,
    "action": documents.word,
    "penalty": _document_penalty,
}


def parse(body_fields: Mapping[str, Value], committed: frozenset[str]) -> ReferralStatusBody:
    body = ReferralStatusBody(**SCHEMA_TABLE.parse(body_fields, committed))
    status = body.status
    if status is None:
        return body
    for name, owner in _ONLY_WITH.items():
        if name in committed and status != owner:
            raise SchemaError(f"{KIND}.{name}: only a {owner!r} status carries one (this one is {status!r})")
    needed = _NEEDS.get(status)
    if needed is not None and needed not in committed:
        raise SchemaError(f"{KIND}: a {status!r} status needs a {needed}")
    return body


def from_document(document: object) -> dict[str, Value]:
    return documents.convert(SCHEMA_TABLE, _CONVERTERS, document)


def to_document(body: ReferralStatusBody) -> dict[str, object]:
    result: dict[str, object] = {}
    for name in SCHEMA_TABLE.checks:
        value = getattr(body, name)
        if value is None:
            continue
        if isinstance(value, Detriment):
            result[name] = {
                "amount": documents.render_amount(value.amount, value.currency),
                "currency": value.currency,
            }
        else:
            result[name] = value
    return result
