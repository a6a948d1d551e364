"""Local rules in the one decision function, its inbound twin, and what a decision lets out.

The rules are docs/examples/policy.toml, the file operators are told to start from: the four worked
examples of docs/policy.md and four more. Records are real signed records. Each case states the
outcome, the fields withheld, and reasons that must be among those reported. Property tests then check,
over random scopes, random rule files and random peers, that local rules never widen what the author's
scope allows (and never make a reject into an accept).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lapnode.policy import (
    NO_RULES,
    PUBLIC,
    Decision,
    Draft,
    InboundDecision,
    Policy,
    Recipient,
    decide,
    decide_inbound,
    disclosed_record,
    disclosed_wire,
    load_policy,
    parse_policy,
)
from lapnode.policy.decision import CLOCK_SKEW_MS
from lapnode.policy.fields import KIND_FIELDS, PERSONAL_FIELDS
from protocol.envelope import Record, verify_record
from protocol.kinds import ContactBody
from protocol.scope import CATEGORIES, FLAGS, TLP_LEVELS, Scope
from tests.factories import NETWORK, T0, contact_document, identity, make_record

POLICY = load_policy(Path(__file__).resolve().parents[2] / "docs" / "examples" / "policy.toml")
US = identity("local rules: this node")
OTHER_AUTHOR = identity("local rules: another author")
NOW = T0 + 10 * 24 * 3600 * 1000
HOUR = 3600 * 1000


def peer(name: str, category: str | None, jurisdiction: str | None) -> Recipient:
    return Recipient(identity(name).public_key.raw, f"Org {name}", category, jurisdiction)


DE_POLICE = peer("de police", "enforcement", "DE")
JP_AGENCY = peer("jp agency", "government", "JP")
BR_AGENCY = peer("br agency", "government", "BR")
AU_INDUSTRY = peer("au industry", "industry", "AU")
KP_POLICE = peer("kp police", "enforcement", "KP")
US_GROUP = peer("us interest group", "interest-group", "US")
BR_GROUP = peer("br interest group", "interest-group", "BR")
UNPINNED = peer("unpinned", None, None)

CONTACT = {
    **contact_document("NL"),
    "person": "Jan de Vries",
    "phones": ["+31 70 315 3500"],
    "notes": "Ask for Jan.",
}
CONTACT_PERSONAL = frozenset({"person", "emails", "phones", "notes"})
TREND = {
    "period_start": T0,
    "period_end": T0 + 3600 * 1000,
    "jurisdiction": "NL",
    "category": "sms-spam",
    "metric": "complaints",
    "value": 3,
    "unit": "count",
}
DOCUMENTS: dict[str, dict[str, object] | None] = {"contact": CONTACT, "lead": None, "trend": TREND}


def record(
    kind: str = "lead",
    *,
    author: Any = US,
    tlp: str = "green",
    document: dict[str, object] | None = None,
    seq: int = 1,
    **clauses: Any,
) -> Record:
    if document is None:
        document = DOCUMENTS.get(kind)
    return make_record(author, seq, None, kind=kind, document=document, scope=Scope.create(tlp, **clauses))


@dataclass(frozen=True)
class Case:
    record: Record
    to: Recipient
    action: str
    reasons: tuple[str, ...] = ()  # each must be in exactly one reported reason
    fields: frozenset[str] = frozenset()
    hops: int | None = None  # None: we are the author; else relays before us


PERSONAL = ("personal-data",)
CASES: dict[str, Case] = {
    # 1. personal data only to the EEA and adequacy countries; the others get it without personal fields
    "personal data to the EEA": Case(record("contact", flags=PERSONAL), DE_POLICE, "send", ("within",)),
    "personal data to an adequacy country": Case(record("contact", flags=PERSONAL), JP_AGENCY, "send"),
    "personal data elsewhere: redacted": Case(
        record("contact", flags=PERSONAL),
        BR_AGENCY,
        "redact",
        ("within the author's scope", "rule personal-data-outside-eea (redact the personal fields)"),
        CONTACT_PERSONAL,
    ),
    "a peer whose jurisdiction was never pinned: every rule on it applies (fail closed)": Case(
        record("contact", tlp="clear", flags=PERSONAL),
        UNPINNED,
        "withhold",
        (
            "recipient: jurisdiction in [KP] (the peer's jurisdiction is not pinned",
            "personal-data-outside-eea",
        ),
    ),
    "a lead's personal fields": Case(
        record("lead", flags=PERSONAL),
        BR_AGENCY,
        "redact",
        ("personal-data-outside-eea",),
        PERSONAL_FIELDS["lead"],
    ),
    "a trend has no personal fields: sent whole, and it says so": Case(
        record("trend", flags=PERSONAL), BR_AGENCY, "send", ("nothing of a trend to redact",)
    ),
    "personal data in a kind we cannot read: withheld (fail closed)": Case(
        record("x-future", document={"note": "n"}, flags=PERSONAL),
        BR_AGENCY,
        "withhold",
        ("no known personal fields",),
    ),
    "personal data sealed: cannot be redacted, so withheld": Case(
        record("contact", flags=[*PERSONAL, "sealed"], members=[DE_POLICE.key]),
        BR_AGENCY,
        "withhold",
        ("a sealed record cannot be redacted",),
    ),
    "personal data relayed: our rules apply to others' records too": Case(
        record("contact", author=OTHER_AUTHOR, flags=PERSONAL),
        BR_AGENCY,
        "redact",
        ("personal",),
        CONTACT_PERSONAL,
        0,
    ),
    # 2. leads only to enforcement and government members
    "a lead to enforcement": Case(record("lead"), DE_POLICE, "send", ("recipient matches: category in",)),
    "a lead to government": Case(record("lead"), BR_AGENCY, "send", ("leads-to-authorities",)),
    "a lead to industry: withheld": Case(
        record("lead"), AU_INDUSTRY, "withhold", ("rule leads-to-authorities (allow-only): kind in [lead]",)
    ),
    "a lead to a peer of unknown category: withheld (fail closed)": Case(
        record("lead"),
        UNPINNED,
        "withhold",
        ("recipient must match: category in [enforcement, government] (the peer's category is not pinned",),
    ),
    "a contact to industry is not a lead": Case(record("contact"), AU_INDUSTRY, "send"),
    # 3. nothing to KP
    "nothing to KP": Case(record("contact"), KP_POLICE, "withhold", ("rule nothing-to-kp (deny)",)),
    "nothing to KP, every reason reported": Case(
        record("lead", flags=PERSONAL),
        KP_POLICE,
        "withhold",
        ("nothing-to-kp", "personal-data-outside-eea"),
    ),
    # 4. commercially sensitive records from us only to named members
    "commercially sensitive to a named member": Case(
        record(
            "contact",
            categories=sorted(CATEGORIES),
            members=[DE_POLICE.key],
            flags=["commercially-sensitive"],
        ),
        DE_POLICE,
        "send",
        ("commercial-to-named-only (allow-only): recipient matches: named member",),
    ),
    "commercially sensitive to a member in the audience but not named: withheld": Case(
        record(
            "contact",
            categories=sorted(CATEGORIES),
            members=[DE_POLICE.key],
            flags=["commercially-sensitive"],
        ),
        JP_AGENCY,
        "withhold",
        ("rule commercial-to-named-only (allow-only)",),
    ),
    "commercially sensitive from another author: the rule is about ours": Case(
        record(
            "contact", author=OTHER_AUTHOR, categories=sorted(CATEGORIES), flags=["commercially-sensitive"]
        ),
        JP_AGENCY,
        "send",
        hops=0,
    ),
    # more: redactions unite, denials by TLP, and local rules never widen
    "redactions of two rules unite": Case(
        record("contact", flags=PERSONAL),
        BR_GROUP,
        "redact",
        ("personal-data-outside-eea", "contacts-to-interest-groups"),
        CONTACT_PERSONAL | {"emails", "phones"},
    ),
    "one redaction rule only": Case(
        record("contact"),
        US_GROUP,
        "redact",
        ("contacts-to-interest-groups",),
        frozenset({"emails", "phones"}),
    ),
    "withhold beats redact": Case(
        record("contact", tlp="amber", flags=PERSONAL),
        AU_INDUSTRY,
        "withhold",
        ("no-amber-to-industry", "personal-data-outside-eea"),
    ),
    "the scope withholds whatever the rules say": Case(
        record("contact", categories=["government"]), DE_POLICE, "withhold", ("scope.categories",)
    ),
    "the scope's reasons and the rules' together": Case(
        record("lead", jurisdictions_deny=["KP"]),
        KP_POLICE,
        "withhold",
        ("scope.jurisdictions_deny", "nothing-to-kp"),
    ),
}


def run(case: Case, policy: Policy = POLICY) -> Decision:
    our_key = US.public_key.raw
    return decide(
        case.record.header,
        case.to,
        now_ms=NOW,
        our_key=our_key,
        hops=case.hops or 0,
        policy=policy,
        via="gossip",
    )


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_local_rules(case: Case) -> None:
    decision = run(case)
    assert decision.action == case.action, decision.reasons
    assert decision.fields == case.fields
    for expected in case.reasons:
        matching = [reason for reason in decision.reasons if expected in reason]
        assert len(matching) == 1, (expected, decision.reasons)
    assert decision.send is (case.action == "send")
    without_rules = run(case, NO_RULES)
    assert set(without_rules.reasons) - {"within the author's scope", "named member"} <= set(decision.reasons)


# --- what leaves: a redacted copy verifies, keeps its id, and lacks exactly the withheld fields ----------


def test_a_redacted_copy_verifies_and_lacks_the_fields() -> None:
    original = record("contact", flags=PERSONAL)
    decision = run(Case(original, BR_AGENCY, "redact"))
    wire = disclosed_wire(original.wire, decision, network=NETWORK)
    assert wire is not None and wire != original.wire
    copy = verify_record(wire, network=NETWORK)
    assert copy.id == original.id and copy.signature == original.signature
    assert copy.redacted == CONTACT_PERSONAL
    assert isinstance(copy.body, ContactBody)
    assert copy.body.person is None and copy.body.emails is None and copy.body.organisation == "OPTA"
    assert all(name not in wire.decode("latin-1") for name in ("Jan de Vries", "spam@opta.example"))
    same = disclosed_record(original, decision)
    assert same is not None and same.wire == wire
    # Redacting the redacted copy again changes nothing: the fields are gone already.
    assert disclosed_wire(wire, decision, network=NETWORK) == wire


def test_send_and_withhold_decisions_touch_no_bytes() -> None:
    original = record("contact")
    send = Decision("send", ("within the author's scope",))
    withhold = Decision("withhold", ("nothing-to-kp",))
    assert disclosed_wire(original.wire, send, network=NETWORK) is original.wire
    assert disclosed_record(original, send) is original
    assert disclosed_wire(original.wire, withhold, network=NETWORK) is None
    assert disclosed_record(original, withhold) is None


def test_a_redaction_of_fields_the_record_lacks_sends_it_whole() -> None:
    bare = record("contact", document=contact_document("NL"), flags=PERSONAL)  # no person, phones, notes
    decision = Decision("redact", ("r",), frozenset({"person", "phones", "notes"}))
    assert disclosed_wire(bare.wire, decision, network=NETWORK) == bare.wire


# --- the inbound twin --------------------------------------------------------------------------------

AUTHOR = identity("inbound: author")
RELAY = Recipient(identity("inbound: relay").public_key.raw, "Relay", "enforcement", "BE")
INDUSTRY_RELAY = Recipient(identity("inbound: industry relay").public_key.raw, "Shop", "industry", "BE")
GROUP_RELAY = Recipient(identity("inbound: group relay").public_key.raw, "Group", "interest-group", "BE")
FROM_AUTHOR = Recipient(AUTHOR.public_key.raw, "Author", "enforcement", "NL")
ME = Recipient(US.public_key.raw, "Us", "enforcement", "NL")


@dataclass(frozen=True)
class Inbound:
    scope: Scope
    sender: Recipient
    action: str
    reasons: tuple[str, ...] = ()
    hops: int = 0
    kind: str = "contact"
    misbehaved: bool = False
    now: int = NOW


INBOUND: dict[str, Inbound] = {
    "green from its author": Inbound(Scope.create("green"), FROM_AUTHOR, "accept"),
    "green from a relay": Inbound(Scope.create("green"), RELAY, "accept", hops=1),
    "amber+strict from its author": Inbound(Scope.create("amber+strict"), FROM_AUTHOR, "accept"),
    "amber+strict relayed": Inbound(
        Scope.create("amber+strict"),
        RELAY,
        "reject",
        ("relayed by a node that is not its author",),
        1,
        misbehaved=True,
    ),
    "red relayed to a named member": Inbound(
        Scope.create("red", members=[ME.key]), RELAY, "reject", ("tlp red: relayed",), 1, misbehaved=True
    ),
    "red from its author, not naming us": Inbound(
        Scope.create("red", members=[RELAY.key]),
        FROM_AUTHOR,
        "reject",
        ("not a named member", "scope.members"),
        misbehaved=True,
    ),
    "sealed red relayed": Inbound(
        Scope.create("red", members=[RELAY.key], flags=["sealed"]), RELAY, "accept", hops=1
    ),
    "over the relay limit": Inbound(
        Scope.create("green", relay_hops=1), RELAY, "reject", ("arrived after 2 relays",), 2, misbehaved=True
    ),
    "a relay claiming to be the first hop of a direct-only record": Inbound(
        Scope.create("green", relay_hops=0),
        RELAY,
        "reject",
        ("arrived after 1 relays, over the limit 0",),
        0,
        misbehaved=True,
    ),
    "outside the audience": Inbound(
        Scope.create("green", categories=["government"]),
        FROM_AUTHOR,
        "reject",
        ("scope.categories",),
        misbehaved=True,
    ),
    "named, outside the categories": Inbound(
        Scope.create("green", categories=["government"], members=[ME.key]), FROM_AUTHOR, "accept"
    ),
    "a denied jurisdiction (ours)": Inbound(
        Scope.create("green", jurisdictions_deny=["NL"]),
        FROM_AUTHOR,
        "reject",
        ("jurisdictions_deny",),
        misbehaved=True,
    ),
    "sent well before the embargo ends": Inbound(
        Scope.create("green", embargo_until=NOW + HOUR),
        FROM_AUTHOR,
        "reject",
        ("sent under embargo",),
        misbehaved=True,
    ),
    "sent within the clock skew of the embargo's end": Inbound(
        Scope.create("green", embargo_until=NOW + CLOCK_SKEW_MS // 2), FROM_AUTHOR, "accept"
    ),
    "sent long after it expired": Inbound(
        Scope.create("green", expires=NOW - HOUR),
        FROM_AUTHOR,
        "reject",
        ("sent after it expired",),
        misbehaved=True,
    ),
    "local quarantine: law-enforcement-only from an industry peer": Inbound(
        Scope.create("green", flags=["law-enforcement-only"]),
        INDUSTRY_RELAY,
        "quarantine",
        ("rule check-le-only-from-industry (quarantine)",),
        1,
    ),
    "local reject: a lead from an interest group (no penalty: the peer broke nothing)": Inbound(
        Scope.create("green"),
        GROUP_RELAY,
        "reject",
        ("rule no-leads-from-interest-groups (reject)",),
        1,
        "lead",
    ),
    "the scope's reject beats a local quarantine, and both are reported": Inbound(
        Scope.create("amber+strict", flags=["law-enforcement-only"]),
        INDUSTRY_RELAY,
        "reject",
        ("relayed by a node", "check-le-only-from-industry"),
        1,
        misbehaved=True,
    ),
}


def signed(kind: str, scope: Scope, author: Any) -> Record:
    """A real record of `kind` by `author` with this scope (cached: signing is the slow part)."""
    key = (kind, scope, author.node_id)
    if key not in _SIGNED:
        _SIGNED[key] = make_record(author, 1, None, kind=kind, document=DOCUMENTS[kind], scope=scope)
    return _SIGNED[key]


_SIGNED: dict[tuple[str, Scope, str], Record] = {}


def inbound(case: Inbound, policy: Policy = POLICY) -> InboundDecision:
    header = signed(case.kind, case.scope, AUTHOR).header
    return decide_inbound(header, case.sender, now_ms=case.now, us=ME, hops=case.hops, policy=policy)


@pytest.mark.parametrize("case", INBOUND.values(), ids=INBOUND.keys())
def test_decide_inbound(case: Inbound) -> None:
    decision = inbound(case)
    assert decision.action == case.action, decision.reasons
    assert decision.misbehaved is case.misbehaved
    for expected in case.reasons:
        assert len([r for r in decision.reasons if expected in r]) == 1, (expected, decision.reasons)


# --- properties: local rules never widen ---------------------------------------------------------------

RECIPIENTS = [DE_POLICE, JP_AGENCY, BR_AGENCY, AU_INDUSTRY, KP_POLICE, US_GROUP, UNPINNED]
SENDERS = [RELAY, INDUSTRY_RELAY, GROUP_RELAY, FROM_AUTHOR]
CODES = ["DE", "JP", "BR", "AU", "KP", "US", "NL", "BE"]
KINDS = ["contact", "lead", "trend"]
RANK = {"send": 0, "redact": 1, "withhold": 2, "accept": 0, "quarantine": 1, "reject": 2}


def _lists(values: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(values), min_size=1, max_size=3, unique=True)


@st.composite
def rule_tables(draw: st.DrawFn, name: str) -> dict[str, object]:
    action = draw(st.sampled_from(["deny", "allow-only", "redact", "quarantine", "reject"]))
    record_table: dict[str, object] = {}
    for key, values in (("kind", KINDS), ("tlp", list(TLP_LEVELS)), ("flags", sorted(FLAGS))):
        if draw(st.booleans()):
            record_table[("not-" if draw(st.booleans()) else "") + key] = draw(_lists(values))
    if draw(st.booleans()):
        record_table["author"] = draw(_lists(["self", OTHER_AUTHOR.node_id, AUTHOR.node_id]))
    peer_table: dict[str, object] = {}
    for key, values in (("category", sorted(CATEGORIES)), ("jurisdiction", [*CODES, "eea", "adequacy"])):
        if draw(st.booleans()) or (action == "allow-only" and not peer_table and key == "jurisdiction"):
            peer_table[("not-" if draw(st.booleans()) else "") + key] = draw(_lists(values))
    if action in ("deny", "allow-only", "redact") and draw(st.booleans()):
        peer_table["named"] = draw(st.booleans())
    table: dict[str, object] = {"name": name, "action": action, "record": record_table}
    table["recipient" if action in ("deny", "allow-only", "redact") else "sender"] = peer_table
    if action == "redact":
        kinds = record_table.get("kind")
        fields = (
            sorted(set().union(*(KIND_FIELDS[k] for k in kinds))) if isinstance(kinds, list) else ["person"]
        )
        table["fields"] = draw(
            st.lists(st.sampled_from(["personal", *fields]), min_size=1, max_size=3, unique=True)
        )
    return table


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    count = draw(st.integers(0, 5))
    return parse_policy({"rule": [draw(rule_tables(f"r{n}")) for n in range(count)]})


@st.composite
def scopes(draw: st.DrawFn) -> Scope:
    allow = draw(st.sets(st.sampled_from(CODES), max_size=2))
    members = draw(st.sets(st.sampled_from([r.key for r in RECIPIENTS] + [ME.key]), max_size=2))
    flags = draw(st.sets(st.sampled_from(sorted(FLAGS)), max_size=3))
    if not members:
        flags.discard("sealed")  # sealing needs named members to seal to
    return Scope.create(
        draw(st.sampled_from(TLP_LEVELS)),
        relay_hops=draw(st.integers(0, 3)),
        categories=draw(st.sets(st.sampled_from(sorted(CATEGORIES)), max_size=2)),
        members=members,
        jurisdictions_allow=allow,
        jurisdictions_deny=draw(st.sets(st.sampled_from(CODES), max_size=2)) - allow,
        flags=flags,
        embargo_until=draw(st.none() | st.integers(NOW - 2 * HOUR, NOW + 2 * HOUR)),
        expires=draw(st.none() | st.integers(NOW - 2 * HOUR, NOW + 2 * HOUR)),
    )


@settings(max_examples=200, deadline=None)
@given(
    scopes(),
    policies(),
    st.sampled_from(RECIPIENTS),
    st.sampled_from(KINDS),
    st.booleans(),
    st.integers(0, 3),
    st.sampled_from(["gossip", "bundle"]),
)
def test_local_rules_never_widen(
    scope: Scope, policy: Policy, to: Recipient, kind: str, ours: bool, hops: int, via: Any
) -> None:
    # Decisions read a record's author, kind and scope only; a Draft (what `publish --dry-run` decides
    # on) carries exactly those, without the cost of signing a record per example.
    header = Draft((US if ours else OTHER_AUTHOR).public_key.raw, kind, scope)
    arguments = {"now_ms": NOW, "our_key": US.public_key.raw, "hops": 0 if ours else hops, "via": via}
    plain = decide(header, to, policy=NO_RULES, **arguments)
    ruled = decide(header, to, policy=policy, **arguments)
    assert RANK[ruled.action] >= RANK[plain.action], (plain, ruled)
    if plain.withheld:
        assert ruled.withheld, "a local rule made a withheld record go"
        assert set(plain.reasons) <= set(ruled.reasons), "a local rule hid a reason of the author's scope"
    if ruled.action == "redact":
        assert ruled.fields
    assert ruled.reasons


@settings(max_examples=120, deadline=None)
@given(scopes(), policies(), st.sampled_from(SENDERS), st.sampled_from(KINDS), st.integers(0, 3))
def test_local_inbound_rules_never_admit_what_the_scope_rejects(
    scope: Scope, policy: Policy, sender: Recipient, kind: str, hops: int
) -> None:
    header = Draft(AUTHOR.public_key.raw, kind, scope)
    plain = decide_inbound(header, sender, now_ms=NOW, us=ME, hops=hops, policy=NO_RULES)
    ruled = decide_inbound(header, sender, now_ms=NOW, us=ME, hops=hops, policy=policy)
    assert RANK[ruled.action] >= RANK[plain.action]
    assert plain.action in ("accept", "reject"), "only local rules quarantine"
    if plain.action == "reject":
        assert ruled.action == "reject" and ruled.misbehaved and set(plain.reasons) <= set(ruled.reasons)
    elif ruled.action == "reject":
        assert not ruled.misbehaved, "a local rule's refusal is not the sender's fault"


def test_a_public_export_is_a_recipient_with_no_attributes() -> None:
    clear = record("trend", tlp="clear").header
    arguments: dict[str, Any] = {"now_ms": NOW, "our_key": US.public_key.raw, "hops": 0, "via": "public"}
    everyone = decide(clear, PUBLIC, policy=POLICY, **arguments)
    assert everyone.withheld  # the public includes KP, and the example denies KP everything
    assert any("nothing-to-kp" in reason and "is not pinned" in reason for reason in everyone.reasons)
    narrowed = parse_policy(
        {
            "rule": [
                {
                    "name": "nothing-but-clear-to-kp",
                    "action": "deny",
                    "record": {"not-tlp": ["clear"]},
                    "recipient": {"jurisdiction": ["KP"]},
                }
            ]
        }
    )
    assert decide(clear, PUBLIC, policy=narrowed, **arguments).send
    green = record("trend", tlp="green").header
    assert decide(green, PUBLIC, policy=narrowed, **arguments).withheld
