"""lapnode/policy/decision.py: the one disclosure decision, on real signed records (protocol/SPEC.md §4).

Each case names the scope the author signed, the recipient as this node pinned it, whether this node is
the author or a relay (and how many relays the record passed before reaching it), and the clock. It
states the outcome and every reason the decision must report. A property test then checks, over random
scopes and recipients, the rules that must hold whatever else a scope says: the decision fails closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lapnode.policy import NO_RULES, PUBLIC, Decision, Recipient, Via, decide
from lapnode.policy.decision import CLOCK_SKEW_MS, LAW_ENFORCEMENT
from protocol.envelope import Header
from protocol.scope import CATEGORIES, FLAGS, MAX_RELAY_HOPS, SEALED_FLAG, TLP_LEVELS, Scope
from tests.factories import T0, identity, make_record

AUTHOR = identity("policy author")
RELAY = identity("policy relay")
NOW = T0 + 10 * 24 * 3600 * 1000
HOUR = 3600 * 1000


def recipient(name: str, category: str | None, jurisdiction: str | None) -> Recipient:
    return Recipient(identity(name).public_key.raw, f"Org {name}", category, jurisdiction)


NL_ENFORCEMENT = recipient("nl enforcement", "enforcement", "NL")
GB_GOVERNMENT = recipient("gb government", "government", "GB")
US_INDUSTRY = recipient("us industry", "industry", "US")
UNPINNED = recipient("unpinned", None, None)  # the operator pinned neither category nor jurisdiction
THE_AUTHOR = Recipient(AUTHOR.public_key.raw, "Author's org", "enforcement", "NL")


def header(scope: Scope) -> Header:
    """The verified header of a real record signed by AUTHOR with this scope."""
    return make_record(AUTHOR, 1, None, scope=scope).header


@dataclass(frozen=True)
class Case:
    scope: Scope
    to: Recipient
    send: bool
    # Each string must appear in exactly one reason, and there must be no other reason.
    reasons: tuple[str, ...] = ()
    relay_hops_before: int | None = None  # None: this node is the author
    now: int = NOW
    via: Via = "gossip"


def scope(tlp: str = "green", **clauses: Any) -> Scope:
    return Scope.create(tlp, **clauses)


SENT = ("within the author's scope",)
NAMED = ("named member",)
CARRIED = ("sealed: carried as ciphertext",)


def sealed(tlp: str = "red", *, flags: tuple[str, ...] = (), **clauses: Any) -> Scope:
    """A sealed scope naming GB_GOVERNMENT (SPEC §3.7): others may only carry the ciphertext."""
    return Scope.create(tlp, members=[GB_GOVERNMENT.key], flags=["sealed", *flags], **clauses)


CASES: dict[str, Case] = {
    # hops and relaying
    "the author sends green to anyone": Case(scope(), NL_ENFORCEMENT, True, SENT),
    "a relay that got it from the author may send it on": Case(scope(), NL_ENFORCEMENT, True, SENT, 0),
    "the last relay within relay_hops may send": Case(scope(relay_hops=3), NL_ENFORCEMENT, True, SENT, 2),
    "one relay too many": Case(scope(relay_hops=3), NL_ENFORCEMENT, False, ("scope.relay_hops",), 3),
    "far past the limit": Case(scope(relay_hops=1), NL_ENFORCEMENT, False, ("scope.relay_hops",), 9),
    "relay_hops 0: the author sends": Case(scope(relay_hops=0), NL_ENFORCEMENT, True, SENT),
    "relay_hops 0: nobody else does": Case(
        scope(relay_hops=0), NL_ENFORCEMENT, False, ("scope.relay_hops",), 0
    ),
    "the largest relay_hops, last relay": Case(scope(relay_hops=MAX_RELAY_HOPS), US_INDUSTRY, True, SENT, 15),
    "the largest relay_hops, one more": Case(
        scope(relay_hops=MAX_RELAY_HOPS), US_INDUSTRY, False, ("scope.relay_hops",), 16
    ),
    "never back to the author": Case(scope(), THE_AUTHOR, False, ("recipient is the author",), 0),
    # TLP
    "clear is relayed": Case(scope("clear"), US_INDUSTRY, True, SENT, 1),
    "amber is relayed": Case(scope("amber"), US_INDUSTRY, True, SENT, 1),
    "amber+strict: the author sends": Case(scope("amber+strict"), US_INDUSTRY, True, SENT),
    "amber+strict: never relayed": Case(scope("amber+strict"), US_INDUSTRY, False, ("never relayed",), 0),
    "red to a named member, from the author": Case(
        scope("red", members=[GB_GOVERNMENT.key]), GB_GOVERNMENT, True, NAMED
    ),
    "red to anyone else": Case(
        scope("red", members=[GB_GOVERNMENT.key]),
        NL_ENFORCEMENT,
        False,
        ("tlp red: recipient is not a named member", "scope.members"),
    ),
    "red naming nobody goes to nobody": Case(scope("red"), NL_ENFORCEMENT, False, ("not a named member",)),
    "red is never relayed, even to a named member": Case(
        scope("red", members=[GB_GOVERNMENT.key]), GB_GOVERNMENT, False, ("tlp red: never relayed",), 0
    ),
    # categories and members
    "in the audience category": Case(scope(categories=["government"]), GB_GOVERNMENT, True, SENT),
    "outside the audience category": Case(
        scope(categories=["government"]), NL_ENFORCEMENT, False, ("scope.categories",)
    ),
    "unpinned category: not in any audience": Case(
        scope(categories=list(CATEGORIES)), UNPINNED, False, ("scope.categories",)
    ),
    "a named member": Case(scope(members=[US_INDUSTRY.key]), US_INDUSTRY, True, NAMED),
    "not a named member": Case(scope(members=[US_INDUSTRY.key]), NL_ENFORCEMENT, False, ("scope.members",)),
    "a named member outside the categories": Case(
        scope(categories=["government"], members=[US_INDUSTRY.key]), US_INDUSTRY, True, NAMED
    ),
    "members and categories: the category suffices": Case(
        scope(categories=["government"], members=[US_INDUSTRY.key]), GB_GOVERNMENT, True, SENT
    ),
    "members and categories: neither": Case(
        scope(categories=["government"], members=[US_INDUSTRY.key]),
        NL_ENFORCEMENT,
        False,
        ("scope.categories",),
    ),
    # law-enforcement-only
    **{
        f"law-enforcement-only to {who.category}": Case(
            scope(flags=["law-enforcement-only"]),
            who,
            who.category in LAW_ENFORCEMENT,
            SENT if who.category in LAW_ENFORCEMENT else ("flag law-enforcement-only",),
        )
        for who in (NL_ENFORCEMENT, GB_GOVERNMENT, US_INDUSTRY, UNPINNED)
    },
    "other flags restrict nobody": Case(
        scope(flags=["personal-data", "commercially-sensitive"]), US_INDUSTRY, True, SENT
    ),
    # jurisdictions
    "an allowed jurisdiction": Case(scope(jurisdictions_allow=["NL", "BE"]), NL_ENFORCEMENT, True, SENT),
    "a jurisdiction not allowed": Case(
        scope(jurisdictions_allow=["NL", "BE"]), GB_GOVERNMENT, False, ("scope.jurisdictions_allow",)
    ),
    "unknown jurisdiction, allow list": Case(
        scope(jurisdictions_allow=["NL"]), UNPINNED, False, ("scope.jurisdictions_allow",)
    ),
    "a jurisdiction not denied": Case(scope(jurisdictions_deny=["US"]), NL_ENFORCEMENT, True, SENT),
    "a denied jurisdiction": Case(
        scope(jurisdictions_deny=["US"]), US_INDUSTRY, False, ("scope.jurisdictions_deny",)
    ),
    "unknown jurisdiction, deny list: fails closed": Case(
        scope(jurisdictions_deny=["US"]), UNPINNED, False, ("scope.jurisdictions_deny",)
    ),
    # embargo and expiry, with the clock-skew allowance always on the side of withholding
    "under embargo": Case(scope(embargo_until=NOW + HOUR), NL_ENFORCEMENT, False, ("scope.embargo_until",)),
    "embargo just lifted, within the skew": Case(
        scope(embargo_until=NOW - CLOCK_SKEW_MS // 2), NL_ENFORCEMENT, False, ("scope.embargo_until",)
    ),
    "embargo lifted by the skew": Case(scope(embargo_until=NOW - CLOCK_SKEW_MS), NL_ENFORCEMENT, True, SENT),
    "embargo long over": Case(scope(embargo_until=NOW - HOUR), NL_ENFORCEMENT, True, SENT),
    "expired": Case(scope(expires=NOW - HOUR), NL_ENFORCEMENT, False, ("scope.expires",)),
    "about to expire, within the skew": Case(
        scope(expires=NOW + CLOCK_SKEW_MS // 2), NL_ENFORCEMENT, False, ("scope.expires",)
    ),
    "expires at the skew": Case(
        scope(expires=NOW + CLOCK_SKEW_MS), NL_ENFORCEMENT, False, ("scope.expires",)
    ),
    "not expired": Case(scope(expires=NOW + HOUR), NL_ENFORCEMENT, True, SENT),
    # every reason at once
    "every reason is reported": Case(
        scope(
            "red",
            relay_hops=1,
            members=[GB_GOVERNMENT.key],
            jurisdictions_allow=["GB"],
            embargo_until=NOW + HOUR,
            expires=NOW - HOUR,
        ),
        NL_ENFORCEMENT,
        False,
        (
            "scope.expires",
            "scope.embargo_until",
            "tlp red: never relayed",
            "scope.relay_hops",
            "tlp red: recipient is not a named member",
            "scope.members",
            "scope.jurisdictions_allow",
        ),
        4,
    ),
    # sealed records: ciphertext for the named members, so relays may carry them (SPEC §4)
    "sealed red is relayed, to a member who is not named": Case(
        scope("red", members=[GB_GOVERNMENT.key], flags=["sealed"]), NL_ENFORCEMENT, True, SENT, 0
    ),
    "sealed amber+strict is relayed": Case(
        scope("amber+strict", members=[GB_GOVERNMENT.key], flags=["sealed"]), US_INDUSTRY, True, SENT, 1
    ),
    "sealed: the relay limit still holds": Case(
        scope("red", relay_hops=1, members=[GB_GOVERNMENT.key], flags=["sealed"]),
        NL_ENFORCEMENT,
        False,
        ("scope.relay_hops",),
        1,
    ),
    "sealed: embargo and expiry still hold": Case(
        scope(
            "red", members=[GB_GOVERNMENT.key], flags=["sealed"], embargo_until=NOW + HOUR, expires=NOW - HOUR
        ),
        NL_ENFORCEMENT,
        False,
        ("scope.embargo_until", "scope.expires"),
        0,
    ),
    "sealed: a denied jurisdiction still holds": Case(
        scope("red", members=[GB_GOVERNMENT.key], flags=["sealed"], jurisdictions_deny=["US"]),
        US_INDUSTRY,
        False,
        ("jurisdictions_deny",),
        0,
    ),
    "sealed: categories still hold": Case(
        scope("red", members=[GB_GOVERNMENT.key], flags=["sealed"], categories=["government"]),
        NL_ENFORCEMENT,
        False,
        ("categories",),
        0,
    ),
    "sealed: never back to the author": Case(
        scope("red", members=[GB_GOVERNMENT.key], flags=["sealed"]),
        THE_AUTHOR,
        False,
        ("recipient is the author",),
        0,
    ),
    # exports: a bundle file for a peer, or a public export
    "bundle: green for a peer": Case(scope(), NL_ENFORCEMENT, True, SENT, via="bundle"),
    "bundle: amber+strict is never exported": Case(
        scope("amber+strict"), NL_ENFORCEMENT, False, ("tlp amber+strict: never exported",), via="bundle"
    ),
    "bundle: red is never exported, even to a named member": Case(
        scope("red", members=[NL_ENFORCEMENT.key]), NL_ENFORCEMENT, False, ("never exported",), via="bundle"
    ),
    "bundle: a relay's copy keeps the relay limit": Case(
        scope(relay_hops=1), NL_ENFORCEMENT, False, ("scope.relay_hops",), 1, via="bundle"
    ),
    "public: clear is exported": Case(scope("clear"), PUBLIC, True, SENT, via="public"),
    "public: green is not": Case(
        scope("green"), PUBLIC, False, ("tlp green: never to a public export",), via="public"
    ),
    "public: amber is not": Case(
        scope("amber"), PUBLIC, False, ("tlp amber: never to a public export",), via="public"
    ),
    "public: clear with an audience is not (the public has no category)": Case(
        scope("clear", categories=["government"]), PUBLIC, False, ("scope.categories",), via="public"
    ),
    "public: clear with a denied jurisdiction is not (the public has none)": Case(
        scope("clear", jurisdictions_deny=["US"]), PUBLIC, False, ("jurisdictions_deny",), via="public"
    ),
    "public: sealed is never public": Case(
        scope("clear", members=[GB_GOVERNMENT.key], flags=["sealed"]),
        PUBLIC,
        False,
        ("sealed: never to a public export",),
        via="public",
    ),
    "public: clear under embargo is not": Case(
        scope("clear", embargo_until=NOW + HOUR), PUBLIC, False, ("scope.embargo_until",), via="public"
    ),
}


def run(case: Case) -> Decision:
    our_key = AUTHOR.public_key.raw if case.relay_hops_before is None else RELAY.public_key.raw
    hops = case.relay_hops_before or 0
    return decide(
        header(case.scope),
        case.to,
        now_ms=case.now,
        our_key=our_key,
        hops=hops,
        policy=NO_RULES,
        via=case.via,
    )


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_decide(case: Case) -> None:
    decision = run(case)
    assert decision.send is case.send, decision.reasons
    assert decision.action == ("send" if case.send else "withhold")
    assert len(decision.reasons) == len(case.reasons), decision.reasons
    for expected in case.reasons:
        matching = [reason for reason in decision.reasons if expected in reason]
        assert len(matching) == 1, (expected, decision.reasons)


def test_the_same_record_is_decided_per_recipient() -> None:
    governments_only = header(scope(categories=["government"]))
    our_key = AUTHOR.public_key.raw
    sent_to = [
        who.org
        for who in (NL_ENFORCEMENT, GB_GOVERNMENT, US_INDUSTRY, UNPINNED)
        if decide(
            governments_only, who, now_ms=NOW, our_key=our_key, hops=0, policy=NO_RULES, via="gossip"
        ).send
    ]
    assert sent_to == [GB_GOVERNMENT.org]


# --- invariants over random scopes ---------------------------------------------------------------------

RECIPIENTS = [NL_ENFORCEMENT, GB_GOVERNMENT, US_INDUSTRY, UNPINNED, THE_AUTHOR]
JURISDICTIONS = ["NL", "GB", "US", "BE"]


@st.composite
def scopes(draw: st.DrawFn) -> Scope:
    allow = draw(st.sets(st.sampled_from(JURISDICTIONS), max_size=2))
    return Scope.create(
        draw(st.sampled_from(TLP_LEVELS)),
        relay_hops=draw(st.integers(0, MAX_RELAY_HOPS)),
        categories=draw(st.sets(st.sampled_from(sorted(CATEGORIES)), max_size=2)),
        members=draw(st.sets(st.sampled_from([r.key for r in RECIPIENTS]), max_size=2)),
        jurisdictions_allow=allow,
        jurisdictions_deny=draw(st.sets(st.sampled_from(JURISDICTIONS), max_size=2)) - allow,
        # Sealed scopes follow other rules (decision.py Rule 4); they have their own property below.
        flags=draw(st.sets(st.sampled_from(sorted(FLAGS - {SEALED_FLAG})), max_size=2)),
        embargo_until=draw(st.none() | st.integers(NOW - 2 * HOUR, NOW + 2 * HOUR)),
        expires=draw(st.none() | st.integers(NOW - 2 * HOUR, NOW + 2 * HOUR)),
    )


@settings(max_examples=150, deadline=None)
@given(
    scopes(),
    st.sampled_from(RECIPIENTS),
    st.none() | st.integers(0, MAX_RELAY_HOPS + 2),
)
def test_decide_fails_closed(signed: Scope, to: Recipient, hops_before: int | None) -> None:
    relaying = hops_before is not None
    our_key = RELAY.public_key.raw if relaying else AUTHOR.public_key.raw
    decision = decide(
        header(signed), to, now_ms=NOW, our_key=our_key, hops=hops_before or 0, policy=NO_RULES, via="gossip"
    )
    assert decision.reasons, "every decision says why"
    if not decision.send:
        return
    named = to.key in signed.members
    sealed = "sealed" in signed.flags
    assert to.key != AUTHOR.public_key.raw
    assert signed.expires is None or signed.expires > NOW
    assert signed.embargo_until is None or signed.embargo_until <= NOW
    if relaying:
        assert signed.tlp not in ("red", "amber+strict") or sealed, "only ciphertext is relayed"
        assert (hops_before or 0) + 1 <= signed.relay_hops
    if (signed.tlp == "red" or (signed.members and not signed.categories)) and not sealed:
        assert named
    if not named:
        assert not signed.categories or to.category in signed.categories
        assert "law-enforcement-only" not in signed.flags or to.category in LAW_ENFORCEMENT
        assert not signed.jurisdictions_allow or to.jurisdiction in signed.jurisdictions_allow
        assert not signed.jurisdictions_deny or (
            to.jurisdiction is not None and to.jurisdiction not in signed.jurisdictions_deny
        )
