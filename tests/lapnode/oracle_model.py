"""The leak oracle's model: who may hold which record, and which of its fields, restated from the docs.

This is deliberately NOT a call to `lapnode.policy.decide` or `decide_inbound`: it is a second, plain
statement of the rules, written from protocol/SPEC.md §4 (scope enforcement, on the way out and on the
way in), §6.5 rules 3 and 6 (what a feed skips; relay counts, and keeping the smallest one) and
docs/policy.md (local rules: deny, allow-only, redact, quarantine, reject; unpinned attributes fail
closed; personal fields per kind; the shipped jurisdiction sets), so that a mistake in the code and the
same mistake here would have to be made twice, independently.

What a federation at quiescence must look like, for each record r of author a:
- `reach`: the smallest relay count at which each node can hold r. a holds it at 0. A node v gets r
  from a node u that holds it (at its smallest count c) when u's feed to v would let it out (scope with
  hop count c, u's local rules, the kinds v subscribed to) and v's inbound screen accepts it (relay count
  0 from the author, c + 1 from a relay). Lower counts only ever allow more, so the fixpoint over
  smallest counts is exactly what a node can get.
- `fields`: a node keeps one copy, the first to arrive (SPEC §3.5: storing a record held is a no-op);
  each relay removes what its redactions for the next hop withhold. So the fields a node shows must be
  the fields of SOME copy that can reach it along allowed hops: the author's fields minus the union of
  the redactions on the way.
- `quarantine`: where some allowed hop ends in a local `quarantine` rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

# docs/policy.md, "Jurisdiction sets", for the codes the oracle's federations use (the shipped lists
# are longer; these are the members that matter here, restated from the docs, not read from the data).
POOL_JURISDICTIONS: Final = ("DE", "NL", "NO", "GB", "US", "JP", "BR", "KP")
SETS: Final[Mapping[str, frozenset[str]]] = {
    "eu": frozenset({"DE", "NL"}),
    "eea": frozenset({"DE", "NL", "NO"}),
    "adequacy": frozenset({"GB", "US", "JP"}),
    "adequacy-led": frozenset({"GB"}),
}
# docs/policy.md, "Personal fields"; a kind not listed has no known personal fields.
PERSONAL: Final[Mapping[str, frozenset[str]]] = {
    "contact": frozenset({"person", "emails", "phones", "notes"}),
    "lead": frozenset({"subjects", "summary", "evidence"}),
    "trend": frozenset(),
}
LAW_ENFORCEMENT: Final = frozenset({"enforcement", "government"})
NEVER_RELAYED: Final = frozenset({"amber+strict", "red"})

Action = Literal["deny", "allow-only", "redact", "quarantine", "reject"]
OUTBOUND: Final = ("deny", "allow-only", "redact")


@dataclass(frozen=True)
class Attributes:
    """A node as someone sees it: its own configuration, or what a peer's operator pinned."""

    category: str | None
    jurisdiction: str | None


@dataclass(frozen=True)
class Condition:
    subject: str  # kind, tlp, flags, author | category, jurisdiction, node, named
    values: tuple[str, ...]  # author/node: node indexes as text, or "self"; jurisdiction: codes or sets
    negated: bool = False


@dataclass(frozen=True)
class OracleRule:
    name: str
    action: Action
    record: tuple[Condition, ...] = ()
    peer: tuple[Condition, ...] = ()
    fields: tuple[str, ...] = ()  # redact: field names and/or "personal"


@dataclass(frozen=True)
class OracleScope:
    tlp: str
    relay_hops: int
    categories: frozenset[str] = frozenset()
    members: frozenset[int] = frozenset()
    allow: frozenset[str] = frozenset()
    deny: frozenset[str] = frozenset()
    flags: frozenset[str] = frozenset()
    embargoed: bool = False  # embargo_until is in the future
    expired: bool = False  # expires is in the past

    @property
    def sealed(self) -> bool:
        return "sealed" in self.flags


@dataclass(frozen=True)
class OracleRecord:
    author: int
    kind: str
    scope: OracleScope
    fields: frozenset[str]  # the body fields the author disclosed (a sealed record: {"sealed"})


@dataclass(frozen=True)
class Federation:
    """Nodes 0..n-1. `feeds` holds (publisher, subscriber) pairs; `pinned[(a, b)]` is what a's operator
    pinned about b; `kinds[(u, v)]` what v subscribed to from u (empty: everything)."""

    nodes: tuple[Attributes, ...]
    feeds: tuple[tuple[int, int], ...]
    pinned: Mapping[tuple[int, int], Attributes]
    rules: tuple[tuple[OracleRule, ...], ...]
    kinds: Mapping[tuple[int, int], frozenset[str]] = field(default_factory=dict)


# --- the author's scope (SPEC §4) ------------------------------------------------------------------------


def in_audience(scope: OracleScope, who: int, attrs: Attributes) -> bool:
    """Whether `who` (with these attributes) is in the audience, as a reader or a carrier."""
    if who in scope.members:
        return True
    if scope.tlp == "red" and not scope.sealed:
        return False
    if scope.members and not scope.categories and not scope.sealed:
        return False
    if scope.categories and attrs.category not in scope.categories:
        return False
    if "law-enforcement-only" in scope.flags and attrs.category not in LAW_ENFORCEMENT:
        return False
    if scope.allow and attrs.jurisdiction not in scope.allow:
        return False
    return not (scope.deny and (attrs.jurisdiction is None or attrs.jurisdiction in scope.deny))


def scope_releases(record: OracleRecord, sender: int, count: int, to: int, view: Attributes) -> bool:
    """Whether the author's scope lets `sender`, holding the record at relay count `count`, give it to
    `to` as the sender's operator pinned it (`view`)."""
    scope = record.scope
    if to == record.author or scope.embargoed or scope.expired:
        return False
    if sender != record.author:
        if scope.tlp in NEVER_RELAYED and not scope.sealed:
            return False
        if count + 1 > scope.relay_hops:
            return False
    return in_audience(scope, to, view)


def scope_admits(record: OracleRecord, sender: int, sent: int, us: int, ours: Attributes) -> bool:
    """Whether a receiver stores what `sender` gave it with the stated relay count `sent` (SPEC §4, the
    receiving side): judged with the receiver's own configured attributes."""
    scope = record.scope
    from_author = sender == record.author
    relays = sent if from_author else max(sent, 1)
    if not from_author and scope.tlp in NEVER_RELAYED and not scope.sealed:
        return False
    if relays > scope.relay_hops or scope.embargoed or scope.expired:
        return False
    return in_audience(scope, us, ours)


# --- local rules (docs/policy.md, "The model") -----------------------------------------------------------


def _record_matches(rule: OracleRule, record: OracleRecord, me: int) -> bool:
    for condition in rule.record:
        values = set(condition.values)
        if condition.subject == "kind":
            hit = record.kind in values
        elif condition.subject == "tlp":
            hit = record.scope.tlp in values
        elif condition.subject == "flags":
            hit = bool(values & record.scope.flags)
        else:  # author: node indexes, or "self" for the node applying the rule
            hit = str(record.author) in values or ("self" in values and record.author == me)
        if hit == condition.negated:
            return False
    return True


def _peer_matches(rule: OracleRule, record: OracleRecord, peer: int, view: Attributes) -> bool:
    """Whether every peer condition holds. An attribute the operator never pinned makes its condition
    come out the restrictive way: it holds for deny, redact, quarantine and reject, and fails for
    allow-only (docs/policy.md: "a local rule that reads it applies its restriction")."""
    unpinned = rule.action != "allow-only"
    for condition in rule.peer:
        if condition.subject == "named":
            hit: bool = peer in record.scope.members
        elif condition.subject == "node":
            hit = str(peer) in condition.values
        else:
            value = view.category if condition.subject == "category" else view.jurisdiction
            if value is None:
                if not unpinned:
                    return False
                continue
            if condition.subject == "jurisdiction":
                codes = set().union(*(SETS.get(v, {v}) for v in condition.values))
            else:
                codes = set(condition.values)
            hit = value in codes
        if hit == condition.negated:
            return False
    return True


WITHHOLD: Final = None


def rules_release(
    rules: tuple[OracleRule, ...], record: OracleRecord, me: int, to: int, view: Attributes
) -> frozenset[str] | None:
    """The fields `me`'s outbound rules withhold from `to`, or WITHHOLD (None) for the whole record.
    Most restrictive wins: any withholding rule withholds; the redactions of all others add up."""
    redacted: set[str] = set()
    for rule in rules:
        if rule.action not in OUTBOUND or not _record_matches(rule, record, me):
            continue
        matched = _peer_matches(rule, record, to, view)
        if rule.action == "allow-only":
            if not matched:
                return WITHHOLD
        elif not matched:
            continue
        elif rule.action == "deny":
            return WITHHOLD
        else:
            names = set(rule.fields) - {"personal"}
            if "personal" in rule.fields:
                if record.kind not in PERSONAL:
                    return WITHHOLD  # a kind with no known personal fields: fail closed
                names |= PERSONAL[record.kind]
            if names and record.scope.sealed:
                return WITHHOLD  # a ciphertext cannot be partly redacted
            redacted |= names
    return frozenset(redacted)


def rules_admit(
    rules: tuple[OracleRule, ...], record: OracleRecord, me: int, sender: int, view: Attributes
) -> Literal["accept", "quarantine", "reject"]:
    outcome: Literal["accept", "quarantine", "reject"] = "accept"
    for rule in rules:
        if rule.action in OUTBOUND or not _record_matches(rule, record, me):
            continue
        if _peer_matches(rule, record, sender, view):
            if rule.action == "reject":
                return "reject"
            outcome = "quarantine"
    return outcome


# --- one hop, and the whole federation -------------------------------------------------------------------


@dataclass(frozen=True)
class Hop:
    """What happens when `sender`, holding the record at relay count `count`, offers it to `to`."""

    outcome: Literal["store", "quarantine", "none"]
    sent: int = 0
    redacted: frozenset[str] = frozenset()


def hop(fed: Federation, record: OracleRecord, sender: int, count: int, to: int) -> Hop:
    kinds = fed.kinds.get((sender, to), frozenset())
    if kinds and record.kind not in kinds:
        return Hop("none")
    view = fed.pinned[(sender, to)]
    if not scope_releases(record, sender, count, to, view):
        return Hop("none")
    redacted = rules_release(fed.rules[sender], record, sender, to, view)
    if redacted is WITHHOLD:
        return Hop("none")
    sent = 0 if sender == record.author else count + 1
    if not scope_admits(record, sender, sent, to, fed.nodes[to]):
        return Hop("none")
    admitted = rules_admit(fed.rules[to], record, to, sender, fed.pinned[(to, sender)])
    if admitted == "reject":
        return Hop("none")
    return Hop("store" if admitted == "accept" else "quarantine", sent, redacted)


@dataclass
class Expected:
    """For one record: the smallest relay count each node holds it at, the field sets each node's copy
    may have, and where it must (or may) sit in quarantine, with the field sets of those copies."""

    reach: dict[int, int]
    fields: dict[int, set[frozenset[str]]]
    quarantine: dict[int, set[frozenset[str]]]


def expected(fed: Federation, record: OracleRecord) -> Expected:
    reach = {record.author: 0}
    changed = True
    while changed:  # Bellman-Ford over smallest counts: a lower count never allows less
        changed = False
        for u, v in fed.feeds:
            if u in reach:
                step = hop(fed, record, u, reach[u], v)
                if step.outcome == "store" and step.sent < reach.get(v, step.sent + 1):
                    reach[v] = step.sent
                    changed = True
    hops = {(u, v): hop(fed, record, u, reach[u], v) for u, v in fed.feeds if u in reach}
    fields: dict[int, set[frozenset[str]]] = {node: set() for node in reach}
    # An expired record is stored as a purged stub, with no disclosures, even by its author (SPEC §4).
    fields[record.author] = {frozenset() if record.scope.expired else record.fields}
    changed = True
    while changed:  # every copy a path of allowed hops can deliver
        changed = False
        for (u, v), step in hops.items():
            if step.outcome != "store":
                continue
            for copy in list(fields[u]):
                if (copy - step.redacted) not in fields[v]:
                    fields[v].add(copy - step.redacted)
                    changed = True
    quarantine: dict[int, set[frozenset[str]]] = {}
    for (u, v), step in hops.items():
        if step.outcome == "quarantine":
            quarantine.setdefault(v, set()).update(copy - step.redacted for copy in fields[u])
    return Expected(reach, fields, quarantine)
