"""The export adapter: `decide` for the described recipient, plus the export-only rules (never widen)."""

from __future__ import annotations

import pytest

from lapnode.interop.disclosure import (
    Audience,
    audience_for_peer,
    audience_for_token,
    audience_local,
    audience_public,
    disclose,
    judge,
)
from lapnode.store import Peer
from protocol.scope import Scope
from tests.factories import NETWORK, T0, identity, make_record
from tests.lapnode.interop_corpus import AUTHOR, CONFIG, row_of

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
    "local": audience_local(CONFIG),
    "public": audience_public(),
    "peer-enforcement-GB": audience_for_peer(_peer("enforcement", "GB"), "lap1peer"),
    "peer-unpinned": audience_for_peer(_peer(None, None), "lap1peer"),
    "token-industry-US": audience_for_token("feed", None, "industry", "US"),
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
    audience: Audience = audience_local(CONFIG)
    decision = judge(row_of(record, 1, hops=0), audience, now_ms=T0, our_key=AUTHOR.public_key.raw)
    assert not decision.send and any("relay_hops" in r for r in decision.reasons)


def test_expired_and_embargoed_records_are_withheld_and_the_rest_verified() -> None:
    expired = make_record(AUTHOR, 1, None, scope=Scope.create("green", expires=T0 + 1000))
    embargoed = make_record(AUTHOR, 2, expired.id, scope=Scope.create("green", embargo_until=T0 + 10**9))
    fine = make_record(AUTHOR, 3, embargoed.id, scope=Scope.create("green"))
    rows = [row_of(r, n) for n, r in enumerate((expired, embargoed, fine), start=1)]
    out = disclose(
        rows, audience_local(CONFIG), now_ms=T0 + 10**6, our_key=AUTHOR.public_key.raw, network=NETWORK
    )
    assert [item.record.id for item in out] == [fine.id]
