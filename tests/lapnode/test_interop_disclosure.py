"""The export adapter: `decide` for the described recipient, plus the export-only rules (never widen)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from lapnode.interop.disclosure import (
    Audience,
    Disclosed,
    apply_decision,
    audience_for_peer,
    audience_for_token,
    audience_local,
    audience_public,
    disclose,
    judge,
)
from lapnode.interop.stix_bundle import bundle
from lapnode.policy import NO_RULES
from lapnode.store import Peer
from protocol.scope import Scope
from tests.factories import NETWORK, T0, identity, make_record
from tests.lapnode.interop_corpus import AUTHOR, CONFIG, build, row_of

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


AUDIENCES = {
    "local": audience_local(CONFIG, policy=NO_RULES),
    "public": audience_public(policy=NO_RULES),
    "peer-enforcement-GB": audience_for_peer(_peer("enforcement", "GB"), "lap1peer", policy=NO_RULES),
    "peer-unpinned": audience_for_peer(_peer(None, None), "lap1peer", policy=NO_RULES),
    "token-industry-US": audience_for_token("feed", None, "industry", "US", policy=NO_RULES),
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
        decision = judge(row, audience, now_ms=T0, our_key=AUTHOR.public_key.raw)
        assert decision.send == (name in sent_to), (name, decision.reasons)


def test_relayed_records_keep_their_hop_limit_on_export() -> None:
    record = make_record(OTHER, 1, None, scope=Scope.create("green", relay_hops=0))
    audience: Audience = audience_local(CONFIG, policy=NO_RULES)
    decision = judge(row_of(record, 1, hops=0), audience, now_ms=T0, our_key=AUTHOR.public_key.raw)
    assert not decision.send and any("relay_hops" in r for r in decision.reasons)


def test_expired_and_embargoed_records_are_withheld_and_the_rest_verified() -> None:
    expired = make_record(AUTHOR, 1, None, scope=Scope.create("green", expires=T0 + 1000))
    embargoed = make_record(AUTHOR, 2, expired.id, scope=Scope.create("green", embargo_until=T0 + 10**9))
    fine = make_record(AUTHOR, 3, embargoed.id, scope=Scope.create("green"))
    rows = [row_of(r, n) for n, r in enumerate((expired, embargoed, fine), start=1)]
    out = disclose(
        rows,
        audience_local(CONFIG, policy=NO_RULES),
        now_ms=T0 + 10**6,
        our_key=AUTHOR.public_key.raw,
        network=NETWORK,
    )
    assert [item.record.id for item in out] == [fine.id]


@dataclass(frozen=True)
class RedactDecision:
    """The shape of a redacting decision in the policy rework (action "redact" naming its fields)."""

    action: str
    reasons: tuple[str, ...]
    fields: frozenset[str]


def test_a_redacting_decision_removes_the_fields_and_the_record_still_verifies() -> None:
    corpus = build()
    decision = RedactDecision("redact", ("local rule",), frozenset({"summary", "subjects", "not-a-field"}))
    redacted = apply_decision(corpus.referral, decision, network=NETWORK)  # type: ignore[arg-type]
    assert redacted is not None and redacted.id == corpus.referral.id
    assert redacted.redacted == {"summary", "subjects"}
    assert redacted.body.summary is None and redacted.body.subjects is None  # type: ignore[union-attr]
    objects = bundle([Disclosed(redacted, row_of(redacted, 1))], {})["objects"]
    text = json.dumps(objects)
    assert "pharma-spam.example" not in text and "credential phish" not in text
    assert {o["type"] for o in objects} >= {"note", "grouping"}  # no observables left: the lead is a note


def test_an_unknown_decision_action_fails_closed() -> None:
    corpus = build()
    strange = RedactDecision("forward-to-everyone", (), frozenset())
    assert apply_decision(corpus.referral, strange, network=NETWORK) is None  # type: ignore[arg-type]
