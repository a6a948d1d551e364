"""Referrals between members (SPEC §5.2): the embedded lead, the scope a referral needs, who may answer.

Rule 1: `verified_lead` is the only way to read a referral's embedded lead. It verifies the embedded
bytes as a record received from anywhere (SPEC §3.6, the same `verify_record`), then checks that the
record is a lead and that its id is the one the referral names. A referral whose lead fails any check
is still a valid record; only its lead cannot be read.
Rule 2: a referral is sealed to exactly one named member, its recipient, who is not its author
(`referral_recipient`); a referral of any other scope is not acted on (nobody answers it).
Rule 3: a status counts only if its author is the referral's recipient and it is sealed to the
referral's author (`status_counts`); the current state is the latest counting status, by created time,
then by sequence number (`latest_status`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, TypeVar

from protocol.envelope import Record, verify_record
from protocol.errors import ProtocolError
from protocol.kinds import LeadBody, ReferralBody
from protocol.kinds import lead as lead_kind
from protocol.kinds.referral import KIND as REFERRAL_KIND
from protocol.kinds.referral_status import KIND as STATUS_KIND
from protocol.scope import SEALED_FLAG, Scope

__all__ = [
    "REFERRAL_KIND",
    "SEALED_KINDS",
    "STATUS_KIND",
    "ReferralError",
    "latest_status",
    "referral_recipient",
    "referral_tlp",
    "status_counts",
    "status_scope",
    "verified_lead",
]

_STRICTER_THAN_AMBER: Final = ("amber+strict", "red")
# Kinds that always travel sealed (Rule 2 for referrals, SPEC §5.2 for statuses).
SEALED_KINDS: Final = frozenset({REFERRAL_KIND, STATUS_KIND})

T = TypeVar("T")


class ReferralError(ProtocolError):
    """A referral or its embedded lead cannot be used; the message says why."""


def verified_lead(referral: ReferralBody, *, network: str) -> Record:
    """The referral's embedded lead, verified in full (Rule 1); ReferralError if it is not usable."""
    if referral.lead is None or referral.lead_record is None:
        raise ReferralError("the referral's lead is redacted")
    try:
        lead = verify_record(referral.lead_record, network=network)
    except ProtocolError as exc:
        raise ReferralError(f"the embedded lead does not verify: {exc}") from None
    if lead.header.kind != lead_kind.KIND:
        raise ReferralError(f"the embedded record is a {lead.header.kind!r}, not a lead")
    if lead.id.hex() != referral.lead:
        raise ReferralError("the embedded lead's id is not the one the referral names")
    if not isinstance(lead.body, LeadBody) and SEALED_FLAG not in lead.header.scope.flags:
        raise ReferralError("the embedded lead has a schema this node cannot read")
    return lead


def referral_recipient(referral: Record) -> bytes | None:
    """The one member a referral is addressed to, or None if its scope is not a referral's (Rule 2)."""
    scope = referral.header.scope
    if referral.header.kind != REFERRAL_KIND or SEALED_FLAG not in scope.flags or len(scope.members) != 1:
        return None
    recipient = scope.members[0]
    return None if recipient == referral.header.author else recipient


def status_counts(status: Record, referral: Record) -> bool:
    """Whether `status` is an answer to `referral` by its recipient, sealed back to its author (Rule 3)."""
    scope = status.header.scope
    return (
        status.header.kind == STATUS_KIND
        and status.header.author == referral_recipient(referral)
        and SEALED_FLAG in scope.flags
        and scope.members == (referral.header.author,)
    )


def latest_status(statuses: Iterable[tuple[Record, T]]) -> tuple[Record, T] | None:
    """The latest of (status record, its opened body) pairs, by created time then sequence (Rule 3)."""
    return max(statuses, key=lambda pair: (pair[0].header.created, pair[0].header.seq), default=None)


def referral_tlp(lead_tlp: str) -> str:
    """A referral's TLP: its lead's when that is stricter than amber, else amber (SPEC §5.2)."""
    return lead_tlp if lead_tlp in _STRICTER_THAN_AMBER else "amber"


def status_scope(referral: Scope, referrer: bytes) -> Scope:
    """The scope of a status answering a referral: the referral's, sealed to the referrer (SPEC §5.2)."""
    return Scope.create(
        referral.tlp,
        relay_hops=referral.relay_hops,
        members=[referrer],
        flags=[SEALED_FLAG],
        expires=referral.expires,
    )
