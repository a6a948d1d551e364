"""The operator's local rules (policy.toml), validated, and compiled once for the decision function.

Rule 1: a `Policy` is always valid: only `lapnode.policy.loader` builds one from a file, after checking
every key, and `Policy.compile` cannot fail. Deciding never parses, formats or looks anything up by name:
every set is resolved, every node id decoded and every reason string written at load time.
Rule 2: a rule restricts; no action widens what the author's scope allows. Outbound actions are `deny`
(withhold from matching recipients), `allow-only` (withhold from recipients that do not match) and
`redact` (withhold fields); inbound ones are `quarantine` and `reject`.
Rule 3: conditions within a rule all have to hold; the values listed in one condition are
alternatives. A condition on a peer attribute the operator never pinned (category, jurisdiction)
resolves in the restrictive direction: the restriction applies (fail closed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal, Protocol

from lapnode.policy.fields import KIND_FIELDS, PERSONAL_FIELDS
from lapnode.policy.jurisdictions import JurisdictionSet
from protocol.scope import Scope

Action = Literal["deny", "allow-only", "redact", "quarantine", "reject"]
OUTBOUND_ACTIONS: Final = ("deny", "allow-only", "redact")
INBOUND_ACTIONS: Final = ("quarantine", "reject")
RECORD_SUBJECTS: Final = ("kind", "tlp", "flags", "author")
PEER_SUBJECTS: Final = ("category", "jurisdiction", "node")
SELF: Final = "self"


class Disclosable(Protocol):
    """What a decision reads of a record: its author and its signed scope (a verified Header has both;
    so does a store LogEntry, copied from the verified header, and an unsigned dry-run Draft)."""

    @property
    def author(self) -> bytes: ...

    @property
    def kind(self) -> str: ...

    @property
    def scope(self) -> Scope: ...


@dataclass(frozen=True, slots=True)
class Recipient:
    """A peer as this node knows it: pinned by the operator, never claimed by the peer (DESIGN-NOTES 5)."""

    key: bytes
    org: str | None = None
    category: str | None = None
    jurisdiction: str | None = None


@dataclass(frozen=True, slots=True)
class Condition:
    """One clause of a rule, as written and as resolved.

    `subject` is a record attribute (kind, tlp, flags, author) or a peer attribute (category,
    jurisdiction, node, named). `written` keeps the operator's words (set names, node ids, "self") for
    explanations; `codes` and `keys` hold what they resolve to.
    """

    subject: str
    written: tuple[str, ...]
    negated: bool = False
    codes: frozenset[str] = frozenset()
    keys: frozenset[bytes] = frozenset()
    includes_self: bool = False

    def describe(self) -> str:
        listed = "[" + ", ".join(self.written) + "]"
        if self.subject == "named":
            return "not a named member" if self.negated else "named member"
        if self.subject == "flags":
            return f"flags include none of {listed}" if self.negated else f"flags include {listed}"
        return f"{self.subject} {'not in' if self.negated else 'in'} {listed}"


@dataclass(frozen=True, slots=True)
class Rule:
    """One validated rule. `record` says which records it is about, `peer` which recipients (outbound)
    or senders (inbound). `redact` lists explicit field names; `redact_personal` adds the kind's
    personal fields (lapnode.policy.fields)."""

    name: str
    action: Action
    record: tuple[Condition, ...] = ()
    peer: tuple[Condition, ...] = ()
    redact: frozenset[str] = frozenset()
    redact_personal: bool = False
    note: str | None = None

    @property
    def outbound(self) -> bool:
        return self.action in OUTBOUND_ACTIONS

    def redacted_fields(self, kind: str) -> frozenset[str] | None:
        """The fields this rule withholds from a record of `kind`; None if they cannot be known."""
        if not self.redact_personal:
            return self.redact
        personal = PERSONAL_FIELDS.get(kind)
        return None if personal is None else self.redact | personal

    def describe(self) -> str:
        """The rule in one line: used verbatim in every reason it gives."""
        what: str = self.action
        if self.action == "redact":
            listed = sorted(self.redact) + (["the personal fields"] if self.redact_personal else [])
            what = f"redact {', '.join(listed)}"
        records = "; ".join(c.describe() for c in self.record) or "every record"
        if not self.peer:
            return f"rule {self.name} ({what}): {records}"
        who = "recipient" if self.outbound else "sender"
        must = " must match" if self.action == "allow-only" else ""
        return f"rule {self.name} ({what}): {records}; {who}{must}: {self.describe_peer()}"

    def describe_peer(self) -> str:
        return " and ".join(c.describe() for c in self.peer)


RecordTest = Callable[[Disclosable, bytes], bool]
PeerTest = Callable[[Recipient, bool], bool]


def _record_test(condition: Condition) -> RecordTest:
    negated, codes = condition.negated, condition.codes
    if condition.subject == "kind":
        return lambda header, _ours: (header.kind in codes) is not negated
    if condition.subject == "tlp":
        return lambda header, _ours: (header.scope.tlp in codes) is not negated
    if condition.subject == "flags":
        return lambda header, _ours: codes.isdisjoint(header.scope.flags) is negated
    assert condition.subject == "author", condition.subject
    keys, includes_self = condition.keys, condition.includes_self

    def author(header: Disclosable, ours: bytes) -> bool:
        key = header.author
        return (key in keys or (includes_self and key == ours)) is not negated

    return author


def _peer_test(condition: Condition, unknown: bool) -> PeerTest:
    """`unknown` is what a condition on an attribute the operator never pinned evaluates to (Rule 3)."""
    negated, codes = condition.negated, condition.codes
    if condition.subject == "category":
        return lambda peer, _named: (
            unknown if peer.category is None else (peer.category in codes) is not negated
        )
    if condition.subject == "jurisdiction":

        def jurisdiction(peer: Recipient, _named: bool) -> bool:
            code = peer.jurisdiction
            return unknown if code is None else (code in codes) is not negated

        return jurisdiction
    if condition.subject == "node":
        keys = condition.keys
        return lambda peer, _named: (peer.key in keys) is not negated
    assert condition.subject == "named", condition.subject
    return lambda _peer, named: named is not negated


@dataclass(frozen=True, slots=True, eq=False)
class CompiledRule:
    """A rule ready for the hot path: tests as closures, reasons as finished strings."""

    rule: Rule
    record_tests: tuple[RecordTest, ...]
    peer_tests: tuple[PeerTest, ...]
    reason: str
    # allow-only: the reason when the recipient does match (the rule let it through).
    passed: str
    # redact: the fields per known kind, precomputed; unknown kinds go through rule.redacted_fields.
    fields_by_kind: Mapping[str, frozenset[str] | None]
    # The peer attributes that may be unpinned which this rule reads (for the explanation, Rule 3).
    reads: frozenset[str]

    @classmethod
    def of(cls, rule: Rule) -> CompiledRule:
        # allow-only restricts when the peer does NOT match, so an unknown attribute must not match.
        unknown = rule.action != "allow-only"
        return cls(
            rule=rule,
            record_tests=tuple(_record_test(c) for c in rule.record),
            peer_tests=tuple(_peer_test(c, unknown) for c in rule.peer),
            reason=rule.describe(),
            passed=f"rule {rule.name} (allow-only): recipient matches: {rule.describe_peer()}",
            fields_by_kind=MappingProxyType({kind: rule.redacted_fields(kind) for kind in KIND_FIELDS}),
            reads=frozenset(c.subject for c in rule.peer) & {"category", "jurisdiction"},
        )

    def reason_for(self, peer: Recipient) -> str:
        """The reason, saying so when the rule applied because the operator never pinned an attribute."""
        if peer.category is not None and peer.jurisdiction is not None:
            return self.reason
        unpinned = [name for name in sorted(self.reads) if getattr(peer, name) is None]
        if not unpinned:
            return self.reason
        return f"{self.reason} (the peer's {' and '.join(unpinned)} is not pinned, so the rule applies)"

    def fields(self, kind: str) -> frozenset[str] | None:
        """The fields to withhold from a record of `kind`; None if they cannot be known (Rule 2 of
        lapnode.policy.fields: the record is then withheld)."""
        if kind in self.fields_by_kind:
            return self.fields_by_kind[kind]
        return self.rule.redacted_fields(kind)


@dataclass(frozen=True, slots=True, eq=False)
class Policy:
    """The local rules of one node, compiled. `source` is where they came from (None: no policy.toml)."""

    rules: tuple[Rule, ...] = ()
    sets: Mapping[str, JurisdictionSet] = field(default_factory=dict)
    source: str | None = None
    outbound: tuple[CompiledRule, ...] = ()
    inbound: tuple[CompiledRule, ...] = ()

    @classmethod
    def compile(
        cls, rules: tuple[Rule, ...], sets: Mapping[str, JurisdictionSet], source: str | None
    ) -> Policy:
        compiled = [CompiledRule.of(rule) for rule in rules]
        return cls(
            rules=rules,
            sets=MappingProxyType(dict(sets)),
            source=source,
            outbound=tuple(c for c in compiled if c.rule.outbound),
            inbound=tuple(c for c in compiled if not c.rule.outbound),
        )


NO_RULES: Final = Policy()
