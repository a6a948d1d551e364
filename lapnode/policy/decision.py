"""The one disclosure decision, and its inbound twin (protocol/SPEC.md §4, §6.5; docs/policy.md).

Rule 1: both are pure functions of the verified header, the peer's pinned attributes, the hop count,
the local clock and the compiled local rules. They read the scope only from the signed header.
Rule 2: they fail closed: an attribute the operator never pinned matches no audience clause, and a
local rule on it applies its restriction.
Rule 3: the author's scope is checked first and in full; local rules can only add reasons to withhold
or redact, never remove one. The most restrictive outcome wins: withhold > redact > send, and the
redactions of every matching rule are united.
Rule 4: a decision carries every reason (scope clauses and rule names), so an operator can see why.
Rule 5: they are on the hot path of every feed (>= 100,000 decisions/s, `python -m bench policy`):
nothing here parses, formats on the common path, or allocates more than the reasons it returns.
Rule 6: a sealed record (scope flag `sealed`, SPEC §3.7) travels as ciphertext that only its named
members and author can open, so the rules that keep content from non-members (red and amber+strict never
relayed, red only to named members) do not apply to carrying it; every other clause still does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from lapnode.policy.rules import CompiledRule, Disclosable, Policy, Recipient
from protocol.scope import SEALED_FLAG

# Records may not be released this early or held this late; a small allowance for clock skew between
# nodes (DESIGN-NOTES 6) is applied only in the record's favour of being withheld (outbound), and only
# in the sender's favour when judging what a peer sent us (inbound).
CLOCK_SKEW_MS: Final = 60_000
LAW_ENFORCEMENT: Final = frozenset({"enforcement", "government"})
SEALED: Final = SEALED_FLAG
_NEVER_RELAYED: Final = frozenset({"amber+strict", "red"})
_NO_FIELDS: Final[frozenset[str]] = frozenset()

# Where a record is going: a peer over gossip (or a `--as` view of what it would get), a bundle file
# made for a known peer, or a public export readable by anyone.
Via = Literal["gossip", "bundle", "public"]
# The recipient of a public export: no key, and no attribute that could match an audience clause.
PUBLIC: Final = Recipient(b"")


@dataclass(frozen=True, slots=True)
class Decision:
    """send: the whole record; redact: the record without `fields`; withhold: nothing."""

    action: Literal["send", "withhold", "redact"]
    reasons: tuple[str, ...]
    fields: frozenset[str] = _NO_FIELDS

    @property
    def send(self) -> bool:
        """True only when the whole record may go: a caller that knows nothing of redaction fails closed."""
        return self.action == "send"

    @property
    def withheld(self) -> bool:
        return self.action == "withhold"


@dataclass(frozen=True, slots=True)
class InboundDecision:
    """accept: store it; quarantine: store it aside until an operator acts; reject: drop it.

    `misbehaved` says the sender broke the author's scope by sending it (a penalty is due), as opposed
    to a local rule refusing something the sender was entitled to send.
    """

    action: Literal["accept", "quarantine", "reject"]
    reasons: tuple[str, ...]
    misbehaved: bool = False


def decide(
    header: Disclosable,
    recipient: Recipient,
    *,
    now_ms: int,
    our_key: bytes,
    hops: int,
    policy: Policy,
    via: Via,
) -> Decision:
    """Whether the record with this (verified) header may go from this node to `recipient`, and how.

    `hops` is how many relays the record passed before it reached us (0 if we are its author or got
    it from the author). Sending it onward makes it hops + 1 relays, unless we are the author.
    """
    scope = header.scope
    tlp = scope.tlp
    sealed = SEALED in scope.flags
    named = recipient.key in scope.members
    withhold: list[str] = []
    if recipient.key == header.author:
        withhold.append("recipient is the author")
    if scope.expires is not None and now_ms >= scope.expires - CLOCK_SKEW_MS:
        withhold.append("scope.expires: the record has expired")
    if scope.embargo_until is not None and now_ms < scope.embargo_until + CLOCK_SKEW_MS:
        withhold.append("scope.embargo_until: under embargo")
    if via != "gossip":
        withhold.extend(_export_reasons(tlp, sealed, via))
    if header.author != our_key:
        # A sealed record's body is ciphertext for its named members, so relays may carry it (SPEC §4).
        if tlp in _NEVER_RELAYED and not sealed:
            withhold.append(f"tlp {tlp}: never relayed")
        if hops + 1 > scope.relay_hops:
            withhold.append(f"scope.relay_hops: limit {scope.relay_hops} reached")
    if not named:
        if tlp == "red" and not sealed:
            withhold.append("tlp red: recipient is not a named member")
        _audience_reasons(header, recipient, sealed, withhold)
    if not policy.outbound:
        if withhold:
            return Decision("withhold", tuple(withhold))
        return Decision("send", _NAMED if named else _IN_SCOPE)
    return _apply_rules(header, recipient, named, sealed, our_key, policy.outbound, withhold)


_NAMED: Final = ("named member",)
_IN_SCOPE: Final = ("within the author's scope",)


def _export_reasons(tlp: str, sealed: bool, via: Via) -> list[str]:
    if via == "public":
        reasons = [] if tlp == "clear" else [f"tlp {tlp}: never to a public export"]
        return [*reasons, "sealed: never to a public export"] if sealed else reasons
    # A bundle is a file: it can be copied on, so what may never be relayed may never be exported.
    return [f"tlp {tlp}: never exported"] if tlp in _NEVER_RELAYED and not sealed else []


def _audience_reasons(header: Disclosable, who: Recipient, sealed: bool, reasons: list[str]) -> None:
    """The audience clauses `who` fails, for someone who is not a named member."""
    scope = header.scope
    # Named members are the only readers of a sealed record; anyone else may only carry it.
    if scope.members and not scope.categories and not sealed:
        reasons.append("scope.members: recipient is not named")
    if scope.categories and who.category not in scope.categories:
        reasons.append("scope.categories: recipient's category is not in the audience")
    if "law-enforcement-only" in scope.flags and who.category not in LAW_ENFORCEMENT:
        reasons.append("flag law-enforcement-only: recipient is not enforcement or government")
    if scope.jurisdictions_allow and who.jurisdiction not in scope.jurisdictions_allow:
        reasons.append("scope.jurisdictions_allow: recipient's jurisdiction is not allowed")
    if scope.jurisdictions_deny and (
        who.jurisdiction is None or who.jurisdiction in scope.jurisdictions_deny
    ):
        reasons.append("scope.jurisdictions_deny: recipient's jurisdiction is excluded or unknown")


def _matches(rule: CompiledRule, header: Disclosable, peer: Recipient, named: bool, our_key: bytes) -> bool:
    for test in rule.record_tests:
        if not test(header, our_key):
            return False
    return all(test(peer, named) for test in rule.peer_tests) if rule.peer_tests else True


def _apply_rules(
    header: Disclosable,
    recipient: Recipient,
    named: bool,
    sealed: bool,
    our_key: bytes,
    rules: tuple[CompiledRule, ...],
    withhold: list[str],
) -> Decision:
    """Add the local rules' reasons to the scope's (Rule 3) and pick the most restrictive outcome."""
    redactions: list[str] = []
    passed: list[str] = []
    fields = _NO_FIELDS
    for rule in rules:
        for test in rule.record_tests:
            if not test(header, our_key):
                break
        else:
            matched = True
            for peer_test in rule.peer_tests:
                if not peer_test(recipient, named):
                    matched = False
                    break
            action = rule.rule.action
            if action == "allow-only":
                if matched:
                    passed.append(rule.passed)
                else:
                    withhold.append(rule.reason_for(recipient))
            elif not matched:
                continue
            elif action == "deny":
                withhold.append(rule.reason_for(recipient))
            else:
                names = rule.fields(header.kind)
                if names is None:
                    withhold.append(
                        f"{rule.reason}; a {header.kind} has no known personal fields, so withheld"
                    )
                elif sealed:
                    withhold.append(f"{rule.reason}; a sealed record cannot be redacted, so withheld")
                elif names:
                    redactions.append(rule.reason_for(recipient))
                    fields = fields | names
                else:
                    passed.append(f"{rule.reason}; nothing of a {header.kind} to redact")
    if withhold:
        return Decision("withhold", (*withhold, *redactions))
    base = _NAMED if named else _IN_SCOPE
    if fields:
        return Decision("redact", (*base, *redactions, *passed), fields)
    return Decision("send", (*base, *passed) if passed else base)


def decide_inbound(
    header: Disclosable,
    sender: Recipient,
    *,
    now_ms: int,
    us: Recipient,
    hops: int,
    policy: Policy,
) -> InboundDecision:
    """Whether to store a verified record that `sender` just gave us, set it aside, or drop it.

    Reject: the author's scope shows it should never have reached us from this peer (a relay of
    something never relayed, past the hop limit, to a node outside the audience, under embargo or after
    expiry), or a local `reject` rule matches. Quarantine: a local `quarantine` rule matches. `us` is
    this node's own key and configured attributes; `hops` the relay count the sender stated.
    """
    scope = header.scope
    tlp = scope.tlp
    sealed = SEALED in scope.flags
    from_author = sender.key == header.author
    # Whoever is not the author is at least one relay, whatever count it claims.
    relays = hops if from_author else max(hops, 1)
    reject: list[str] = []
    if not from_author and tlp in _NEVER_RELAYED and not sealed:
        reject.append(f"tlp {tlp}: relayed by a node that is not its author")
    if relays > scope.relay_hops:
        reject.append(f"scope.relay_hops: arrived after {relays} relays, over the limit {scope.relay_hops}")
    if us.key not in scope.members:
        if tlp == "red" and not sealed:
            reject.append("tlp red: recipient is not a named member")
        _audience_reasons(header, us, sealed, reject)
    if scope.embargo_until is not None and now_ms < scope.embargo_until - CLOCK_SKEW_MS:
        reject.append("scope.embargo_until: sent under embargo")
    if scope.expires is not None and now_ms >= scope.expires + CLOCK_SKEW_MS:
        reject.append("scope.expires: sent after it expired")
    # Reasons so far are the author's scope: the sender should have known better.
    from_rules = not reject
    quarantine: list[str] = []
    if policy.inbound:
        named = sender.key in scope.members
        for rule in policy.inbound:
            if _matches(rule, header, sender, named, us.key):
                (reject if rule.rule.action == "reject" else quarantine).append(rule.reason_for(sender))
    if reject:
        return InboundDecision("reject", (*reject, *quarantine), misbehaved=not from_rules)
    if quarantine:
        return InboundDecision("quarantine", tuple(quarantine))
    return InboundDecision("accept", _IN_SCOPE)
