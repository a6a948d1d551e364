"""The export adapter: `decide` for the described recipient, plus the format rule (never widen)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from keys.membership import TrustedAuthorities
from lapnode.exits import Audience, PeerEvidence, audience_for_peer, token_audience
from lapnode.interop.disclosure import SEALED_REASON, Disclosed, decide_rows, judge
from lapnode.interop.stix_bundle import bundle
from lapnode.policy import NO_RULES, Decision, disclosed_record
from lapnode.store import Peer
from protocol.scope import Scope
from tests.factories import NETWORK, T0, identity, make_record
from tests.lapnode.interop_corpus import AUTHOR, LOCAL, build, disclose, row_of

OTHER = identity("interop-other-author")
PEER_KEY = identity("interop-peer").public_key.raw


def _peer(category: str | None, jurisdiction: str | None) -> Peer:
    return Peer(
        PEER_KEY,
        "127.0.0.1:1",
        "p",
        "Peer Org",
        category,
        jurisdiction,
        False,
        False,
        (),
        0,
        0,
        None,
        0,
        0,
        0,
        None,
    )


# Legacy mode (no trusted authority): the pinned attributes count (lapnode.exits Rule 2).
PINS = PeerEvidence(NETWORK, TrustedAuthorities(), frozenset(), frozenset(), T0)

AUDIENCES = {
    "local": LOCAL,
    "public": Audience.public(),
    "peer-enforcement-GB": audience_for_peer(_peer("enforcement", "GB"), "bundle", PINS),
    "peer-unpinned": audience_for_peer(_peer(None, None), "bundle", PINS),
    "token-industry-US": token_audience("feed", None, "industry", "US"),
}


@pytest.mark.parametrize(
    ("tlp", "clauses", "sent_to"),
    [
        ("clear", {}, {"local", "public", "peer-enforcement-GB", "peer-unpinned", "token-industry-US"}),
        ("green", {}, {"local", "peer-enforcement-GB", "peer-unpinned", "token-industry-US"}),
        ("amber", {}, {"local", "peer-enforcement-GB", "peer-unpinned", "token-industry-US"}),
        ("amber", {"categories": ["enforcement"]}, {"local", "peer-enforcement-GB"}),
        ("amber", {"jurisdictions_deny": ["US"]}, {"local", "peer-enforcement-GB"}),
        ("green", {"flags": ["law-enforcement-only"]}, {"local", "peer-enforcement-GB"}),
        ("amber+strict", {}, set()),
        ("amber+strict", {"members": [PEER_KEY]}, set()),
        ("red", {"members": [PEER_KEY]}, set()),
    ],
)
def test_who_receives_an_export(tlp: str, clauses: dict[str, object], sent_to: set[str]) -> None:
    record = make_record(AUTHOR, 1, None, scope=Scope.create(tlp, **clauses))  # type: ignore[arg-type]
    row = row_of(record, 1)
    for name, audience in AUDIENCES.items():
        decision = judge(row, audience, policy=NO_RULES, now_ms=T0, our_key=AUTHOR.public_key.raw)
        assert decision.send == (name in sent_to), (name, decision.reasons)


def test_relayed_records_keep_their_hop_limit_on_export() -> None:
    record = make_record(OTHER, 1, None, scope=Scope.create("green", relay_hops=0))
    decision = judge(
        row_of(record, 1, hops=0), LOCAL, policy=NO_RULES, now_ms=T0, our_key=AUTHOR.public_key.raw
    )
    assert not decision.send and any("relay_hops" in r for r in decision.reasons)


def test_expired_and_embargoed_records_are_withheld_and_the_rest_verified() -> None:
    expired = make_record(AUTHOR, 1, None, scope=Scope.create("green", expires=T0 + 1000))
    embargoed = make_record(AUTHOR, 2, expired.id, scope=Scope.create("green", embargo_until=T0 + 10**9))
    fine = make_record(AUTHOR, 3, embargoed.id, scope=Scope.create("green"))
    rows = [row_of(r, n) for n, r in enumerate((expired, embargoed, fine), start=1)]
    out = disclose(
        rows,
        LOCAL,
        now_ms=T0 + 10**6,
        our_key=AUTHOR.public_key.raw,
        network=NETWORK,
    )
    assert [item.record.id for item in out] == [fine.id]


def test_every_row_keeps_its_decision_for_the_audit_trail() -> None:
    """Withheld rows are decided on the scope alone and kept with their reasons; their body is not read."""
    sent = make_record(AUTHOR, 1, None, scope=Scope.create("green"))
    strict = make_record(AUTHOR, 2, sent.id, scope=Scope.create("amber+strict"))
    garbled = replace(row_of(strict, 2), wire=b"not a record")  # never decoded: it is withheld
    ours = AUTHOR.public_key.raw
    rows = [row_of(sent, 1), garbled]
    decided = decide_rows(rows, LOCAL, policy=NO_RULES, now_ms=T0, our_key=ours, network=NETWORK)
    assert [item.audited[0] for item in decided] == [sent.id, strict.id]
    assert [item.decision.action for item in decided] == ["send", "withhold"]
    assert decided[0].disclosed is not None and decided[1].disclosed is None
    assert decided[1].decision.reasons == ("tlp amber+strict: never exported",)


def test_a_sealed_record_never_leaves_in_a_standard_format() -> None:
    sealed = make_record(AUTHOR, 1, None, scope=Scope.create("amber", flags=["sealed"], members=[PEER_KEY]))
    for audience in (LOCAL, AUDIENCES["peer-enforcement-GB"]):
        decision = judge(
            row_of(sealed, 1), audience, policy=NO_RULES, now_ms=T0, our_key=OTHER.public_key.raw
        )
        assert decision.action == "withhold" and decision.reasons[-1] == SEALED_REASON


def test_a_redacting_decision_removes_the_fields_and_the_record_still_verifies() -> None:
    corpus = build()
    decision = Decision("redact", ("local rule",), frozenset({"summary", "subjects", "not-a-field"}))
    redacted = disclosed_record(corpus.referral, decision)
    assert redacted is not None and redacted.id == corpus.referral.id
    assert redacted.redacted == {"summary", "subjects"}
    assert redacted.body.summary is None and redacted.body.subjects is None  # type: ignore[union-attr]
    objects = bundle([Disclosed(redacted, row_of(redacted, 1))], {})["objects"]
    text = json.dumps(objects)
    assert "pharma-spam.example" not in text and "credential phish" not in text
    assert {o["type"] for o in objects} >= {"note", "grouping"}  # no observables left: the lead is a note


def test_an_unknown_decision_action_fails_closed() -> None:
    corpus = build()
    strange = Decision("forward-to-everyone", (), frozenset())  # type: ignore[arg-type]
    assert disclosed_record(corpus.referral, strange) is None
