"""The author's signed scope, applied to one recipient (protocol/SPEC.md §4; docs/policy.md).

Rule 1: the decision is a pure function of the verified record, the recipient's pinned attributes,
the hop count and the local clock. It reads the scope only from the verified header.
Rule 2: it fails closed: an attribute the operator never pinned matches no audience clause.
Rule 3: a decision carries every reason, so an operator can see why a record was withheld.
Rule 4: a sealed record (scope flag `sealed`, SPEC §3.7) travels as ciphertext that only its named
members and author can open, so the rules that keep content from non-members (red and amber+strict never
relayed, red only to named members, the audience clauses) do not apply to carrying it; expiry, embargo,
relay_hops and the jurisdiction deny list still do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, Protocol

from protocol.scope import SEALED_FLAG, Scope

# Records may not be released this early or held this late; a small allowance for clock skew between
# nodes (DESIGN-NOTES 6) is applied only in the record's favour of being withheld.
CLOCK_SKEW_MS: Final = 60_000
LAW_ENFORCEMENT: Final = frozenset({"enforcement", "government"})
_NEVER_RELAYED: Final = frozenset({"amber+strict", "red"})


class Disclosable(Protocol):
    """What the decision reads of a record: its author and its signed scope (a verified Header has
    both; so does a store LogEntry, copied from the verified header)."""

    @property
    def author(self) -> bytes: ...

    @property
    def kind(self) -> str: ...

    @property
    def scope(self) -> Scope: ...


@dataclass(frozen=True, slots=True)
class Recipient:
    """What this node knows about a recipient: pinned by the operator, never claimed by the peer."""

    key: bytes
    org: str | None = None
    category: str | None = None
    jurisdiction: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    action: Literal["send", "withhold"]
    reasons: tuple[str, ...]

    @property
    def send(self) -> bool:
        return self.action == "send"


def decide(header: Disclosable, recipient: Recipient, *, now_ms: int, our_key: bytes, hops: int) -> Decision:
    """Whether the record with this (verified) header may go from this node to `recipient`.

    `hops` is how many relays the record passed before it reached us (0 if we are its author or got
    it from the author). Sending it onward makes it hops + 1 relays, unless we are the author.
    """
    scope = header.scope
    reasons: list[str] = []
    named = recipient.key in scope.members
    sealed = SEALED_FLAG in scope.flags
    if recipient.key == header.author:
        reasons.append("recipient is the author")
    if scope.expires is not None and now_ms >= scope.expires - CLOCK_SKEW_MS:
        reasons.append("scope.expires: the record has expired")
    if scope.embargo_until is not None and now_ms < scope.embargo_until + CLOCK_SKEW_MS:
        reasons.append("scope.embargo_until: under embargo")
    if header.author != our_key:
        if scope.tlp in _NEVER_RELAYED and not sealed:
            reasons.append(f"tlp {scope.tlp}: never relayed")
        if hops + 1 > scope.relay_hops:
            reasons.append(f"scope.relay_hops: limit {scope.relay_hops} reached")
    if scope.tlp == "red" and not named and not sealed:
        reasons.append("tlp red: recipient is not a named member")
    if not named:
        reasons.extend(
            _carrier_reasons(header, recipient) if sealed else _audience_reasons(header, recipient)
        )
    if reasons:
        return Decision("withhold", tuple(reasons))
    if named:
        return Decision("send", ("named member",))
    return Decision("send", ("sealed: carried as ciphertext",) if sealed else ("within the author's scope",))


def _carrier_reasons(header: Disclosable, recipient: Recipient) -> list[str]:
    """A non-member may carry a sealed record (Rule 4), except where the author said it may never go."""
    deny = header.scope.jurisdictions_deny
    if deny and (recipient.jurisdiction is None or recipient.jurisdiction in deny):
        return ["scope.jurisdictions_deny: recipient's jurisdiction is excluded or unknown"]
    return []


def _audience_reasons(header: Disclosable, recipient: Recipient) -> list[str]:
    scope = header.scope
    reasons = []
    if scope.members and not scope.categories:
        reasons.append("scope.members: recipient is not named")
    if scope.categories and recipient.category not in scope.categories:
        reasons.append("scope.categories: recipient's category is not in the audience")
    if "law-enforcement-only" in scope.flags and recipient.category not in LAW_ENFORCEMENT:
        reasons.append("flag law-enforcement-only: recipient is not enforcement or government")
    if scope.jurisdictions_allow and recipient.jurisdiction not in scope.jurisdictions_allow:
        reasons.append("scope.jurisdictions_allow: recipient's jurisdiction is not allowed")
    if scope.jurisdictions_deny and (
        recipient.jurisdiction is None or recipient.jurisdiction in scope.jurisdictions_deny
    ):
        reasons.append("scope.jurisdictions_deny: recipient's jurisdiction is excluded or unknown")
    return reasons
