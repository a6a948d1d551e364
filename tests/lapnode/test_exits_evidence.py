"""Offline exits in strict mode (issue 4): a peer's attributes come from the credential it last presented,
re-verified at the exit's time, never from the operator's pin (lapnode.exits Rule 2)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from keys.membership import TrustedAuthorities
from lapnode.exits import PeerEvidence
from lapnode.policy import Recipient
from lapnode.store import Peer
from protocol.credential import issue_credential
from tests.factories import NETWORK, T0, identity

DAY_MS = 86_400_000
AUTHORITY = identity("evidence-authority")
STRANGER = identity("evidence-other-authority")
PEER_KEY = identity("evidence-peer").public_key.raw
PINNED = Peer(
    PEER_KEY, "127.0.0.1:1", "p", "Pinned Org", "industry", "US", False, False, (), 0, 0, None, 0, 0, 0, None
)


def _credential(issuer: object = AUTHORITY, *, not_after: int = T0 + 30 * DAY_MS) -> bytes:
    return issue_credential(
        issuer,  # type: ignore[arg-type]
        network=NETWORK,
        subject=PEER_KEY,
        org="Credential Org",
        category="enforcement",
        jurisdiction="GB",
        not_before=T0 - DAY_MS,
        not_after=not_after,
    ).wire


def _strict(
    *, revoked: frozenset[bytes] = frozenset(), retired: frozenset[bytes] = frozenset()
) -> PeerEvidence:
    return PeerEvidence(NETWORK, TrustedAuthorities([AUTHORITY.public_key]), revoked, retired, T0)


def test_legacy_mode_takes_the_pin() -> None:
    legacy = PeerEvidence(NETWORK, TrustedAuthorities(), frozenset(), frozenset(), T0)
    recipient, source = legacy.recipient(replace(PINNED, credential=_credential()))
    assert recipient == Recipient(PEER_KEY, "Pinned Org", "industry", "US")
    assert "pinned" in source


def test_strict_mode_takes_the_credential_and_ignores_the_pin() -> None:
    recipient, source = _strict().recipient(replace(PINNED, credential=_credential()))
    assert recipient == Recipient(PEER_KEY, "Credential Org", "enforcement", "GB")
    assert source == "from its credential"


@pytest.mark.parametrize(
    ("credential", "evidence", "why"),
    [
        (None, _strict(), "no credential on file"),
        (_credential(not_after=T0 - 1), _strict(), "expired"),
        (_credential(STRANGER), _strict(), "does not trust"),
        (_credential(), _strict(revoked=frozenset({PEER_KEY})), "revoked"),
        (b"\x00garbage", _strict(), "no longer holds"),
    ],
)
def test_strict_mode_without_a_valid_credential_gives_no_attributes(
    credential: bytes | None, evidence: PeerEvidence, why: str
) -> None:
    recipient, source = evidence.recipient(replace(PINNED, credential=credential))
    assert recipient == Recipient(PEER_KEY), "an attribute nobody vouched for matches no clause (SPEC §4)"
    assert why in source
